package prober

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxDetail bounds Result.Detail: enough for a server's error message
// ("request (2128 tokens) exceeds the available context size (2048
// tokens)"), never a whole HTML page.
const MaxDetail = 300

// What looks like a credential in a message a server sent back, or in a
// transport error: the value is replaced, the key kept so the message still
// says what was wrong. The target's own secrets are replaced by value too
// (Client.secrets), whatever the message calls them.
var (
	secretAssignment = regexp.MustCompile(`(?i)((?:api[_-]?key|access[_-]?token|token|secret|password|passwd|credential|authorization|x-api-key)["']?\s*[:=]\s*["']?)(?:(?:bearer|basic)\s+)?[^\s"',;&}]+`)
	secretScheme     = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}`)
	secretKeyLike    = regexp.MustCompile(`\b(sk|pk|rk)-[A-Za-z0-9_-]{6,}`)
	urlUserinfo      = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@`)
)

const redacted = "<redacted>"

// redactDetail hides credentials in s: the client's own secrets by value,
// then anything shaped like one.
func (c *Client) redactDetail(s string) string {
	for _, v := range c.secrets {
		s = strings.ReplaceAll(s, v, redacted)
	}
	s = urlUserinfo.ReplaceAllString(s, "${1}"+redacted+"@")
	s = secretAssignment.ReplaceAllString(s, "${1}"+redacted)
	s = secretScheme.ReplaceAllString(s, "${1} "+redacted)
	s = secretKeyLike.ReplaceAllString(s, "${1}-"+redacted)
	return s
}

// detail makes Result.Detail from a message: single-line, redacted, and cut
// to MaxDetail bytes on a rune boundary.
func (c *Client) detail(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	msg = c.redactDetail(msg)
	if len(msg) > MaxDetail {
		cut := MaxDetail
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// ShownURL is a URL fit for a log line or a failure detail: no userinfo, no
// query, no fragment (any of them may hold a key).
func ShownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return strings.TrimSuffix(u.String(), "/")
}

// errorDetail is a transport or stream error without the request URL that
// net/http wraps around it (the URL is in the probe's config, and its query
// could hold a key).
func (c *Client) errorDetail(err error) string {
	if err == nil {
		return ""
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return c.detail(err.Error())
}

// serverMessage extracts the human-readable message of an error body or
// error event: OpenAI's {"error":{"message":…}}, vLLM's and SGLang's
// {"object":"error","message":…}, TGI's {"error":"…"}, FastAPI's
// {"detail":…}, llama.cpp's {"error":{"code":…,"message":…}}. Anything else
// is shown as it came, so that nothing the server said is lost.
func serverMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Detail  json.RawMessage `json:"detail"`
		// Responses' response.failed: the error is the response's.
		Response struct {
			Error json.RawMessage `json:"error"`
		} `json:"response"`
	}
	if json.Unmarshal(body, &v) != nil {
		return string(body)
	}
	for _, raw := range []json.RawMessage{v.Error, v.Message, v.Detail, v.Response.Error} {
		if m := messageOf(raw); m != "" {
			return m
		}
	}
	return string(body)
}

// messageOf is a JSON value as text: a string as is, an object's "message"
// (else the object itself).
func messageOf(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Message != "" {
		return o.Message
	}
	return string(raw)
}
