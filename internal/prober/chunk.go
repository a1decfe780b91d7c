package prober

import (
	"bytes"
	"errors"
	"strconv"
)

// Chunk is what llmprobe needs from one stream event, in OpenAI's words:
// every API's parser (api_*.go) maps its own events onto these fields. Byte
// slices point into the parsed data and hold raw JSON string contents
// (escapes not decoded: only emptiness matters for timing); nil when absent
// or null.
type Chunk struct {
	Content      []byte // choices[0].delta.content (chat)
	Reasoning    []byte // choices[0].delta.reasoning_content or .reasoning (vLLM uses both)
	Text         []byte // choices[0].text (completions)
	FinishReason []byte // choices[0].finish_reason

	// Choices is the length of the choices array; -1 when absent. The usage
	// chunk that ends a stream has choices: [].
	Choices int

	// HasUsage: the event carried an output token count (cumulative);
	// HasPrompt: it carried the input token count too.
	HasUsage         bool
	HasPrompt        bool
	PromptTokens     int64
	CompletionTokens int64

	// Done: the event that ends a complete stream in APIs without a
	// [DONE] line (Anthropic's message_stop, Responses' response.completed).
	Done bool

	// Error: a top-level non-null "error" (vLLM's mid-stream error event)
	// or "object": "error".
	Error bool

	// Ground truth from the reference endpoint, Unix/duration nanoseconds.
	HasEmit        bool
	EmitNs         int64 // llmprobe_emit_ns: wall clock of the server's emit
	HasServerTTFT  bool
	ServerTTFTNs   int64 // llmprobe_ttft_ns
	HasServerQueue bool
	ServerQueueNs  int64 // llmprobe_queue_ns
}

// HasText reports whether the chunk carries generated text (content,
// reasoning or completion text). A role-only or empty delta does not.
func (c *Chunk) HasText() bool {
	return len(c.Content) > 0 || len(c.Reasoning) > 0 || len(c.Text) > 0
}

// maxJSONDepth bounds nesting so hostile input cannot exhaust the stack.
const maxJSONDepth = 64

var (
	errJSONSyntax = errors.New("chunk: malformed JSON")
	errJSONDepth  = errors.New("chunk: JSON nested too deep")
	errJSONNumber = errors.New("chunk: number out of range")
	errNotObject  = errors.New("chunk: not a JSON object")
)

// ParseChunk scans one chunk's JSON into c. It is a small validating
// scanner instead of encoding/json because it runs once per streamed token:
// it allocates nothing and skips every field it does not need (strings with
// escapes, nested objects and arrays, numbers, literals). Malformed JSON is an
// error. Keys are compared raw, so a key spelled with escapes is not matched.
func ParseChunk(data []byte, c *Chunk) error {
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
		case "choices":
			err = s.choices(c)
		case "usage":
			err = s.usage(c)
		case "error":
			if s.peek() != 'n' {
				c.Error = true
			}
			err = s.skip(2)
		case "object":
			var v []byte
			v, err = s.strOrNull(2)
			if string(v) == "error" {
				c.Error = true
			}
		// The stamps are topLevel's too; spelled out here, on the one
		// parser that runs per token for the OpenAI APIs, to keep a call
		// off every key.
		case "llmprobe_emit_ns":
			c.HasEmit = true
			err = s.int(&c.EmitNs, 2)
		case "llmprobe_ttft_ns":
			c.HasServerTTFT = true
			err = s.int(&c.ServerTTFTNs, 2)
		case "llmprobe_queue_ns":
			c.HasServerQueue = true
			err = s.int(&c.ServerQueueNs, 2)
		default:
			err = s.skip(2)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return errJSONSyntax
	}
	return nil
}

var llmprobePrefix = []byte("llmprobe_")

// topLevel scans a top-level field every API's events may carry: the
// reference endpoint's ground-truth stamps. Any other is skipped.
func (s *scanner) topLevel(key []byte, c *Chunk) error {
	// Most keys are the server's own (id, model, created …): one prefix
	// test keeps them off the stamps' switch.
	if !bytes.HasPrefix(key, llmprobePrefix) {
		return s.skip(2)
	}
	switch string(key) {
	case "llmprobe_emit_ns":
		c.HasEmit = true
		return s.int(&c.EmitNs, 2)
	case "llmprobe_ttft_ns":
		c.HasServerTTFT = true
		return s.int(&c.ServerTTFTNs, 2)
	case "llmprobe_queue_ns":
		c.HasServerQueue = true
		return s.int(&c.ServerQueueNs, 2)
	}
	return s.skip(2)
}

// openObject opens a JSON object, or skips a value that is not one (false).
func (s *scanner) openObject(depth int) (bool, error) {
	if s.peek() != '{' {
		return false, s.skip(depth)
	}
	return s.open('}')
}

// end checks that nothing but whitespace follows the top-level value.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errJSONSyntax
	}
	return nil
}

func (s *scanner) usage(c *Chunk) error {
	c.HasUsage, c.HasPrompt, c.PromptTokens, c.CompletionTokens = false, false, 0, 0
	if s.peek() != '{' {
		return s.skip(2)
	}
	c.HasUsage, c.HasPrompt = true, true
	more, err := s.open('}')
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "prompt_tokens":
			err = s.int(&c.PromptTokens, 3)
		case "completion_tokens":
			err = s.int(&c.CompletionTokens, 3)
		default:
			err = s.skip(3)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return err
}

func (s *scanner) choices(c *Chunk) error {
	c.Content, c.Reasoning, c.Text, c.FinishReason, c.Choices = nil, nil, nil, nil, -1
	if s.peek() != '[' {
		return s.skip(2)
	}
	c.Choices = 0
	more, err := s.open(']')
	for more && err == nil {
		if c.Choices == 0 && s.peek() == '{' {
			err = s.choice(c)
		} else {
			err = s.skip(3)
		}
		if err == nil {
			c.Choices++
			more, err = s.next(']')
		}
	}
	return err
}

// choice scans choices[0].
func (s *scanner) choice(c *Chunk) error {
	more, err := s.open('}')
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "delta":
			err = s.delta(c)
		case "text":
			c.Text, err = s.strOrNull(4)
		case "finish_reason":
			c.FinishReason, err = s.strOrNull(4)
		default:
			err = s.skip(4)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return err
}

func (s *scanner) delta(c *Chunk) error {
	c.Content, c.Reasoning = nil, nil
	if s.peek() != '{' {
		return s.skip(4)
	}
	more, err := s.open('}')
	for more && err == nil {
		var key []byte
		if key, err = s.key(); err != nil {
			return err
		}
		switch string(key) {
		case "content":
			c.Content, err = s.strOrNull(5)
		case "reasoning_content", "reasoning":
			// A server may send both names (vLLM during its rename; servers
			// that dump every declared field): a null or empty one must not
			// hide the other's text, whichever comes first.
			var r []byte
			if r, err = s.strOrNull(5); len(r) > 0 || c.Reasoning == nil {
				c.Reasoning = r
			}
		default:
			err = s.skip(5)
		}
		if err == nil {
			more, err = s.next('}')
		}
	}
	return err
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// open consumes an object's or array's opening bracket (at s.i) and reports
// whether a first member follows (false for {} or []).
func (s *scanner) open(closing byte) (bool, error) {
	s.i++
	s.ws()
	if s.peek() == closing {
		s.i++
		return false, nil
	}
	return true, nil
}

// key scans an object key and its colon, leaving s.i at the value.
func (s *scanner) key() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errJSONSyntax
	}
	ks, ke, err := s.str()
	if err != nil {
		return nil, err
	}
	s.ws()
	if s.peek() != ':' {
		return nil, errJSONSyntax
	}
	s.i++
	s.ws()
	return s.b[ks:ke], nil
}

// next consumes the separator after a member: true after ',', false after
// the closing bracket.
func (s *scanner) next(closing byte) (bool, error) {
	s.ws()
	switch s.peek() {
	case ',':
		s.i++
		s.ws()
		return true, nil
	case closing:
		s.i++
		return false, nil
	}
	return false, errJSONSyntax
}

// str scans a string at s.i (at its opening quote), validating escapes, and
// returns the bounds of its raw contents.
func (s *scanner) str() (start, end int, err error) {
	s.i++
	start = s.i
	b := s.b
	for i := start; i < len(b); i++ {
		c := b[i]
		if !strSpecial[c] {
			continue // the common case: one table lookup per byte
		}
		switch {
		case c == '"':
			s.i = i + 1
			return start, i, nil
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, 0, errJSONSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return 0, 0, errJSONSyntax
				}
				i += 4
			default:
				return 0, 0, errJSONSyntax
			}
		default: // control character
			return 0, 0, errJSONSyntax
		}
	}
	return 0, 0, errJSONSyntax
}

// strSpecial marks the bytes that end or interrupt a plain run of string
// contents.
var strSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// strOrNull returns a string value's raw contents; nil for null or any other
// kind of value (skipped), e.g. content given as an array of parts.
func (s *scanner) strOrNull(depth int) ([]byte, error) {
	if s.peek() == '"' {
		st, en, err := s.str()
		if err != nil {
			return nil, err
		}
		return s.b[st:en:en], nil
	}
	return nil, s.skip(depth)
}

// int scans a number into v. Integers are parsed exactly; a number with a
// fraction or exponent is converted through float64 (never seen in practice).
func (s *scanner) int(v *int64, depth int) error {
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		*v = 0
		return s.skip(depth)
	}
	st, en, isInt, err := s.number()
	if err != nil {
		return err
	}
	if isInt {
		neg := s.b[st] == '-'
		if neg {
			st++
		}
		var n int64
		for _, c := range s.b[st:en] {
			d := int64(c - '0')
			if n > (1<<63-1-d)/10 {
				return errJSONNumber
			}
			n = n*10 + d
		}
		if neg {
			n = -n
		}
		*v = n
		return nil
	}
	f, err := strconv.ParseFloat(string(s.b[st:en]), 64)
	if err != nil || f >= 1<<63 || f < -(1<<63) {
		return errJSONNumber
	}
	*v = int64(f)
	return nil
}

// number scans a JSON number per the grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() (start, end int, isInt bool, err error) {
	b, i := s.b, s.i
	start, isInt = i, true
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, 0, false, errJSONSyntax
	}
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, 0, false, errJSONSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, 0, false, errJSONSyntax
		}
	}
	s.i = i
	return start, i, isInt, nil
}

// skip scans over any value at s.i; depth is the value's nesting level.
func (s *scanner) skip(depth int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		more, err := s.open('}')
		for more && err == nil {
			if _, err = s.key(); err == nil {
				if err = s.skip(depth + 1); err == nil {
					more, err = s.next('}')
				}
			}
		}
		return err
	case c == '[':
		more, err := s.open(']')
		for more && err == nil {
			if err = s.skip(depth + 1); err == nil {
				more, err = s.next(']')
			}
		}
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		_, _, _, err := s.number()
		return err
	}
	return errJSONSyntax
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errJSONSyntax
	}
	s.i += len(lit)
	return nil
}
