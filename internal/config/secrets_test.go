package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plantedSecrets: one distinct secret per secret-bearing field of
// prometheus/common's HTTPClientConfig, the target URL and body keys at
// depth. No two share their first 7 characters (yaml quotes long values
// shortened to 7), and none of those occurs in any message by chance.
var plantedSecrets = []string{
	"BASICPW-q81", "AUTHZCR-q82", "BEARERT-q83", "OAUTHCS-q84", "TOKURLP-q85",
	"PROXYPW-q86", "OPROXYP-q87", "HDRSECR-q88", "TLSKEYS-q89", "PCHDRSC-q90",
	"ENDPTPR-q91", "BODYONE-q92", "BODYTWO-q93", "BODYTHR-q94", "TGTURLP-q95",
	"CLAIMSC-q96",
}

// secretsYAML is valid, and holds every planted secret.
const secretsYAML = `
targets:
  - name: basic
    url: https://api.example.com
    model: m
    http_client_config:
      basic_auth:
        username: someone
        password: BASICPW-q81
      proxy_url: http://pu:PROXYPW-q86@proxy.example.com:3128
      proxy_connect_header:
        Proxy-Authorization: [PCHDRSC-q90]
      http_headers:
        X-Api-Key:
          secrets: [HDRSECR-q88]
      tls_config:
        cert: CERT-PEM-TEXT
        key: TLSKEYS-q89
    body:
      ignore_eos: true
      min_tokens: 5
      access_token: BODYONE-q92
      extra:
        api_key: BODYTWO-q93
        list: [{password: BODYTHR-q94}, plain]
  - name: authz
    url: https://api.example.com
    model: m
    http_client_config:
      authorization: {type: Bearer, credentials: AUTHZCR-q82}
  - name: bearer
    url: https://api.example.com
    model: m
    http_client_config:
      bearer_token: BEARERT-q83
  - name: oauth
    url: https://api.example.com
    model: m
    http_client_config:
      oauth2:
        client_id: llmprobe
        client_secret: OAUTHCS-q84
        token_url: https://ou:TOKURLP-q85@auth.example.com/token
        proxy_url: http://opu:OPROXYP-q87@proxy.example.com:3128
        endpoint_params: {audience: inference, client_assertion_secret: ENDPTPR-q91}
        claims: {api_key: CLAIMSC-q96, role: probe}
scenarios:
  - name: s
    load: {rate: 1}
probes:
  - {targets: [basic, authz, bearer, oauth], scenarios: [s]}
`

func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range plantedSecrets {
		if strings.Contains(text, s) || strings.Contains(text, s[:7]) {
			t.Errorf("%s shows secret %s:\n%s", where, s, text)
		}
	}
}

// Every secret-bearing field holds a secret; Redacted shows none of them,
// and every error, whichever field is made invalid, quotes none either.
func TestSecretsNeverShown(t *testing.T) {
	for _, s := range plantedSecrets {
		if s != "TGTURLP-q95" && !strings.Contains(secretsYAML, s) {
			t.Fatalf("secretsYAML lacks %s", s)
		}
	}
	c := mustLoad(t, secretsYAML, "")
	// Validation refuses credentials in a target URL; Redacted must hide
	// them all the same.
	c.Targets[1].URL = "https://tu:TGTURLP-q95@api.example.com"
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	shown := string(out)
	assertNoSecret(t, "Redacted", shown)
	for _, want := range []string{
		"username: someone", "min_tokens: 5", "ignore_eos: true", "plain", "audience: inference", "role: probe",
		"access_token: <secret>", "api_key: <secret>", "password: <secret>",
		"proxy_url: http://pu:<secret>@proxy.example.com:3128",
		"token_url: https://ou:<secret>@auth.example.com/token",
		"proxy_url: http://opu:<secret>@proxy.example.com:3128",
		"url: https://tu:<secret>@api.example.com",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("Redacted lacks %q:\n%s", want, shown)
		}
	}
	if c.Targets[0].Body["access_token"] != "BODYONE-q92" || c.Targets[0].HTTPClientConfig.OAuth2 != nil ||
		c.Targets[3].HTTPClientConfig.OAuth2.EndpointParams["client_assertion_secret"] != "ENDPTPR-q91" {
		t.Error("Redacted modified the running config")
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		name, old, new string
		field          string // the error must name it
	}{
		{"proxy_url unparseable", "http://pu:PROXYPW-q86@proxy.example.com:3128", "http://pu:PROXYPW-q86@[::1", "targets[0].http_client_config.proxy_url"},
		{"proxy_url schemeless", "http://pu:PROXYPW-q86@proxy.example.com:3128", "pu:PROXYPW-q86@proxy:3128", "targets[0].http_client_config.proxy_url"},
		{"proxy_url a list", "http://pu:PROXYPW-q86@proxy.example.com:3128", "[http://pu:PROXYPW-q86@proxy.example.com:3128]", "targets[0].http_client_config.proxy_url"},
		{"token_url unparseable", "https://ou:TOKURLP-q85@auth.example.com/token", "https://ou:TOKURLP-q85@[::1/token", "targets[3].http_client_config.oauth2.token_url"},
		{"token_url no scheme", "https://ou:TOKURLP-q85@auth.example.com/token", "ou:TOKURLP-q85@auth.example.com", "targets[3].http_client_config.oauth2.token_url"},
		{"oauth2 proxy_url unparseable", "http://opu:OPROXYP-q87@proxy.example.com:3128", "http://opu:OPROXYP-q87@[::1", "targets[3].http_client_config.oauth2.proxy_url"},
		{"target url with credentials", "name: authz\n    url: https://api.example.com", "name: authz\n    url: https://tu:TGTURLP-q95@api.example.com", "targets[1].url"},
		{"target url unparseable", "name: authz\n    url: https://api.example.com", "name: authz\n    url: https://tu:TGTURLP-q95@[::1", "targets[1].url"},
		{"target url bad port", "name: authz\n    url: https://api.example.com", "name: authz\n    url: https://tu:TGTURLP-q95@api.example.com:TGTURLP-q95", "targets[1].url"},
		{"basic_auth password a list", "password: BASICPW-q81", "password: [BASICPW-q81]", "targets[0].http_client_config.basic_auth.password"},
		{"basic_auth a string", "basic_auth:\n        username: someone\n        password: BASICPW-q81", "basic_auth: BASICPW-q81", "targets[0].http_client_config.basic_auth"},
		{"basic_auth password and file", "password: BASICPW-q81", "password: BASICPW-q81\n        password_file: /etc/pw", "targets[0].http_client_config"},
		{"authorization credentials and file", "credentials: AUTHZCR-q82}", "credentials: AUTHZCR-q82, credentials_file: /etc/key}", "targets[1].http_client_config"},
		{"authorization credentials a mapping", "credentials: AUTHZCR-q82}", "credentials: {x: AUTHZCR-q82}}", "targets[1].http_client_config.authorization.credentials"},
		{"authorization type basic", "type: Bearer, credentials: AUTHZCR-q82}", "type: Basic, credentials: AUTHZCR-q82}", "targets[1].http_client_config"},
		{"bearer_token and file", "bearer_token: BEARERT-q83", "bearer_token: BEARERT-q83\n      bearer_token_file: /etc/token", "targets[2].http_client_config"},
		{"bearer_token a list", "bearer_token: BEARERT-q83", "bearer_token: [BEARERT-q83]", "targets[2].http_client_config.bearer_token"},
		{"bearer_token misspelt", "bearer_token: BEARERT-q83", "bearer_tokn: BEARERT-q83", "targets[2].http_client_config.bearer_tokn"},
		{"client_secret and file", "client_secret: OAUTHCS-q84", "client_secret: OAUTHCS-q84\n        client_secret_file: /etc/cs", "targets[3].http_client_config"},
		{"client_secret a mapping", "client_secret: OAUTHCS-q84", "client_secret: {x: OAUTHCS-q84}", "targets[3].http_client_config.oauth2.client_secret"},
		{"oauth2 without client_id", "client_id: llmprobe", "scopes: [a]", "targets[3].http_client_config"},
		{"endpoint_params a list", "endpoint_params: {audience: inference, client_assertion_secret: ENDPTPR-q91}", "endpoint_params: [ENDPTPR-q91]", "targets[3].http_client_config.oauth2.endpoint_params"},
		{"http_headers secrets a string", "secrets: [HDRSECR-q88]", "secrets: HDRSECR-q88", "targets[0].http_client_config.http_headers.X-Api-Key.secrets"},
		{"http_headers reserved", "X-Api-Key:\n          secrets: [HDRSECR-q88]", "Authorization:\n          secrets: [HDRSECR-q88]", "targets[0].http_client_config"},
		{"tls key without cert", "        cert: CERT-PEM-TEXT\n", "", "targets[0].http_client_config"},
		{"tls key a list", "key: TLSKEYS-q89", "key: [TLSKEYS-q89]", "targets[0].http_client_config.tls_config.key"},
		{"tls min_version", "key: TLSKEYS-q89", "key: TLSKEYS-q89\n        min_version: TLSKEYS-q89", "targets[0].http_client_config.tls_config.min_version"},
		{"proxy_connect_header without proxy", "      proxy_url: http://pu:PROXYPW-q86@proxy.example.com:3128\n", "", "targets[0].http_client_config"},
		{"proxy_connect_header a string", "Proxy-Authorization: [PCHDRSC-q90]", "Proxy-Authorization: PCHDRSC-q90", "targets[0].http_client_config.proxy_connect_header.Proxy-Authorization"},
		{"body managed field", "access_token: BODYONE-q92", "access_token: BODYONE-q92\n      n: 2", "targets[0].body.n"},
		{"body key not a string", "api_key: BODYTWO-q93", "api_key: BODYTWO-q93\n        7: BODYTHR-q94", "targets[0].body.extra"},
		{"header looks secret", "    model: m\n    http_client_config:\n      authorization", "    model: m\n    headers: {X-Auth-Token: AUTHZCR-q82}\n    http_client_config:\n      authorization", "targets[1].headers.X-Auth-Token"},
		{"yaml syntax error", "probes:\n", "probes: [\n", ""},
		{"duration elsewhere", "load: {rate: 1}", "load: {rate: 1, warmup: BODYONE-q92}", "scenarios[0].load.warmup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(secretsYAML, tc.old) != 1 {
				t.Fatalf("%q occurs %d times in secretsYAML", tc.old, strings.Count(secretsYAML, tc.old))
			}
			yml := strings.Replace(secretsYAML, tc.old, tc.new, 1)
			path := filepath.Join(dir, "llmprobe.yml")
			if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
				t.Fatal(err)
			}
			for where, load := range map[string]func() error{
				"LoadBytes": func() error { _, err := LoadBytes([]byte(yml), dir); return err },
				"LoadFile":  func() error { _, err := LoadFile(path); return err },
			} {
				err := load()
				if err == nil {
					t.Fatalf("%s: no error", where)
				}
				assertNoSecret(t, where, err.Error())
				for _, e := range ErrorList(err) {
					assertNoSecret(t, where+" ErrorList", e.Error())
				}
				if tc.field != "" && !strings.Contains(err.Error(), tc.field+":") {
					t.Errorf("%s: error does not name %s:\n%s", where, tc.field, err)
				}
			}
		})
	}
}
