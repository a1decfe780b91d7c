package prober

import (
	"net/http"

	"github.com/llmprobe/llmprobe/internal/config"
)

// openAICompletions is OpenAI's legacy Completions API (POST
// /v1/completions): a prompt instead of messages, the same chunks.
type openAICompletions struct{}

func init() { register(config.APIOpenAICompletions, openAICompletions{}) }

func (openAICompletions) path() string         { return "/completions" }
func (openAICompletions) header(h http.Header) {}

func (openAICompletions) prefix(p *prefixArgs) []byte {
	return append(openAIPrefix(p), `"prompt":`...)
}

func (openAICompletions) appendPrompt(b []byte, prompt string, maxTokens int) []byte {
	return appendOpenAIMaxTokens(appendJSONString(b, prompt), maxTokens)
}

func (openAICompletions) parseEvent(data []byte, c *Chunk) error { return ParseChunk(data, c) }
func (openAICompletions) parseReply(body []byte, r *reply) error { return parseOpenAIReply(body, r) }
