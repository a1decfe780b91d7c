package prober

import (
	"encoding/json"
	"net/http"
	"strconv"

	promconfig "github.com/prometheus/common/config"

	"github.com/llmprobe/llmprobe/internal/config"
)

// anthropicMessages is Anthropic's Messages API (POST /v1/messages).
//
// A stream is typed events: message_start (input usage), content_block_start,
// content_block_delta (text_delta or thinking_delta: the generated text),
// content_block_stop, message_delta (stop_reason and the cumulative output
// usage), message_stop (the end), ping, and error.
type anthropicMessages struct{}

func init() { register(config.APIAnthropicMessages, anthropicMessages{}) }

const (
	// anthropicVersion is the API version llmprobe speaks; a target's
	// headers may name another.
	anthropicVersion = "2023-06-01"
	// anthropicDefaultMaxTokens: the API requires max_tokens, and a
	// workload may leave output lengths to the server.
	anthropicDefaultMaxTokens = 4096
)

func (anthropicMessages) path() string { return "/messages" }

func (anthropicMessages) header(h http.Header) { h.Set("anthropic-version", anthropicVersion) }

// moveCredentials sends the target's authorization credentials as Anthropic
// wants them, in x-api-key instead of Authorization: Bearer. They stay
// prometheus/common secrets (a credentials file is read per request, so a
// rotated key is picked up) and are redacted like any other.
func (anthropicMessages) moveCredentials(hc *promconfig.HTTPClientConfig) {
	a := hc.Authorization
	if a == nil || (a.Credentials == "" && a.CredentialsFile == "") {
		return
	}
	var h promconfig.Header
	if a.CredentialsFile != "" {
		h.Files = []string{a.CredentialsFile}
	} else {
		h.Secrets = []promconfig.Secret{a.Credentials}
	}
	headers := &promconfig.Headers{Headers: map[string]promconfig.Header{}}
	if hc.HTTPHeaders != nil {
		for k, v := range hc.HTTPHeaders.Headers {
			headers.Headers[k] = v
		}
	}
	headers.Headers["x-api-key"] = h
	hc.HTTPHeaders, hc.Authorization = headers, nil
}

func (anthropicMessages) prefix(p *prefixArgs) []byte {
	b := appendModelAndExtras(nil, p)
	if p.Stream {
		b = append(b, `"stream":true,`...)
	}
	return append(b, `"messages":[{"role":"user","content":`...)
}

func (anthropicMessages) appendPrompt(b []byte, prompt string, maxTokens int) []byte {
	b = appendJSONString(b, prompt)
	b = append(b, `}],"max_tokens":`...)
	n := maxTokens
	if n <= 0 {
		n = anthropicDefaultMaxTokens
	}
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}')
}

func (anthropicMessages) parseEvent(data []byte, c *Chunk) error {
	*c = Chunk{Choices: -1}
	s := scanner{b: data}
	s.ws()
	if s.peek() != '{' {
		return errNotObject
	}
	more, err := s.open('}')
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "type":
			var t []byte
			t, err = s.strOrNull(2)
			switch string(t) {
			case "message_stop":
				c.Done = true
			case "error":
				c.Error = true
			}
		case "message": // message_start: the message so far, with input usage
			err = s.anthropicMessage(c)
		case "delta": // content_block_delta's text, message_delta's stop
			err = s.anthropicDelta(c)
		case "usage": // message_delta
			err = s.anthropicUsage(c, 2)
		case "error":
			if s.peek() != 'n' {
				c.Error = true
			}
			err = s.skip(2)
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
	return s.end()
}

func (s *scanner) anthropicMessage(c *Chunk) error {
	more, err := s.openObject(2)
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		if string(key) == "usage" {
			err = s.anthropicUsage(c, 3)
		} else {
			err = s.skip(3)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return err
}

func (s *scanner) anthropicDelta(c *Chunk) error {
	more, err := s.openObject(2)
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "text": // text_delta
			c.Content, err = s.strOrNull(3)
		case "thinking": // thinking_delta
			c.Reasoning, err = s.strOrNull(3)
		case "stop_reason": // message_delta
			var r []byte
			if r, err = s.strOrNull(3); len(r) > 0 {
				c.FinishReason = anthropicFinish(r)
			}
		default:
			err = s.skip(3)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return err
}

// anthropicFinish maps a stop_reason onto OpenAI's finish reasons: a turn
// that ended (end_turn, or a stop sequence) is a natural stop.
func anthropicFinish(r []byte) []byte {
	switch string(r) {
	case "end_turn", "stop_sequence":
		return finishStop
	case "max_tokens":
		return finishLength
	}
	return r
}

var (
	finishStop   = []byte("stop")
	finishLength = []byte("length")
)

func (s *scanner) anthropicUsage(c *Chunk, depth int) error {
	more, err := s.openObject(depth)
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "input_tokens":
			c.HasPrompt = true
			err = s.int(&c.PromptTokens, depth+1)
		case "output_tokens":
			c.HasUsage = true
			err = s.int(&c.CompletionTokens, depth+1)
		default:
			err = s.skip(depth + 1)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return err
}

func (anthropicMessages) parseReply(body []byte, r *reply) error {
	var v struct {
		Type  string          `json:"type"`
		Error json.RawMessage `json:"error"`
		Usage *struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
		groundTruth
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	r.Error = v.Type == "error" || (len(v.Error) > 0 && string(v.Error) != "null")
	if v.Usage != nil {
		r.HasUsage, r.InputTokens, r.OutputTokens = true, v.Usage.InputTokens, v.Usage.OutputTokens
	}
	v.groundTruth.into(r)
	return nil
}
