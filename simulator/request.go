package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
)

// apiKind is the endpoint a request came to.
type apiKind uint8

const (
	apiChat apiKind = iota
	apiCompletions
	apiMessages  // Anthropic Messages
	apiResponses // OpenAI Responses
)

// completionRequest holds the fields of both OpenAI request bodies that the
// simulator acts on; others are accepted and ignored, as vLLM does.
type completionRequest struct {
	Model         string          `json:"model"`
	Messages      []chatMessage   `json:"messages"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
		// vLLM's extension: usage (cumulative) in every chunk.
		ContinuousUsageStats bool `json:"continuous_usage_stats"`
	} `json:"stream_options"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
	MinTokens           int  `json:"min_tokens"`
	IgnoreEOS           bool `json:"ignore_eos"`
	N                   *int `json:"n"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// parsed is what the simulator needs to serve a request.
type parsed struct {
	model        string
	stream       bool
	includeUsage bool
	// continuousUsage puts cumulative usage in every chunk, as vLLM's
	// stream_options.continuous_usage_stats does.
	continuousUsage bool
	inputTokens     int
	outputTokens    int
	// reasoning is how many of the output tokens are reasoning, sent first.
	reasoning int
	// capped: the output stops at a maximum the request set (Responses
	// reports that as incomplete).
	capped bool
}

// badRequest is a client error answered with 400 (or status) and message.
type badRequest struct {
	status int
	msg    string
}

func (e *badRequest) Error() string { return e.msg }

func errBad(format string, args ...any) error {
	return &badRequest{status: 400, msg: fmt.Sprintf(format, args...)}
}

func parseRequest(body []byte, api apiKind, cfg *Config) (parsed, error) {
	var req completionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return parsed{}, errBad("invalid JSON body: %v", err)
	}
	p := parsed{model: req.Model, stream: req.Stream}
	if p.model == "" {
		p.model = cfg.Model
	} else if p.model != cfg.Model {
		return parsed{}, &badRequest{status: 404, msg: fmt.Sprintf("The model `%s` does not exist.", req.Model)}
	}
	if req.StreamOptions != nil {
		if !req.Stream {
			return parsed{}, errBad("stream_options can only be set when stream is true")
		}
		p.includeUsage = req.StreamOptions.IncludeUsage
		p.continuousUsage = req.StreamOptions.ContinuousUsageStats
	}
	if req.N != nil && *req.N != 1 {
		return parsed{}, errBad("the simulator only serves n=1")
	}

	var err error
	switch api {
	case apiChat:
		if len(req.Messages) == 0 {
			return parsed{}, errBad("messages must not be empty")
		}
		for i := range req.Messages {
			n, err := contentWords(req.Messages[i].Content)
			if err != nil {
				return parsed{}, errBad("messages[%d].content: %v", i, err)
			}
			p.inputTokens += n
		}
	case apiCompletions:
		if p.inputTokens, err = promptTokens(req.Prompt); err != nil {
			return parsed{}, errBad("prompt: %v", err)
		}
	}

	p.outputTokens = cfg.DefaultOutputTokens
	switch {
	case req.MaxCompletionTokens != nil:
		p.outputTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		p.outputTokens = *req.MaxTokens
	}
	if p.outputTokens < 1 {
		return parsed{}, errBad("max_tokens must be at least 1, got %d", p.outputTokens)
	}
	if req.MinTokens < 0 {
		return parsed{}, errBad("min_tokens must be non-negative, got %d", req.MinTokens)
	}
	if (req.MaxCompletionTokens != nil || req.MaxTokens != nil) && req.MinTokens > p.outputTokens {
		return parsed{}, errBad("min_tokens must be less than or equal to max_tokens=%d, got %d", p.outputTokens, req.MinTokens)
	}
	// No max given: the default length, raised to min_tokens if needed.
	p.outputTokens = max(p.outputTokens, req.MinTokens)
	if p.outputTokens > cfg.MaxOutputTokens {
		return parsed{}, errBad("max_tokens=%d exceeds the limit of %d", p.outputTokens, cfg.MaxOutputTokens)
	}
	return p, nil
}

// contentWords counts words in a message content: a string, an array of
// text parts (type text, or input_text and output_text in Responses; other
// part types count nothing), or null.
func contentWords(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return countWords(s), nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return 0, errors.New("must be a string or an array of content parts")
	}
	n := 0
	for _, p := range parts {
		switch p.Type {
		case "text", "input_text", "output_text":
			n += countWords(p.Text)
		}
	}
	return n, nil
}

// promptTokens counts a completions prompt: a string (words), an array of
// token ids, or an array holding one string or one token array (batches of
// several prompts are not served).
func promptTokens(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errors.New("required")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return countWords(s), nil
	}
	var ids []int64
	if err := json.Unmarshal(raw, &ids); err == nil {
		return len(ids), nil
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(raw, &batch); err != nil {
		return 0, errors.New("must be a string, an array of token ids, or an array of one of those")
	}
	if len(batch) != 1 {
		return 0, errors.New("the simulator serves exactly one prompt per request")
	}
	if b := bytes.TrimSpace(batch[0]); len(b) > 0 && b[0] == '[' {
		return promptTokens(b)
	}
	var s string
	if err := json.Unmarshal(batch[0], &s); err != nil {
		return 0, errors.New("must be a string, an array of token ids, or an array of one of those")
	}
	return countWords(s), nil
}

// countWords counts whitespace-separated words (as strings.Fields splits
// them) without allocating.
func countWords(s string) int {
	n, in := 0, false
	for _, r := range s {
		space := unicode.IsSpace(r)
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}
