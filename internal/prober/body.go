package prober

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// encodeExtras encodes target body extras as `"k":v,` pairs in key order.
// Config validation has rejected the fields llmprobe sets and converted YAML
// maps into JSON-ready ones.
func encodeExtras(body map[string]interface{}) ([]byte, error) {
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []byte
	for _, k := range keys {
		v, err := json.Marshal(body[k])
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = append(out, v...)
		out = append(out, ',')
	}
	return out, nil
}

// appendBody appends the whole request body for req.
func (c *Client) appendBody(b []byte, req *Request) []byte {
	if req.Stream {
		b = append(b, c.streamPrefix...)
	} else {
		b = append(b, c.plainPrefix...)
	}
	return c.api.appendPrompt(b, req.Prompt, req.MaxTokens)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// reqBody is a pooled request body. The transport may read and close the body
// on its own goroutine, even after Do returns, so the buffer goes back to the
// pool only when both Do and every reader handed to the transport let go.
type reqBody struct {
	buf     []byte
	refs    atomic.Int32
	getBody func() (io.ReadCloser, error) // bound once: a method value per request would allocate
}

// bodyReader is one reader over a reqBody. It is never reused (one small
// allocation per request), because net/http may close a body more than once:
// a late second Close must find its own closed flag, not a recycled one.
type bodyReader struct {
	rb     *reqBody
	off    int
	closed atomic.Bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= len(r.rb.buf) {
		return 0, io.EOF
	}
	n := copy(p, r.rb.buf[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.rb.release()
	}
	return nil
}

// newReader serves GetBody (redirects, HTTP/2 retries): rare, so it may
// allocate.
func (rb *reqBody) newReader() (io.ReadCloser, error) {
	rb.refs.Add(1)
	return &bodyReader{rb: rb}, nil
}

func (rb *reqBody) release() {
	if rb.refs.Add(-1) == 0 {
		bodyPool.Put(rb)
	}
}

var bodyPool = sync.Pool{New: func() any {
	rb := &reqBody{}
	rb.getBody = rb.newReader
	return rb
}}
