package prober

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/llmprobe/llmprobe/internal/config"
)

// openAIResponses is OpenAI's Responses API (POST /v1/responses), which vLLM
// serves too. A stream is typed events; the generated text comes in
// response.output_text.delta and response.reasoning_text.delta, the usage in
// response.completed (or response.incomplete, when max_output_tokens cut it),
// and failures as response.failed or error.
type openAIResponses struct{}

func init() { register(config.APIOpenAIResponses, openAIResponses{}) }

func (openAIResponses) path() string         { return "/responses" }
func (openAIResponses) header(h http.Header) {}

func (openAIResponses) prefix(p *prefixArgs) []byte {
	b := appendModelAndExtras(nil, p)
	if _, set := p.Body["store"]; !set {
		// OpenAI keeps every response for 30 days unless told otherwise:
		// synthetic load has no business in a user's stored responses.
		b = append(b, `"store":false,`...)
	}
	if p.Stream {
		b = append(b, `"stream":true,`...)
	}
	return append(b, `"input":`...)
}

func (openAIResponses) appendPrompt(b []byte, prompt string, maxTokens int) []byte {
	b = appendJSONString(b, prompt)
	if maxTokens > 0 {
		b = append(b, `,"max_output_tokens":`...)
		b = strconv.AppendInt(b, int64(maxTokens), 10)
	}
	return append(b, '}')
}

func (openAIResponses) parseEvent(data []byte, c *Chunk) error {
	*c = Chunk{Choices: -1}
	s := scanner{b: data}
	s.ws()
	if s.peek() != '{' {
		return errNotObject
	}
	var typ, delta, status []byte
	more, err := s.open('}')
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "type":
			typ, err = s.strOrNull(2)
		case "delta":
			if s.peek() == '"' {
				delta, err = s.strOrNull(2)
			} else {
				err = s.skip(2)
			}
		case "response":
			status, err = s.responseObject(c)
		default:
			err = s.topLevel(key, c)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	if err != nil {
		return err
	}
	// The type may come after the fields it gives a meaning to.
	switch string(typ) {
	case "response.output_text.delta":
		c.Content = delta
	case "response.reasoning_text.delta":
		c.Reasoning = delta
	case "response.completed":
		c.Done, c.FinishReason = true, finishStop
	case "response.incomplete":
		c.Done, c.FinishReason = true, finishLength
	case "response.failed", "error":
		c.Error = true
	}
	if string(status) == "failed" {
		c.Error = true
	}
	return s.end()
}

// responseObject scans a response event's response: its status and usage.
func (s *scanner) responseObject(c *Chunk) (status []byte, err error) {
	more, err := s.openObject(2)
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return nil, err
		}
		switch string(key) {
		case "status":
			status, err = s.strOrNull(3)
		case "usage":
			err = s.responsesUsage(c)
		default:
			err = s.skip(3)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return status, err
}

func (s *scanner) responsesUsage(c *Chunk) error {
	more, err := s.openObject(3)
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "input_tokens":
			c.HasPrompt = true
			err = s.int(&c.PromptTokens, 4)
		case "output_tokens":
			c.HasUsage = true
			err = s.int(&c.CompletionTokens, 4)
		default:
			err = s.skip(4)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return err
}

func (openAIResponses) parseReply(body []byte, r *reply) error {
	var v struct {
		Object string          `json:"object"`
		Status string          `json:"status"`
		Error  json.RawMessage `json:"error"`
		Usage  *struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
		groundTruth
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	r.Error = v.Status == "failed" || v.Object == "error" || (len(v.Error) > 0 && string(v.Error) != "null")
	if v.Usage != nil {
		r.HasUsage, r.InputTokens, r.OutputTokens = true, v.Usage.InputTokens, v.Usage.OutputTokens
	}
	v.groundTruth.into(r)
	return nil
}
