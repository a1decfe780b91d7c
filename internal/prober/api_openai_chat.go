package prober

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/llmprobe/llmprobe/internal/config"
)

// openAIChat is OpenAI's Chat Completions API (POST /v1/chat/completions),
// which vLLM, SGLang, llama.cpp, TGI and Ollama all serve.
type openAIChat struct{}

func init() { register(config.APIOpenAIChat, openAIChat{}) }

func (openAIChat) path() string         { return "/chat/completions" }
func (openAIChat) header(h http.Header) {}

func (openAIChat) prefix(p *prefixArgs) []byte {
	return append(openAIPrefix(p), `"messages":[{"role":"user","content":`...)
}

func (openAIChat) appendPrompt(b []byte, prompt string, maxTokens int) []byte {
	b = appendJSONString(b, prompt)
	b = append(b, "}]"...)
	return appendOpenAIMaxTokens(b, maxTokens)
}

func (openAIChat) parseEvent(data []byte, c *Chunk) error { return ParseChunk(data, c) }
func (openAIChat) parseReply(body []byte, r *reply) error { return parseOpenAIReply(body, r) }

// openAIPrefix is the body both OpenAI completion APIs begin with. Usage is
// always asked for: output tokens come from the server's count.
func openAIPrefix(p *prefixArgs) []byte {
	b := appendModelAndExtras(nil, p)
	if p.Stream && p.ContinuousUsage {
		b = append(b, `"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true},`...)
	} else if p.Stream {
		b = append(b, `"stream":true,"stream_options":{"include_usage":true},`...)
	}
	return b
}

func appendOpenAIMaxTokens(b []byte, maxTokens int) []byte {
	if maxTokens > 0 {
		b = append(b, `,"max_tokens":`...)
		b = strconv.AppendInt(b, int64(maxTokens), 10)
	}
	return append(b, '}')
}

// parseOpenAIReply reads a non-streamed chat or completions reply.
func parseOpenAIReply(body []byte, r *reply) error {
	var v struct {
		Object string          `json:"object"`
		Error  json.RawMessage `json:"error"`
		Usage  *struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		} `json:"usage"`
		groundTruth
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	r.Error = (len(v.Error) > 0 && string(v.Error) != "null") || v.Object == "error"
	if v.Usage != nil {
		r.HasUsage, r.InputTokens, r.OutputTokens = true, v.Usage.PromptTokens, v.Usage.CompletionTokens
	}
	v.groundTruth.into(r)
	return nil
}
