package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// Every bad_*.yml in testdata must fail with exactly this error: the messages
// are the user interface of a config mistake.
func TestBadConfigsFailWithExactError(t *testing.T) {
	tests := []struct{ file, err string }{
		{"bad_api.yml", `targets[0].api: must be one of openai-chat, openai-completions, openai-responses, anthropic-messages, not "anthropic"`},
		{"bad_traceparent.yml", "targets[0].traceparent: must be sampled, unsampled or off, not \"always\"\n" +
			`targets[0].continuous_usage_stats: is vLLM's option of the OpenAI chat and completions APIs, not of anthropic-messages`},
		{"bad_arrival.yml", `scenarios[0].load.arrival: must be poisson, constant or gamma, not "uniform"`},
		{"bad_body_managed.yml", `targets[0].body.stream: is managed by llmprobe and cannot be set here`},
		{"bad_buckets.yml", "scenarios[0].buckets.ttft[3]: must be above the boundary before it (250ms), not 200ms\n" +
			"scenarios[0].buckets.ttft[4]: must be > 0, not 0s\n" +
			"scenarios[0].buckets.tokens[2]: must be above the boundary before it (64), not 64"},
		{"bad_buckets_duration.yml", `scenarios[0].buckets.itl[0]: 0.01 is not a duration: a number and a unit (ms, s, m, h, d, w, y), e.g. 500ms, 30s or 1m30s`},
		{"bad_burstiness_not_gamma.yml", `scenarios[0].load.burstiness: applies to arrival gamma only`},
		{"bad_closed_no_concurrency.yml", `scenarios[0].load.concurrency: must be set for closed loop: requests in flight, between 1 and 100000`},
		{"bad_closed_rate.yml", "scenarios[0].load.rate: must not be set for closed loop (use load.concurrency, or load.mode: open)\n" +
			"scenarios[0].load.arrival: must not be set for closed loop"},
		{"bad_dataset_format.yml", `scenarios[0].workload.dataset.format: must be sharegpt or rows, not "csv"`},
		{"bad_dataset_input.yml", `scenarios[0].workload.input_tokens: must not be set with dataset (prompts come from the dataset)`},
		{"bad_dataset_missing.yml", `scenarios[0].workload.dataset.path: "missing.jsonl": no such file or directory`},
		{"bad_duplicate_target.yml", `targets[1].name: "vllm" is already used by targets[0]`},
		{"bad_empty.yml", "targets: at least one target is required\n" +
			"scenarios: at least one scenario is required\n" +
			"probes: at least one probe is required"},
		{"bad_fixed_zero.yml", `scenarios[0].workload.input_tokens.value: must be between 1 and 1048576, not 0`},
		{"bad_global_duration.yml", `global.late_dispatch_threshold: "5 ms" is not a duration: a number and a unit (ms, s, m, h, d, w, y), e.g. 500ms, 30s or 1m30s`},
		{"bad_global_threshold.yml", `global.late_dispatch_threshold: must be > 0, not 0s`},
		{"bad_header_authorization.yml", `targets[0].headers.authorization: must not be set here: use http_client_config.authorization, whose credentials are redacted`},
		{"bad_header_reserved.yml", `targets[0].headers.Content-Type: is managed by llmprobe and cannot be set here`},
		{"bad_header_secret.yml", `targets[0].headers.X-Api-Key: looks secret-bearing: set it in http_client_config.http_headers (secrets or files), which are redacted`},
		{"bad_http_client_config.yml", `targets[0].http_client_config: at most one of bearer_token & bearer_token_file must be configured`},
		{"bad_length_field_unused.yml", `scenarios[0].workload.input_tokens.value: not used by distribution uniform`},
		{"bad_length_no_distribution.yml", `scenarios[0].workload.input_tokens.distribution: must be set (fixed, uniform, normal or lognormal)`},
		{"bad_load_mode.yml", `scenarios[0].load.mode: must be open or closed, not "ramp"`},
		{"bad_max_in_flight.yml", `scenarios[0].load.max_in_flight: must be between 1 and 100000, not -1`},
		{"bad_model_missing.yml", `targets[0].model: must not be empty`},
		{"bad_multiple.yml", "targets[0].name: must not be empty\n" +
			"targets[0].model: must not be empty\n" +
			"scenarios[0].load.concurrency: must be set for closed loop: requests in flight, between 1 and 100000\n" +
			`probes[0].targets[0]: unknown target "vllm"`},
		{"bad_no_probes.yml", `probes: at least one probe is required`},
		{"bad_normal_mean.yml", "scenarios[0].workload.input_tokens.mean: must be between 1 and 1048576, not 0.5\n" +
			"scenarios[0].workload.input_tokens.stddev: must be between 0 and 1048576, not -1"},
		{"bad_open_concurrency.yml", `scenarios[0].load.concurrency: must not be set for open loop (use load.rate, or load.mode: closed)`},
		{"bad_open_no_rate.yml", `scenarios[0].load.rate: must be set for open loop: requests per second, > 0 and at most 100000`},
		{"bad_probe_duplicate_pair.yml", `probes[1]: target "vllm" with scenario "chat" is already probed by probes[0]`},
		{"bad_probe_empty.yml", `probes[0].scenarios: at least one scenario is required`},
		{"bad_probe_unknown.yml", `probes[0].targets[1]: unknown target "sglang"`},
		{"bad_shared_prefix.yml", `scenarios[0].workload.shared_prefix_tokens: 200 exceeds the shortest input (100 tokens)`},
		{"bad_slo_duplicate.yml", `scenarios[0].slos[1].name: "fast" is already used by scenarios[0].slos[0]`},
		{"bad_slo_no_threshold.yml", `scenarios[0].slos[0]: at least one of ttft, tpot, ntpot, e2e must be set`},
		{"bad_slo_stream.yml", `scenarios[0].slos[0].ttft: needs stream: true (no first-token time without streaming)`},
		{"bad_target_name.yml", `targets[0].name: "my vllm" must match ^[a-zA-Z_][a-zA-Z0-9_.:-]*$`},
		{"bad_timestamps.yml", `targets[0].timestamps: must be auto, kernel or user, not "Kernel"`},
		{"bad_timeout_duration.yml", `scenarios[0].timeout: 10 is not a duration: a number and a unit (ms, s, m, h, d, w, y), e.g. 500ms, 30s or 1m30s`},
		{"bad_timeout_zero.yml", `scenarios[0].timeout: must be > 0, not 0s`},
		{"bad_uniform_order.yml", `scenarios[0].workload.output_tokens: min (200) must be <= max (100)`},
		{"bad_unknown_field.yml", `targets[0].modle: unknown field (did you mean model?); allowed here: name, url, api, model, http_client_config, headers, body, continuous_usage_stats, traceparent, honor_retry_after, max_retry_after, timestamps`},
		{"bad_url_credentials.yml", `targets[0].url: must not contain credentials: use http_client_config (basic_auth or authorization)`},
		{"bad_url_missing.yml", `targets[0].url: must not be empty`},
		{"bad_url_query.yml", `targets[0].url: must not have a query or fragment: the API path is appended to it`},
		{"bad_url_scheme.yml", `targets[0].url: scheme must be http or https, not "ftp"`},
		// Limits (README "Limits").
		{"bad_rate_limit.yml", `scenarios[0].load.rate: must be > 0 and at most 100000 (requests per second), not 1e+300`},
		{"bad_concurrency_limit.yml", `scenarios[0].load.concurrency: must be between 1 and 100000 for closed loop, not 100000000`},
		{"bad_max_in_flight_limit.yml", `scenarios[0].load.max_in_flight: must be between 1 and 100000, not 100001`},
		{"bad_burstiness_range.yml", `scenarios[0].load.burstiness: must be between 0.01 and 100, not 0.001`},
		{"bad_shared_prefix_limit.yml", `scenarios[0].workload.shared_prefix_tokens: must be between 0 and 1048576, not 2000000`},
		// Decoding problems named by field, not by section or Go type.
		{"bad_warmup_duration.yml", `scenarios[0].load.warmup: "5 seconds" is not a duration: a number and a unit (ms, s, m, h, d, w, y), e.g. 500ms, 30s or 1m30s`},
		{"bad_type.yml", `scenarios[0].load.concurrency: must be a whole number, not "many"`},
		{"bad_unknown_top_level.yml", `extra: unknown field; allowed here: global, targets, scenarios, probes`},
		{"bad_duplicate_field.yml", `targets[0].model: is set twice; set it once`},
		// URLs in http_client_config: named, never quoted.
		{"bad_proxy_url.yml", `targets[0].http_client_config.proxy_url: not a valid URL (missing ']' in host)`},
		{"bad_token_url.yml", `targets[0].http_client_config.oauth2.token_url: not a valid URL (invalid port after host)`},
	}
	// Every bad file has a case, so none silently stops being checked.
	files, err := filepath.Glob("testdata/bad_*.yml")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.file] = true
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no expected error in this table", f)
		}
	}

	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			c, err := LoadFile(path)
			if err == nil {
				t.Fatalf("loaded %s without error: %+v", path, c)
			}
			// One problem per element, each led by the file.
			var want []string
			for _, line := range strings.Split(tc.err, "\n") {
				want = append(want, `config file "`+path+`": `+line)
			}
			var got []string
			for _, e := range ErrorList(err) {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			if err.Error() != strings.Join(want, "\n") {
				t.Errorf("Error() = %q, want the problems joined by newlines", err)
			}
		})
	}
}

// The credentials in bad_url_credentials.yml never show in the error.
func TestURLCredentialsNotInError(t *testing.T) {
	_, err := LoadBytes([]byte(minimal(`url: "https://user:hunter2@api.example.com:bad port"`)), "")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("want an error without the password, got %v", err)
	}
}

// minimal returns a valid config whose target has extra (indented YAML lines
// of the target) in place of its url line when extra starts with "url:".
func minimal(extra string) string {
	url := "url: http://127.0.0.1:8000"
	if strings.HasPrefix(extra, "url:") {
		url, extra = extra, ""
	}
	return `
targets:
  - name: vllm
    ` + url + `
    model: m
    ` + extra + `
scenarios:
  - name: chat
    load: {rate: 1}
probes:
  - {targets: [vllm], scenarios: [chat]}
`
}

func mustLoad(t *testing.T, yml, dir string) *Config {
	t.Helper()
	c, err := LoadBytes([]byte(yml), dir)
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, minimal(""), "")
	if c.Global != DefaultGlobalConfig || c.Global.Seed != 1 || time.Duration(c.Global.LateDispatchThreshold) != 5*time.Millisecond {
		t.Errorf("global = %+v", c.Global)
	}
	tg := c.Targets[0]
	if tg.API != APIOpenAIChat {
		t.Errorf("api = %q, want openai-chat", tg.API)
	}
	if !tg.HTTPClientConfig.FollowRedirects || !tg.HTTPClientConfig.EnableHTTP2 {
		t.Errorf("http_client_config = %+v, want follow_redirects and enable_http2", tg.HTTPClientConfig)
	}
	s := c.Scenarios[0]
	if s.Stream == nil || !*s.Stream || !s.Streamed() {
		t.Errorf("stream = %v, want true", s.Stream)
	}
	if time.Duration(s.Timeout) != 60*time.Second {
		t.Errorf("timeout = %v, want 60s", s.Timeout)
	}
	wantLoad := Load{Mode: LoadOpen, Arrival: ArrivalPoisson, Rate: 1, MaxInFlight: 1000}
	if s.Load != wantLoad {
		t.Errorf("load = %+v, want %+v", s.Load, wantLoad)
	}
	if s.Workload.InputTokens != (Length{Distribution: DistFixed, Value: 128}) {
		t.Errorf("input_tokens = %+v", s.Workload.InputTokens)
	}
	if s.Workload.OutputTokens != (Length{Distribution: DistFixed, Value: 64}) {
		t.Errorf("output_tokens = %+v", s.Workload.OutputTokens)
	}
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	c := mustLoad(t, `
global: {seed: 7}
targets:
  - name: vllm
    url: http://127.0.0.1:8000/
    api: openai-completions
    model: m
    http_client_config: {follow_redirects: false}
scenarios:
  - name: closed
    stream: false
    timeout: 5s
    load: {mode: closed, concurrency: 4}
    workload:
      input_tokens: {value: 10}
      output_tokens: {distribution: uniform, min: 5, max: 9}
  - name: gamma
    load: {arrival: gamma, rate: 3, max_in_flight: 2, warmup: 1m}
probes:
  - {targets: [vllm], scenarios: [closed, gamma]}
`, "")
	if c.Global.Seed != 7 || time.Duration(c.Global.LateDispatchThreshold) != 5*time.Millisecond {
		t.Errorf("global = %+v: seed set, threshold defaulted", c.Global)
	}
	tg := c.Targets[0]
	if tg.API != APIOpenAICompletions || tg.HTTPClientConfig.FollowRedirects || !tg.HTTPClientConfig.EnableHTTP2 {
		t.Errorf("target = %+v", tg)
	}
	if tg.URL != "http://127.0.0.1:8000" {
		t.Errorf("url = %q: trailing slash should be trimmed", tg.URL)
	}
	closed := c.Scenarios[0]
	if closed.Streamed() || time.Duration(closed.Timeout) != 5*time.Second {
		t.Errorf("closed scenario stream/timeout = %v/%v", closed.Streamed(), closed.Timeout)
	}
	// Closed loop gets no open-loop defaults (they would fail validation).
	if closed.Load != (Load{Mode: LoadClosed, Concurrency: 4}) {
		t.Errorf("closed load = %+v", closed.Load)
	}
	if closed.Workload.InputTokens != (Length{Distribution: DistFixed, Value: 10}) {
		t.Errorf("value-only input_tokens = %+v, want fixed 10", closed.Workload.InputTokens)
	}
	if closed.Workload.OutputTokens != (Length{Distribution: DistUniform, Min: 5, Max: 9}) {
		t.Errorf("output_tokens = %+v", closed.Workload.OutputTokens)
	}
	gamma := c.Scenarios[1].Load
	want := Load{Mode: LoadOpen, Arrival: ArrivalGamma, Rate: 3, Burstiness: 1, MaxInFlight: 2, Warmup: model.Duration(time.Minute)}
	if gamma != want {
		t.Errorf("gamma load = %+v, want %+v", gamma, want)
	}
}

func TestDatasetPathsAndLengths(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rows.jsonl"), []byte(`{"prompt":"hi","output_tokens":3}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, `
targets:
  - name: saas
    url: https://api.example.com
    model: m
    http_client_config:
      authorization: {credentials_file: key.txt}
scenarios:
  - name: from_dataset
    load: {rate: 1}
    workload:
      dataset: {path: rows.jsonl, format: rows}
  - name: dataset_capped
    load: {rate: 1}
    workload:
      dataset: {path: rows.jsonl}
      output_tokens: {value: 32}
probes:
  - {targets: [saas], scenarios: [from_dataset, dataset_capped]}
`, dir)
	want := filepath.Join(dir, "rows.jsonl")
	w := c.Scenarios[0].Workload
	if w.Dataset.Path != want || w.Dataset.Format != DatasetRows {
		t.Errorf("dataset = %+v, want path %s", w.Dataset, want)
	}
	// Unset lengths stay unset with a dataset: the rows decide.
	if w.InputTokens != (Length{}) || w.OutputTokens != (Length{}) {
		t.Errorf("lengths with dataset = %+v / %+v, want unset", w.InputTokens, w.OutputTokens)
	}
	w = c.Scenarios[1].Workload
	if w.Dataset.Format != DatasetShareGPT {
		t.Errorf("format = %q, want sharegpt default", w.Dataset.Format)
	}
	if w.OutputTokens != (Length{Distribution: DistFixed, Value: 32}) {
		t.Errorf("explicit output_tokens with dataset = %+v", w.OutputTokens)
	}
	if got := c.Targets[0].HTTPClientConfig.Authorization.CredentialsFile; got != filepath.Join(dir, "key.txt") {
		t.Errorf("credentials_file = %q, want it resolved against %s", got, dir)
	}
}

// yaml decodes nested maps with interface{} keys; the body must come out
// ready for encoding/json.
func TestBodyIsJSONReady(t *testing.T) {
	c := mustLoad(t, minimal(`body: {ignore_eos: true, chat_template_kwargs: {enable_thinking: false}, stop: [{a: 1}]}`), "")
	b, err := json.Marshal(c.Targets[0].Body)
	if err != nil {
		t.Fatalf("json.Marshal(body): %v", err)
	}
	want := `{"chat_template_kwargs":{"enable_thinking":false},"ignore_eos":true,"stop":[{"a":1}]}`
	if string(b) != want {
		t.Errorf("body JSON = %s, want %s", b, want)
	}
}

func TestPairsOrder(t *testing.T) {
	c := mustLoad(t, `
targets:
  - {name: a, url: http://127.0.0.1:1, model: m}
  - {name: b, url: http://127.0.0.1:2, model: m}
scenarios:
  - {name: x, load: {rate: 1}}
  - {name: y, load: {rate: 1}}
  - {name: z, load: {rate: 1}}
probes:
  - {targets: [b, a], scenarios: [y, x]}
  - {targets: [a, b], scenarios: [z]}
`, "")
	var got []string
	for _, p := range c.Probes() {
		got = append(got, p.Target.Name+"/"+p.Scenario.Name)
	}
	want := []string{"b/y", "b/x", "a/y", "a/x", "a/z", "b/z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("probes = %v, want %v", got, want)
	}
	if p := c.Probes()[0]; p.Target != &c.Targets[1] || p.Scenario != &c.Scenarios[1] {
		t.Error("probes must point into the config")
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c := mustLoad(t, `
targets:
  - name: bearer
    url: https://api.example.com
    model: m
    http_client_config:
      authorization: {credentials: sk-bearer-SECRET1}
      http_headers:
        api-key: {secrets: [sk-header-SECRET2]}
    headers:
      X-Routing-Hint: SECRET3-maybe
      User-Agent: llmprobe-test
    body: {ignore_eos: true, client_secret: SECRET4}
  - name: basic
    url: https://api.example.com
    model: m
    http_client_config:
      basic_auth: {username: u, password: SECRET5}
  - name: keyfile
    url: https://api.example.com
    model: m
    http_client_config:
      authorization: {type: Bearer, credentials_file: /etc/llmprobe/api-key}
scenarios:
  - {name: s, load: {rate: 1}}
probes:
  - {targets: [bearer, basic, keyfile], scenarios: [s]}
`, "")
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5"} {
		if strings.Contains(s, secret) {
			t.Errorf("Redacted output contains %s:\n%s", secret, s)
		}
	}
	for _, shown := range []string{"llmprobe-test", "ignore_eos: true", "credentials_file: /etc/llmprobe/api-key", "username: u", "<secret>"} {
		if !strings.Contains(s, shown) {
			t.Errorf("Redacted output lacks %q:\n%s", shown, s)
		}
	}
	// Redacting must not touch the running config.
	if c.Targets[0].Headers["X-Routing-Hint"] != "SECRET3-maybe" || c.Targets[0].Body["client_secret"] != "SECRET4" {
		t.Error("Redacted modified the config")
	}
}

func TestDefaultConfig(t *testing.T) {
	c, err := Default("http://127.0.0.1:4321")
	if err != nil {
		t.Fatal(err)
	}
	probes := c.Probes()
	if len(probes) != 1 {
		t.Fatalf("probes = %d, want 1", len(probes))
	}
	tg, s := probes[0].Target, probes[0].Scenario
	if tg.Name != "reference" || tg.URL != "http://127.0.0.1:4321" || tg.API != APIOpenAIChat || tg.Model != "llmprobe-reference" {
		t.Errorf("target = %+v", tg)
	}
	want := Load{Mode: LoadOpen, Arrival: ArrivalPoisson, Rate: 2, MaxInFlight: 1000, Warmup: model.Duration(10 * time.Second)}
	if s.Name != "default" || s.Load != want {
		t.Errorf("scenario %q load = %+v, want %+v", s.Name, s.Load, want)
	}
	if s.Workload.InputTokens.Value != 128 || s.Workload.OutputTokens.Value != 64 {
		t.Errorf("workload = %+v", s.Workload)
	}
	wantSLO := []SLO{{Name: "interactive", TTFT: model.Duration(500 * time.Millisecond), TPOT: model.Duration(50 * time.Millisecond)}}
	if !reflect.DeepEqual(s.SLOs, wantSLO) {
		t.Errorf("slos = %+v", s.SLOs)
	}
	if _, err := Default("not a url"); err == nil || !strings.Contains(err.Error(), "targets[0].url") {
		t.Errorf("Default(bad url) error = %v, want one naming targets[0].url", err)
	}
}

func TestTraceSamplingDefault(t *testing.T) {
	for url, want := range map[string]Traceparent{
		"http://127.0.0.1:8000":                     TraceSampled,
		"http://[::1]:8000":                         TraceSampled,
		"http://10.1.2.3":                           TraceSampled,
		"http://vllm:8000":                          TraceSampled,
		"http://vllm.inference.svc:8000":            TraceSampled,
		"http://vllm.inference.svc.cluster.local":   TraceSampled,
		"https://gpu-box.internal":                  TraceSampled,
		"https://api.openai.com":                    TraceUnsampled,
		"https://api.anthropic.com/":                TraceUnsampled,
		"https://8.8.8.8":                           TraceUnsampled,
		"https://my-endpoint.example.com/openai/v1": TraceUnsampled,
	} {
		if got := (&Target{URL: url}).TraceSampling(); got != want {
			t.Errorf("%s: %s, want %s", url, got, want)
		}
	}
	if got := (&Target{URL: "https://api.openai.com", Traceparent: TraceOff}).TraceSampling(); got != TraceOff {
		t.Errorf("explicit off: %s", got)
	}
}

// A scenario's buckets load as written, durations in the SLOs' form.
func TestBucketsLoad(t *testing.T) {
	c, err := LoadBytes([]byte(`
targets: [{name: vllm, url: "http://127.0.0.1:8000", model: m}]
scenarios:
  - name: chat
    load: {rate: 1}
    slos: [{name: fast, ttft: 300ms}]
    buckets:
      ttft: [100ms, 300ms, 1s]
      e2e: [1s, 1m]
      tokens: [16, 128, 1024]
probes: [{targets: [vllm], scenarios: [chat]}]
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := c.Scenarios[0].Buckets
	want := Buckets{
		TTFT:   []model.Duration{model.Duration(100 * time.Millisecond), model.Duration(300 * time.Millisecond), model.Duration(time.Second)},
		E2E:    []model.Duration{model.Duration(time.Second), model.Duration(time.Minute)},
		Tokens: []int{16, 128, 1024},
	}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("buckets %+v, want %+v", b, want)
	}
}
