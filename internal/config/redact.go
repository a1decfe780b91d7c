package config

import (
	"fmt"
	"net/http"

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
// /config page: http_client_config secrets (credentials, passwords, client
// secrets, bearer tokens, TLS keys, secret headers) show as <secret>;
// header values outside a short allowlist show as <secret>; values under a
// secret-looking key (secretLooking) in body, at any depth, and in oauth2
// endpoint_params and claims show as <secret>; and every URL anywhere
// (url, proxy_url, oauth2 token_url and proxy_url, body strings...) has
// its userinfo password, or a lone userinfo, replaced by <secret>. File
// paths (credentials_file) are shown: they are not secrets. The running
// configuration is not modified.
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
			t.Body = redactValue(t.Body, false).(map[string]interface{})
		}
		if o := t.HTTPClientConfig.OAuth2; o != nil {
			oc := *o
			if oc.EndpointParams != nil {
				p := make(map[string]string, len(oc.EndpointParams))
				for k, v := range oc.EndpointParams {
					if secretLooking(k) {
						v = Redacted
					}
					p[k] = v
				}
				oc.EndpointParams = p
			}
			if oc.Claims != nil {
				oc.Claims = redactValue(oc.Claims, false).(map[string]interface{})
			}
			t.HTTPClientConfig.OAuth2 = &oc
		}
		cp.Targets[i] = t
	}
	out, err := yaml.Marshal(&cp)
	if err != nil {
		return nil, err
	}
	// Every string of the result, whatever field holds it, loses its URL
	// credentials. (prometheus/common shows proxy_url's password as
	// xxxxx and oauth2's token_url in clear.)
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("re-reading the redacted configuration: %w", err)
	}
	return yaml.Marshal(redactURLValues(doc))
}

// redactValue copies a body-like value (maps, lists, scalars), replacing
// everything under a secret-looking key, at any depth, by <secret>.
func redactValue(v interface{}, secret bool) interface{} {
	if secret {
		return Redacted
	}
	switch v := v.(type) {
	case map[string]interface{}:
		m := make(map[string]interface{}, len(v))
		for k, e := range v {
			m[k] = redactValue(e, secretLooking(k))
		}
		return m
	case map[interface{}]interface{}:
		m := make(map[interface{}]interface{}, len(v))
		for k, e := range v {
			m[k] = redactValue(e, secretLooking(fmt.Sprint(k)))
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(v))
		for i, e := range v {
			l[i] = redactValue(e, false)
		}
		return l
	}
	return v
}

// redactURLValues applies redactURLs to every string in a decoded YAML
// value, in place.
func redactURLValues(v interface{}) interface{} {
	switch v := v.(type) {
	case yaml.MapSlice:
		for i := range v {
			v[i].Value = redactURLValues(v[i].Value)
		}
		return v
	case []interface{}:
		for i := range v {
			v[i] = redactURLValues(v[i])
		}
		return v
	case string:
		return redactURLs(v)
	}
	return v
}
