package simulator

import (
	"net/http"
	"strconv"
)

// openAIFormat is OpenAI's chat and completions APIs as vLLM serves them.
type openAIFormat struct{ api apiKind }

func (f openAIFormat) parse(body []byte, _ http.Header, cfg *Config) (parsed, error) {
	p, err := parseRequest(body, f.api, cfg)
	if err == nil && f.api == apiChat {
		p.reasoning = min(cfg.ReasoningTokens, p.outputTokens)
	}
	return p, err
}

func (openAIFormat) truthOnFirst() bool { return false }

func (openAIFormat) writeError(w http.ResponseWriter, status int, msg string) {
	writeError(w, status, openAIErrorType(status), msg)
}

// openAIErrorType is the error type vLLM names for a status.
func openAIErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequestError"
	case http.StatusNotFound:
		return "NotFoundError"
	case http.StatusTooManyRequests:
		return "RateLimitError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableError"
	}
	return "InternalServerError"
}

func (f openAIFormat) start(st *stream) error {
	st.buf = f.appendPrefix(st, st.buf[:0])
	st.prefixLen = len(st.buf)
	if f.api != apiChat {
		return nil
	}
	// The role chunk goes out at admission, when prefill starts: a client
	// that counted it as the first token would be early by the whole
	// prefill, which makes the mistake visible.
	b := append(st.buf[:st.prefixLen], `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null,"stop_reason":null}]`...)
	b = st.appendContinuousUsage(b, 0)
	return st.event(b, false)
}

func (f openAIFormat) text(st *stream, b []byte, k, done int, reasoning, last bool) []byte {
	if f.api == apiChat {
		if reasoning {
			b = append(b, `{"index":0,"delta":{"reasoning_content":"`...)
			b = appendWords(b, reasoningWord, k)
		} else {
			b = append(b, `{"index":0,"delta":{"content":"`...)
			b = appendWords(b, contentWord, k)
		}
		b = append(b, `"},"logprobs":null,"finish_reason":`...)
	} else {
		b = append(b, `{"index":0,"text":"`...)
		b = appendWords(b, contentWord, k)
		b = append(b, `","logprobs":null,"finish_reason":`...)
	}
	if last {
		b = append(b, `"length","stop_reason":null}]`...)
	} else {
		b = append(b, `null,"stop_reason":null}]`...)
	}
	return st.appendContinuousUsage(b, done+k)
}

// toContent: chat switches from reasoning_content to content within the
// same choice, with no event between.
func (openAIFormat) toContent(*stream) error { return nil }

func (openAIFormat) end(st *stream) error {
	if st.p.includeUsage {
		b := append(st.buf[:st.prefixLen], "],"...)
		b = appendUsage(b, st.p.inputTokens, st.p.outputTokens)
		if err := st.event(b, true); err != nil {
			return err
		}
	}
	return st.write([]byte("data: [DONE]\n\n"))
}

// failure is what vLLM's stream generators send when generation fails: an
// error object in place of a chunk, then [DONE].
func (openAIFormat) failure(st *stream) error {
	b := append(st.buf[:0], `data: {"error":{"message":"simulated failure during generation","type":"InternalServerError","param":null,"code":500}`...)
	if err := st.event(b, false); err != nil {
		return err
	}
	return st.write([]byte("data: [DONE]\n\n"))
}

func (openAIFormat) malformed(st *stream, b []byte) []byte {
	return append(b, "{\"index\":0,\"delta\":{\"content\":\"\n\n"...)
}

func (f openAIFormat) empty(st *stream, b []byte) []byte {
	b = f.appendPrefix(st, b)
	if f.api == apiChat {
		return append(b, `{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null,"stop_reason":null}]`...)
	}
	return append(b, `{"index":0,"text":"","logprobs":null,"finish_reason":null,"stop_reason":null}]`...)
}

func (f openAIFormat) whole(st *stream, b []byte) []byte {
	out, reasoning := st.p.outputTokens, st.p.reasoning
	b = f.appendHead(st, b, false)
	if f.api == apiChat {
		b = append(b, `{"index":0,"message":{"role":"assistant","reasoning_content":`...)
		if reasoning > 0 {
			b = append(b, '"')
			b = appendWords(b, reasoningWord, reasoning)
			b = append(b, '"')
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"content":"`...)
		b = appendWords(b, contentWord, out-reasoning)
		b = append(b, `"},"logprobs":null,"finish_reason":"length","stop_reason":null}],`...)
	} else {
		b = append(b, `{"index":0,"text":"`...)
		b = appendWords(b, contentWord, out)
		b = append(b, `","logprobs":null,"finish_reason":"length","stop_reason":null}],`...)
	}
	return appendUsage(b, st.p.inputTokens, out)
}

func (f openAIFormat) appendPrefix(st *stream, b []byte) []byte {
	b = append(b, "data: "...)
	return f.appendHead(st, b, true)
}

// appendHead writes `{"id":...,"object":...,"created":...,"model":...,"choices":[`.
func (f openAIFormat) appendHead(st *stream, b []byte, chunk bool) []byte {
	b = append(b, `{"id":"`...)
	if f.api == apiChat {
		b = append(b, "chatcmpl-sim-"...)
	} else {
		b = append(b, "cmpl-sim-"...)
	}
	b = strconv.AppendUint(b, st.seq, 10)
	b = append(b, `","object":"`...)
	switch {
	case f.api == apiCompletions:
		b = append(b, "text_completion"...)
	case chunk:
		b = append(b, "chat.completion.chunk"...)
	default:
		b = append(b, "chat.completion"...)
	}
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, st.created, 10)
	b = append(b, `,"model":`...)
	b = append(b, st.s.modelJSON...)
	return append(b, `,"choices":[`...)
}

func appendUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `"usage":{"prompt_tokens":`...)
	b = appendInt(b, prompt)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, prompt+completion)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, completion)
	return append(b, '}')
}

// appendContinuousUsage adds the cumulative usage to a chunk when the
// request asked for it in every chunk.
func (st *stream) appendContinuousUsage(b []byte, completion int) []byte {
	if !st.p.continuousUsage {
		return b
	}
	return appendUsage(append(b, ','), st.p.inputTokens, completion)
}
