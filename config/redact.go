package config

import (
	"net/http"
	"strings"

	"go.yaml.in/yaml/v2"
)

// Redacted is what stands in for a hidden value; prometheus/common's Secret
// marshals the same way.
const Redacted = "<secret>"

// shownHeaders are the headers whose values Redacted shows; any other header
// value is replaced by <secret>. An allowlist, not a denylist, because a
// custom header's name does not tell whether it carries a secret.
var shownHeaders = map[string]bool{
	"Accept": true, "Accept-Language": true, "Cache-Control": true, "User-Agent": true,
	"Openai-Organization": true, "Openai-Project": true, "Openai-Beta": true,
	"X-Request-Id": true, "Traceparent": true,
}

// ShownHeader reports whether a target header's value may be shown; every
// other one is treated as a secret.
func ShownHeader(name string) bool { return shownHeaders[http.CanonicalHeaderKey(name)] }

// Redacted returns the configuration as YAML with secrets hidden, for the
// landing page: http_client_config secrets (credentials, passwords, client
// secrets, secret headers) show as <secret>, header values outside a short
// allowlist show as <secret>, and body values whose key looks secret-bearing
// show as <secret>. File paths (credentials_file) are shown: they are not
// secrets.
func (c *Config) Redacted() ([]byte, error) {
	cp := *c
	cp.Targets = make([]Target, len(c.Targets))
	for i, t := range c.Targets {
		if t.Headers != nil {
			h := make(map[string]string, len(t.Headers))
			for k, v := range t.Headers {
				if !ShownHeader(k) {
					v = Redacted
				}
				h[k] = v
			}
			t.Headers = h
		}
		if t.Body != nil {
			b := make(map[string]interface{}, len(t.Body))
			for k, v := range t.Body {
				if secretBodyKey(k) {
					v = Redacted
				}
				b[k] = v
			}
			t.Body = b
		}
		cp.Targets[i] = t
	}
	return yaml.Marshal(&cp)
}

// secretBodyKey: like secretLooking, but "token" is left out, since body
// fields such as min_tokens are common and harmless.
func secretBodyKey(k string) bool {
	lower := strings.ToLower(k)
	for _, w := range []string{"auth", "key", "secret", "password", "passwd", "credential"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}
