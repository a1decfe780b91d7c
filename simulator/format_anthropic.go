package simulator

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// anthropicFormat is Anthropic's Messages API (POST /v1/messages) as
// api.anthropic.com serves it: named SSE events, content blocks, usage in
// message_start and (cumulative) in message_delta, no [DONE].
type anthropicFormat struct{}

// anthropicSignature stands in for the opaque signature Anthropic sends at
// the end of a thinking block.
const anthropicSignature = "bGxtcHJvYmUtc2ltdWxhdG9y"

type messagesRequest struct {
	Model     *string         `json:"model"`
	MaxTokens *int            `json:"max_tokens"`
	Messages  []chatMessage   `json:"messages"`
	System    json.RawMessage `json:"system"`
	Stream    bool            `json:"stream"`
	Thinking  *struct {
		Type         string `json:"type"`
		BudgetTokens *int   `json:"budget_tokens"`
	} `json:"thinking"`
}

func (anthropicFormat) parse(body []byte, h http.Header, cfg *Config) (parsed, error) {
	if h.Get("anthropic-version") == "" {
		return parsed{}, errBad("anthropic-version: header is required")
	}
	var req messagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return parsed{}, errBad("invalid JSON body: %v", err)
	}
	switch {
	case req.Model == nil:
		return parsed{}, errBad("model: Field required")
	case *req.Model != cfg.Model:
		return parsed{}, &badRequest{status: http.StatusNotFound, msg: "model: " + *req.Model}
	case req.MaxTokens == nil:
		return parsed{}, errBad("max_tokens: Field required")
	case *req.MaxTokens < 1:
		return parsed{}, errBad("max_tokens: Input should be greater than or equal to 1")
	case *req.MaxTokens > cfg.MaxOutputTokens:
		return parsed{}, errBad("max_tokens: %d > %d, which is the maximum allowed number of output tokens for %s", *req.MaxTokens, cfg.MaxOutputTokens, cfg.Model)
	case len(req.Messages) == 0:
		return parsed{}, errBad("messages: at least one message is required")
	}
	// Anthropic has no cap-free length: max_tokens is required, and the
	// simulator generates exactly that many, thinking included.
	p := parsed{model: cfg.Model, stream: req.Stream, outputTokens: *req.MaxTokens, capped: true}
	n, err := contentWords(req.System)
	if err != nil {
		return parsed{}, errBad("system: %v", err)
	}
	p.inputTokens = n
	for i := range req.Messages {
		if r := req.Messages[i].Role; r != "user" && r != "assistant" {
			return parsed{}, errBad("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		n, err := contentWords(req.Messages[i].Content)
		if err != nil {
			return parsed{}, errBad("messages.%d.content: %v", i, err)
		}
		p.inputTokens += n
	}
	p.reasoning = min(cfg.ReasoningTokens, p.outputTokens)
	if t := req.Thinking; t != nil {
		switch t.Type {
		case "disabled":
			p.reasoning = 0
		case "enabled":
			// Anthropic also wants budget_tokens ≥ 1024; the simulator
			// serves smaller budgets so that tests stay short.
			switch {
			case t.BudgetTokens == nil:
				return parsed{}, errBad("thinking.enabled.budget_tokens: Field required")
			case *t.BudgetTokens < 1:
				return parsed{}, errBad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1")
			case *t.BudgetTokens >= p.outputTokens:
				return parsed{}, errBad("`max_tokens` must be greater than `thinking.budget_tokens`")
			}
			p.reasoning = min(p.reasoning, *t.BudgetTokens)
		default:
			return parsed{}, errBad("thinking: Input tag '%s' found using 'type' does not match any of the expected tags: 'disabled', 'enabled'", t.Type)
		}
	}
	return p, nil
}

func (anthropicFormat) truthOnFirst() bool { return true }

// writeError uses Anthropic's error shape and types. Anthropic has no 503:
// an overloaded API answers 529.
func (anthropicFormat) writeError(w http.ResponseWriter, status int, msg string) {
	typ := "api_error"
	switch status {
	case http.StatusBadRequest:
		typ = "invalid_request_error"
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		status, typ = 529, "overloaded_error"
	}
	type apiError struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Type  string   `json:"type"`
		Error apiError `json:"error"`
	}{"error", apiError{typ, msg}})
}

func appendAnthropicEvent(b []byte, typ string) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	return append(b, '"')
}

func (anthropicFormat) appendMessage(st *stream, b []byte) []byte {
	b = append(b, `{"id":"msg_sim_`...)
	b = strconv.AppendUint(b, st.seq, 10)
	b = append(b, `","type":"message","role":"assistant","model":`...)
	return append(b, st.s.modelJSON...)
}

// thinking reports whether the current content block is the thinking one.
func (st *stream) thinking() bool { return st.p.reasoning > 0 && st.block == 0 }

func (f anthropicFormat) start(st *stream) error {
	b := appendAnthropicEvent(st.buf[:0], "message_start")
	b = append(b, `,"message":`...)
	b = f.appendMessage(st, b)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`...)
	b = appendInt(b, st.p.inputTokens)
	b = append(b, `,"output_tokens":1}}`...)
	if err := st.event(b, false); err != nil {
		return err
	}
	// The first block opens at admission, before prefill: a client that
	// took it for the first token would be early by the whole prefill.
	if err := f.blockStart(st); err != nil {
		return err
	}
	return st.event(appendAnthropicEvent(st.buf[:0], "ping"), false)
}

func (anthropicFormat) blockStart(st *stream) error {
	b := appendAnthropicEvent(st.buf[:0], "content_block_start")
	b = append(b, `,"index":`...)
	b = appendInt(b, st.block)
	if st.thinking() {
		b = append(b, `,"content_block":{"type":"thinking","thinking":"","signature":""}`...)
	} else {
		b = append(b, `,"content_block":{"type":"text","text":""}`...)
	}
	return st.event(b, false)
}

// blockStop closes the current block; a thinking block ends with its
// signature.
func (anthropicFormat) blockStop(st *stream) error {
	if st.thinking() {
		b := appendAnthropicEvent(st.buf[:0], "content_block_delta")
		b = append(b, `,"index":`...)
		b = appendInt(b, st.block)
		b = append(b, `,"delta":{"type":"signature_delta","signature":"`+anthropicSignature+`"}`...)
		if err := st.event(b, false); err != nil {
			return err
		}
	}
	b := appendAnthropicEvent(st.buf[:0], "content_block_stop")
	b = append(b, `,"index":`...)
	b = appendInt(b, st.block)
	return st.event(b, false)
}

func (anthropicFormat) appendDelta(st *stream, b []byte) []byte {
	b = appendAnthropicEvent(b, "content_block_delta")
	b = append(b, `,"index":`...)
	b = appendInt(b, st.block)
	if st.thinking() {
		return append(b, `,"delta":{"type":"thinking_delta","thinking":"`...)
	}
	return append(b, `,"delta":{"type":"text_delta","text":"`...)
}

func (f anthropicFormat) text(st *stream, b []byte, k, _ int, reasoning, _ bool) []byte {
	b = f.appendDelta(st, b)
	if reasoning {
		b = appendWords(b, reasoningWord, k)
	} else {
		b = appendWords(b, contentWord, k)
	}
	return append(b, `"}`...)
}

func (f anthropicFormat) toContent(st *stream) error {
	if err := f.blockStop(st); err != nil {
		return err
	}
	st.block++
	return f.blockStart(st)
}

func (f anthropicFormat) end(st *stream) error {
	if err := f.blockStop(st); err != nil {
		return err
	}
	b := appendAnthropicEvent(st.buf[:0], "message_delta")
	b = append(b, `,"delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":`...)
	b = appendInt(b, st.p.outputTokens)
	b = append(b, '}')
	if err := st.event(b, true); err != nil {
		return err
	}
	return st.event(appendAnthropicEvent(st.buf[:0], "message_stop"), false)
}

// failure is what Anthropic sends when it gives up mid-stream, most often
// for overload.
func (anthropicFormat) failure(st *stream) error {
	b := appendAnthropicEvent(st.buf[:0], "error")
	b = append(b, `,"error":{"type":"overloaded_error","message":"Overloaded"}`...)
	return st.event(b, false)
}

func (f anthropicFormat) malformed(st *stream, b []byte) []byte {
	return append(f.appendDelta(st, b), "\n\n"...)
}

func (f anthropicFormat) empty(st *stream, b []byte) []byte {
	return append(f.appendDelta(st, b), `"}`...)
}

func (f anthropicFormat) whole(st *stream, b []byte) []byte {
	out, reasoning := st.p.outputTokens, st.p.reasoning
	b = f.appendMessage(st, b)
	b = append(b, `,"content":[`...)
	if reasoning > 0 {
		b = append(b, `{"type":"thinking","thinking":"`...)
		b = appendWords(b, reasoningWord, reasoning)
		b = append(b, `","signature":"`+anthropicSignature+`"}`...)
	}
	if out > reasoning {
		if reasoning > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"text","text":"`...)
		b = appendWords(b, contentWord, out-reasoning)
		b = append(b, `"}`...)
	}
	b = append(b, `],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":`...)
	b = appendInt(b, st.p.inputTokens)
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, out)
	return append(b, '}')
}
