package prober

import (
	"encoding/json"
	"fmt"
	"sort"
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
