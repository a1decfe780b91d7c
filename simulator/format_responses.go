package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// responsesFormat is OpenAI's Responses API (POST /v1/responses) as OpenAI
// and vLLM serve it: named SSE events, each with a sequence_number; output
// items (reasoning, then the message) with content parts; the response
// object at the start and the end; no [DONE]. Errors are OpenAI's shape as
// vLLM writes it.
type responsesFormat struct{}

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    *string         `json:"instructions"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Stream          bool            `json:"stream"`
}

func (responsesFormat) parse(body []byte, _ http.Header, cfg *Config) (parsed, error) {
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return parsed{}, errBad("invalid JSON body: %v", err)
	}
	p := parsed{model: req.Model, stream: req.Stream, outputTokens: cfg.DefaultOutputTokens}
	if p.model == "" {
		p.model = cfg.Model
	} else if p.model != cfg.Model {
		return parsed{}, &badRequest{status: http.StatusNotFound, msg: fmt.Sprintf("The model `%s` does not exist.", req.Model)}
	}
	n, err := inputWords(req.Input)
	if err != nil {
		return parsed{}, errBad("input: %v", err)
	}
	p.inputTokens = n
	if req.Instructions != nil {
		p.inputTokens += countWords(*req.Instructions)
	}
	if m := req.MaxOutputTokens; m != nil {
		// OpenAI wants at least 16; vLLM, and the simulator, serve any
		// positive cap.
		if *m < 1 {
			return parsed{}, errBad("max_output_tokens must be at least 1, got %d", *m)
		}
		p.outputTokens, p.capped = *m, true
	}
	if p.outputTokens > cfg.MaxOutputTokens {
		return parsed{}, errBad("max_output_tokens=%d exceeds the limit of %d", p.outputTokens, cfg.MaxOutputTokens)
	}
	// The cap counts reasoning tokens too, as OpenAI's does.
	p.reasoning = min(cfg.ReasoningTokens, p.outputTokens)
	return p, nil
}

// inputWords counts a Responses input: a string, or an array of items
// whose content (a string or text parts) counts; other items count nothing.
func inputWords(raw json.RawMessage) (int, error) {
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
	var items []struct {
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return 0, errors.New("must be a string or an array of input items")
	}
	if len(items) == 0 {
		return 0, errors.New("must not be empty")
	}
	total := 0
	for i := range items {
		n, err := contentWords(items[i].Content)
		if err != nil {
			return 0, fmt.Errorf("[%d].content: %v", i, err)
		}
		total += n
	}
	return total, nil
}

func (responsesFormat) truthOnFirst() bool { return true }

func (responsesFormat) writeError(w http.ResponseWriter, status int, msg string) {
	writeError(w, status, openAIErrorType(status), msg)
}

// appendEvent opens an event: its SSE name, type and sequence number.
func (responsesFormat) appendEvent(st *stream, b []byte, typ string) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	b = appendInt(b, st.evSeq)
	st.evSeq++
	return b
}

// appendItemRef is the current item's id and indexes, as the item and
// content-part events carry them.
func (responsesFormat) appendItemRef(st *stream, b []byte, part bool) []byte {
	b = append(b, `,"item_id":"`...)
	b = appendItemID(st, b)
	b = append(b, `","output_index":`...)
	b = appendInt(b, st.block)
	if part {
		b = append(b, `,"content_index":0`...)
	}
	return b
}

func appendItemID(st *stream, b []byte) []byte {
	if st.thinking() {
		b = append(b, "rs_sim_"...)
	} else {
		b = append(b, "msg_sim_"...)
	}
	return strconv.AppendUint(b, st.seq, 10)
}

// appendItem is the current output item: in progress (empty), or done with
// its whole text.
func (responsesFormat) appendItem(st *stream, b []byte, done bool) []byte {
	b = append(b, `{"id":"`...)
	b = appendItemID(st, b)
	status := `"in_progress"`
	if done {
		status = `"completed"`
		if st.p.capped && !st.more() {
			status = `"incomplete"`
		}
	}
	if st.thinking() {
		b = append(b, `","type":"reasoning","summary":[],"content":[`...)
		if done {
			b = appendPart(st, b, true)
		}
		b = append(b, `],"status":`...)
		b = append(b, status...)
		return append(b, '}')
	}
	b = append(b, `","type":"message","status":`...)
	b = append(b, status...)
	b = append(b, `,"role":"assistant","content":[`...)
	if done {
		b = appendPart(st, b, true)
	}
	return append(b, "]}"...)
}

// more reports whether another output item follows the current one.
func (st *stream) more() bool { return st.thinking() && st.p.outputTokens > st.p.reasoning }

// appendPart is the current item's content part, empty or whole.
func appendPart(st *stream, b []byte, done bool) []byte {
	if st.thinking() {
		b = append(b, `{"type":"reasoning_text","text":"`...)
		if done {
			b = appendWords(b, reasoningWord, st.p.reasoning)
		}
		return append(b, `"}`...)
	}
	b = append(b, `{"type":"output_text","text":"`...)
	if done {
		b = appendWords(b, contentWord, st.p.outputTokens-st.p.reasoning)
	}
	return append(b, `","annotations":[]}`...)
}

// appendResponse is the response object, at the start (in progress, no
// output), at the end, or failed.
func (f responsesFormat) appendResponse(st *stream, b []byte, status string) []byte {
	final := status == "completed" || status == "incomplete"
	b = append(b, `{"id":"resp_sim_`...)
	b = strconv.AppendUint(b, st.seq, 10)
	b = append(b, `","object":"response","created_at":`...)
	b = strconv.AppendInt(b, st.created, 10)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","error":`...)
	if status == "failed" {
		b = append(b, `{"code":"server_error","message":"simulated failure during generation"}`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"incomplete_details":`...)
	if status == "incomplete" {
		b = append(b, `{"reason":"max_output_tokens"}`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"instructions":null,"max_output_tokens":`...)
	if st.p.capped {
		b = appendInt(b, st.p.outputTokens)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"model":`...)
	b = append(b, st.s.modelJSON...)
	b = append(b, `,"output":[`...)
	if final {
		// Every item, done: the first is the current one only when there
		// is a single item.
		cur := st.block
		for st.block = 0; st.block <= cur; st.block++ {
			if st.block > 0 {
				b = append(b, ',')
			}
			b = f.appendItem(st, b, true)
		}
		st.block = cur
	}
	b = append(b, `],"parallel_tool_calls":true,"temperature":1.0,"tool_choice":"auto","tools":[],"top_p":1.0,"usage":`...)
	if !final {
		return append(b, "null}"...)
	}
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, st.p.inputTokens)
	b = append(b, `,"input_tokens_details":{"cached_tokens":0},"output_tokens":`...)
	b = appendInt(b, st.p.outputTokens)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, st.p.reasoning)
	b = append(b, `},"total_tokens":`...)
	b = appendInt(b, st.p.inputTokens+st.p.outputTokens)
	return append(b, "}}"...)
}

func (f responsesFormat) start(st *stream) error {
	for _, typ := range [...]string{"response.created", "response.in_progress"} {
		b := f.appendEvent(st, st.buf[:0], typ)
		b = append(b, `,"response":`...)
		b = f.appendResponse(st, b, "in_progress")
		if err := st.event(b, false); err != nil {
			return err
		}
	}
	// The first item opens at admission, before prefill: a client that
	// took it for the first token would be early by the whole prefill.
	return f.itemAdded(st)
}

func (f responsesFormat) itemAdded(st *stream) error {
	b := f.appendEvent(st, st.buf[:0], "response.output_item.added")
	b = append(b, `,"output_index":`...)
	b = appendInt(b, st.block)
	b = append(b, `,"item":`...)
	b = f.appendItem(st, b, false)
	if err := st.event(b, false); err != nil {
		return err
	}
	b = f.appendEvent(st, st.buf[:0], "response.content_part.added")
	b = f.appendItemRef(st, b, true)
	b = append(b, `,"part":`...)
	b = appendPart(st, b, false)
	return st.event(b, false)
}

// itemDone closes the current item: its text, its part, the item.
func (f responsesFormat) itemDone(st *stream) error {
	typ, words, n := "response.output_text.done", contentWord, st.p.outputTokens-st.p.reasoning
	if st.thinking() {
		typ, words, n = "response.reasoning_text.done", reasoningWord, st.p.reasoning
	}
	b := f.appendEvent(st, st.sized(512+len(words)*n), typ)
	b = f.appendItemRef(st, b, true)
	b = append(b, `,"text":"`...)
	b = appendWords(b, words, n)
	b = append(b, '"')
	if !st.thinking() {
		b = append(b, `,"logprobs":[]`...)
	}
	if err := st.event(b, false); err != nil {
		return err
	}
	b = f.appendEvent(st, st.buf[:0], "response.content_part.done")
	b = f.appendItemRef(st, b, true)
	b = append(b, `,"part":`...)
	b = appendPart(st, b, true)
	if err := st.event(b, false); err != nil {
		return err
	}
	b = f.appendEvent(st, st.buf[:0], "response.output_item.done")
	b = append(b, `,"output_index":`...)
	b = appendInt(b, st.block)
	b = append(b, `,"item":`...)
	b = f.appendItem(st, b, true)
	return st.event(b, false)
}

func (f responsesFormat) appendDelta(st *stream, b []byte) []byte {
	if st.thinking() {
		b = f.appendEvent(st, b, "response.reasoning_text.delta")
	} else {
		b = f.appendEvent(st, b, "response.output_text.delta")
	}
	b = f.appendItemRef(st, b, true)
	return append(b, `,"delta":"`...)
}

// closeDelta ends a delta's text; output text deltas carry logprobs.
func closeDelta(st *stream, b []byte) []byte {
	if st.thinking() {
		return append(b, '"')
	}
	return append(b, `","logprobs":[]`...)
}

func (f responsesFormat) text(st *stream, b []byte, k, _ int, reasoning, _ bool) []byte {
	b = f.appendDelta(st, b)
	if reasoning {
		b = appendWords(b, reasoningWord, k)
	} else {
		b = appendWords(b, contentWord, k)
	}
	return closeDelta(st, b)
}

func (f responsesFormat) toContent(st *stream) error {
	if err := f.itemDone(st); err != nil {
		return err
	}
	st.block++
	return f.itemAdded(st)
}

func (f responsesFormat) end(st *stream) error {
	if err := f.itemDone(st); err != nil {
		return err
	}
	status := "completed"
	if st.p.capped {
		// OpenAI ends a response cut by max_output_tokens as incomplete,
		// with its own terminal event.
		status = "incomplete"
	}
	size := 1024 + len(reasoningWord)*st.p.reasoning + len(contentWord)*(st.p.outputTokens-st.p.reasoning)
	b := f.appendEvent(st, st.sized(size), "response."+status)
	b = append(b, `,"response":`...)
	b = f.appendResponse(st, b, status)
	return st.event(b, true)
}

func (f responsesFormat) failure(st *stream) error {
	b := f.appendEvent(st, st.buf[:0], "response.failed")
	b = append(b, `,"response":`...)
	b = f.appendResponse(st, b, "failed")
	return st.event(b, false)
}

func (f responsesFormat) malformed(st *stream, b []byte) []byte {
	return append(f.appendDelta(st, b), "\n\n"...)
}

func (f responsesFormat) empty(st *stream, b []byte) []byte {
	return closeDelta(st, f.appendDelta(st, b))
}

func (f responsesFormat) whole(st *stream, b []byte) []byte {
	status := "completed"
	if st.p.capped {
		status = "incomplete"
	}
	if st.p.outputTokens > st.p.reasoning && st.p.reasoning > 0 {
		st.block = 1 // the message follows the reasoning item
	}
	b = f.appendResponse(st, b, status)
	return b[:len(b)-1] // open for the stamps
}
