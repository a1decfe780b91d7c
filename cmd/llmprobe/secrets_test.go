package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Secrets never show: a distinct secret planted in every secret-bearing
// field of every target (authorization credentials, basic_auth password,
// oauth2 client_secret and token_url userinfo, proxy_url userinfo,
// http_headers secrets, the target URL's userinfo, body keys at depth), then
// every output the daemon has is read: --config.check, a failed start-up, a
// failed reload over HTTP (response and log), /config, /metrics, the landing
// page, and the debug log while the server answers 401 echoing what it was
// sent, the token endpoint refuses, and another target is down.
func TestSecretsNeverShow(t *testing.T) {
	secrets := map[string]string{
		"authorization.credentials": "S01-authcred-7f3a91",
		"basic_auth.password":       "S02-basicpw-55c2e0",
		"oauth2.client_secret":      "S03-oauthsecret-a41d",
		"oauth2.token_url userinfo": "S04-tokenurlpw-19be",
		"proxy_url userinfo":        "S05-proxypw-c0ffee",
		"http_headers secret":       "S06-headersecret-77aa",
		"url userinfo":              "S07-urlpw-d00dfeed",
		"body.api_key":              "S08-bodykey-0b5e55",
		"body.extra.access_token":   "S09-deepbody-31337",
		"body.list[0].password":     "S10-listbody-4242aa",
		"bad proxy_url userinfo":    "S11-badproxypw-9e9e",
	}
	// One server plays the engine, the proxy and the token endpoint: it
	// refuses everything, echoing every header and the body it got.
	var mu sync.Mutex
	var received strings.Builder
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		fmt.Fprintf(&received, "%s %s %v %s\n", r.Method, r.URL, r.Header, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":{"message":"invalid credentials: you sent %v and %s"}}`, r.Header, body)
	}))
	defer echo.Close()
	host := strings.TrimPrefix(echo.URL, "http://")
	down := freeAddr(t)

	dir := t.TempDir()
	good := fmt.Sprintf(`
targets:
  - name: bearer
    url: http://%[1]s
    model: m
    http_client_config:
      authorization: {type: Bearer, credentials: %[2]s}
      proxy_url: http://proxyuser:%[5]s@%[1]s
      http_headers:
        X-Api-Key: {secrets: [%[6]s]}
    body:
      api_key: %[8]s
      extra: {access_token: %[9]s, min_tokens: 1}
      list: [{password: %[10]s}]
  - name: basic
    url: http://%[1]s
    model: m
    http_client_config:
      basic_auth: {username: u, password: %[3]s}
  - name: oauth
    url: http://%[1]s
    model: m
    http_client_config:
      oauth2: {client_id: c, client_secret: %[4]s, token_url: "http://tok:%[11]s@%[1]s/token"}
  - name: down
    url: http://%[12]s
    model: m
scenarios:
  - name: s
    load: {mode: open, arrival: constant, rate: 10}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [bearer, basic, oauth, down], scenarios: [s]}]
`, host, secrets["authorization.credentials"], secrets["basic_auth.password"], secrets["oauth2.client_secret"],
		secrets["proxy_url userinfo"], secrets["http_headers secret"], "", secrets["body.api_key"],
		secrets["body.extra.access_token"], secrets["body.list[0].password"], secrets["oauth2.token_url userinfo"], down)
	cfgPath := writeFile(t, dir, "llmprobe.yml", good)
	// The same with a proxy_url that does not parse (its password quoted
	// by the parser's error, once), credentials in a target URL (refused)
	// and a duration that does not parse.
	bad := strings.Replace(good, "proxy_url: http://proxyuser:"+secrets["proxy_url userinfo"]+"@"+host,
		"proxy_url: http://proxyuser:"+secrets["bad proxy_url userinfo"]+"@[::1", 1)
	bad = strings.Replace(bad, "rate: 10}", "rate: 10, warmup: 5 seconds}", 1)
	bad = strings.Replace(bad, "url: http://"+down, "url: http://downuser:"+secrets["url userinfo"]+"@"+down, 1)
	badPath := writeFile(t, dir, "bad.yml", bad)

	var outputs []string
	add := func(what, text string) { outputs = append(outputs, "== "+what+" ==\n"+text) }

	// --config.check, and a start-up, of the bad file.
	for _, args := range [][]string{{"--config.file=" + badPath, "--config.check"}, {"--config.file=" + badPath, "--web.listen-address=" + freeAddr(t)}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v accepted a configuration with an unparseable proxy_url", args)
		}
		add(strings.Join(args, " "), string(out))
	}

	// The daemon on the good file, at debug level, with a reload over HTTP.
	addr := freeAddr(t)
	p := start(t, binary, "--config.file="+cfgPath, "--web.listen-address="+addr, "--web.enable-lifecycle", "--log.level=debug", "--workers=0")
	waitHTTP(t, "http://"+addr+"/-/ready", 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, metrics := get(t, "http://"+addr+"/metrics")
		if strings.Contains(metrics, `outcome="http_4xx",scenario="s",target="bearer"} `) &&
			!strings.Contains(metrics, `outcome="connect_error",scenario="s",target="down"} 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failures counted within 15s:\n%s", p.output.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, path := range []string{"/config", "/metrics", "/"} {
		status, body := get(t, "http://"+addr+path)
		if status != 200 {
			t.Errorf("GET %s: %d", path, status)
		}
		add("GET "+path, body)
	}
	if !strings.Contains(outputs[len(outputs)-3], "<secret>") {
		t.Errorf("/config shows no redacted value at all: %s", outputs[len(outputs)-3])
	}
	writeFile(t, dir, "llmprobe.yml", bad)
	resp, err := http.Post("http://"+addr+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Errorf("the reload of a bad configuration succeeded")
	}
	add("POST /-/reload", string(body))
	time.Sleep(500 * time.Millisecond) // the reload's log lines
	add("daemon log (debug)", p.output.String())

	mu.Lock()
	sent := received.String()
	mu.Unlock()
	if !strings.Contains(sent, secrets["authorization.credentials"]) || !strings.Contains(sent, secrets["body.api_key"]) {
		t.Fatalf("the planted credentials were not sent, so the echo tests nothing:\n%s", sent)
	}
	// The outputs must be the real thing: the failures logged with the
	// server's message (which echoed the credentials), the bad file's
	// problems named.
	log := outputs[len(outputs)-1]
	for _, want := range []string{"invalid credentials: you sent", "target=down", "target=oauth", "proxy_url", "warmup"} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon log lacks %q:\n%s", want, log)
		}
	}
	for _, out := range outputs {
		for field, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the %s secret shows in %s", field, excerpt(out, s))
			}
		}
	}
}

// excerpt is the output's heading and the text around s.
func excerpt(out, s string) string {
	head, _, _ := strings.Cut(out, "\n")
	i := strings.Index(out, s)
	from, to := max(0, i-200), min(len(out), i+len(s)+100)
	return head + " …" + out[from:to] + "…"
}
