package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
)

// A real Prometheus of each supported major version scrapes one llmprobe
// daemon (on its embedded default configuration, at a higher rate) and the
// reference endpoint it probes, in every histogram mode that version offers,
// with the shipped rules and alerts loaded. Every dashboard panel query and
// every recording rule must return data, and the TTFT, ITL, TPOT and e2e
// quantiles must agree with what the endpoint actually did.
//
// Modes (how the daemon's histograms, which expose classic and native
// buckets side by side, are ingested):
//   - classic: _bucket series only (native histograms not scraped);
//   - native: native histograms only (a native-scraping Prometheus drops the
//     classic buckets of a histogram that has native ones);
//   - native+classic: both (always_scrape_classic_histograms: Prometheus
//     3.x; 2.45 to 2.55 called it scrape_classic_histograms; 2.42 has no
//     such option, so it runs classic and native only).
//
// Prometheus 3.x has scraped native histograms by the scrape_native_histograms
// setting since 3.9 (the feature flag is a no-op there); 2.42 by
// --enable-feature=native-histograms.

// Native histograms of factor 1.1 (schema 3, buckets 9% wide) and the
// classic ladders must resolve every latency quantile to these bounds.
const (
	nativeTolerance  = 0.05
	classicTolerance = 0.10
	// How long the measured load runs once every Prometheus scrapes.
	measureFor = 60 * time.Second
	// Arrival rate of the test's load. The embedded default's 2 req/s gives
	// too few samples for a p99 in a minute; at 10 req/s (650 requests) one
	// request more or less in a p99's bucket still moves the estimate by
	// about 1.5% (a simulation of this TTFT distribution put 1 run in 200
	// over 5% at 650 requests, none in 1,500 at 2,600).
	testRate = 20
)

type promMode struct {
	name    string
	native  bool // native histograms scraped
	classic bool // classic buckets kept
}

var (
	modeClassic       = promMode{"classic", false, true}
	modeNative        = promMode{"native", true, false}
	modeNativeClassic = promMode{"native+classic", true, true}
)

type promVersion struct {
	name                 string // major version, as in the subtests' names
	prometheus, promtool string
	modes                []promMode
}

// prometheusVersions finds both Prometheus builds: 3.x built from its Go
// module by tools/prometheus/build.sh, 2.42 from Debian. ./test.sh provides
// both; a missing one fails the test.
func prometheusVersions(t *testing.T) []promVersion {
	t.Helper()
	v3 := promVersion{name: "3", modes: []promMode{modeClassic, modeNative, modeNativeClassic},
		prometheus: os.Getenv("LLMPROBE_PROMETHEUS3"), promtool: os.Getenv("LLMPROBE_PROMTOOL3")}
	if v3.prometheus == "" || v3.promtool == "" {
		t.Fatal("LLMPROBE_PROMETHEUS3 or LLMPROBE_PROMTOOL3 is not set: run ./test.sh, which builds Prometheus 3.x (tools/prometheus/build.sh) and sets them")
	}
	v2 := promVersion{name: "2", modes: []promMode{modeClassic, modeNative},
		prometheus: os.Getenv("LLMPROBE_PROMETHEUS2"), promtool: os.Getenv("LLMPROBE_PROMTOOL2")}
	for _, p := range []*string{&v2.prometheus, &v2.promtool} {
		if *p != "" {
			continue
		}
		name := "prometheus"
		if p == &v2.promtool {
			name = "promtool"
		}
		var err error
		if *p, err = exec.LookPath(name); err != nil {
			t.Fatalf("%s 2.x is not installed: ./test.sh installs Debian's (apt-get install prometheus)", name)
		}
	}
	for _, v := range []promVersion{v3, v2} {
		for _, bin := range []string{v.prometheus, v.promtool} {
			out, err := exec.Command(bin, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", bin, err, out)
			}
			if !strings.Contains(string(out), "version "+v.name+".") {
				t.Fatalf("%s is not Prometheus %s.x: %s", bin, v.name, strings.SplitN(string(out), "\n", 2)[0])
			}
		}
	}
	return []promVersion{v3, v2}
}

// promInstance is one Prometheus process under test.
type promInstance struct {
	version promVersion
	mode    promMode
	addr    string
}

func (p *promInstance) name() string { return "prometheus" + p.version.name + "/" + p.mode.name }

func TestRealPrometheus(t *testing.T) {
	versions := prometheusVersions(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	endpoint := startTruthEndpoint(t, referenceConfig())
	probeAddr := freeAddr(t)

	// Every Prometheus first, so that each has the histograms' first
	// (empty) samples and counts every observation after them.
	var instances []*promInstance
	for _, v := range versions {
		for _, m := range v.modes {
			p := &promInstance{version: v, mode: m, addr: freeAddr(t)}
			sub := filepath.Join(dir, "prometheus"+v.name+"-"+strings.ReplaceAll(m.name, "+", "-"))
			if err := os.Mkdir(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			cfg := writeFile(t, sub, "prometheus.yml", promConfig(v, m, repo, probeAddr, endpoint.addr))
			args := []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(sub, "data"),
				"--web.listen-address=" + p.addr}
			if v.name == "2" && m.native {
				args = append(args, "--enable-feature=native-histograms")
			}
			start(t, v.prometheus, args...)
			instances = append(instances, p)
		}
	}
	for _, p := range instances {
		waitHTTP(t, "http://"+p.addr+"/-/ready", 60*time.Second)
	}

	start(t, binary, "--config.file="+daemonConfig(t, dir, endpoint.addr), "--web.listen-address="+probeAddr)
	waitHTTP(t, "http://"+probeAddr+"/-/ready", 20*time.Second)

	// The measured window opens once every Prometheus scrapes both jobs.
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range instances {
		for {
			if v, ok := promQuery(t, p.addr, `count(up{job=~"llmprobe|vllm"} == 1)`); ok && v == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not scrape llmprobe and the reference endpoint within 30s", p.name())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	from := time.Now()
	time.Sleep(measureFor)
	to := time.Now()
	tr := endpoint.truth(from, to)
	t.Logf("ground truth: %d requests, %d token gaps in %s", tr.requests, len(tr.itl), to.Sub(from).Round(time.Second))
	if tr.requests < testRate*int(measureFor/time.Second)/2 {
		t.Fatalf("the endpoint finished only %d requests in %s at %d req/s", tr.requests, measureFor, testRate)
	}
	// Panels' rates span the measured window (the rules' own 5m windows
	// reach back to the first scrape, a few seconds before it: the same
	// stationary load).
	window := (to.Sub(from) + time.Second - 1).Truncate(time.Second)

	rules := shippedRules(t, repo)
	panels := dashboardQueries(t, repo)
	vars := map[string]string{
		"__rate_interval": promDuration(window), "__interval": "1s", "__range": promDuration(window),
		"job": "llmprobe", "target": "reference", "scenario": "default", "instance": probeAddr, "engine_job": "vllm",
	}
	excused := make([]int, len(mayBeEmpty)) // empty results each exception let pass
	for _, p := range instances {
		t.Run(p.name(), func(t *testing.T) {
			c := &promCheck{t: t, p: p, at: to, truth: tr, excused: excused, window: promDuration(window)}
			c.ingests()
			c.rulesHealthy(rules)
			for _, r := range rules {
				if r.Record != "" {
					c.query(r.file+": record "+r.Record, r.Expr, r.Record, r.Expr)
				}
			}
			for _, q := range panels {
				expr, err := substitute(q.expr, vars)
				if err != nil {
					c.fail("%s: %v", q.where, err)
					continue
				}
				c.query(q.where, q.expr, expr, expr)
			}
			c.report()
		})
	}
	// An exception that excused nothing is no longer needed.
	for i, e := range mayBeEmpty {
		if excused[i] == 0 {
			t.Errorf("mayBeEmpty entry %q excused no empty query in any mode: remove it", e.re)
		}
	}
}

// promDuration writes d as a Prometheus duration.
func promDuration(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) + "s" }

// promConfig scrapes the daemon and the reference endpoint (as job vllm:
// it serves vLLM's server-side metrics, for the dashboard's engine row)
// every second, with the shipped rules and alerts evaluated every second.
func promConfig(v promVersion, m promMode, repo, probeAddr, endpointAddr string) string {
	var opts string
	if v.name == "3" {
		opts = fmt.Sprintf("\n    scrape_native_histograms: %t", m.native)
		if m.native && m.classic {
			opts += "\n    always_scrape_classic_histograms: true"
		}
	}
	return fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %[1]s/deploy/prometheus/rules.yml
  - %[1]s/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: llmprobe%[2]s
    static_configs:
      - targets: ['%[3]s']
  - job_name: vllm%[2]s
    static_configs:
      - targets: ['%[4]s']
        labels: {target: reference}
`, repo, opts, probeAddr, endpointAddr)
}

// daemonConfig is the embedded default configuration (internal/config/default.yml)
// against the test's reference endpoint, at testRate with a short warm-up.
func daemonConfig(t *testing.T, dir, endpointAddr string) string {
	t.Helper()
	b, err := os.ReadFile("../../internal/config/default.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, r := range [][2]string{
		{"url: http://127.0.0.1:0", "url: http://" + endpointAddr},
		{"rate: 2\n", fmt.Sprintf("rate: %d\n", testRate)},
		{"warmup: 10s\n", "warmup: 2s\n"},
	} {
		if strings.Count(cfg, r[0]) != 1 {
			t.Fatalf("internal/config/default.yml no longer has exactly one %q: update daemonConfig", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	return writeFile(t, dir, "llmprobe.yml", cfg)
}

type rule struct {
	Record, Alert, Expr string
	file                string
}

func shippedRules(t *testing.T, repo string) []rule {
	t.Helper()
	var all []rule
	for _, f := range []string{"rules.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join(repo, "deploy/prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Groups []struct {
				Rules []rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range file.Groups {
			for _, r := range g.Rules {
				r.file = "deploy/prometheus/" + f
				all = append(all, r)
			}
		}
	}
	return all
}

type panelQuery struct {
	where, expr string
}

// dashboardQueries is every panel target of every dashboard, rows' panels
// included, and every query variable (as label_values(...)).
func dashboardQueries(t *testing.T, repo string) []panelQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repo, "dashboards/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards/*.json (%v)", err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var out []panelQuery
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels     []json.RawMessage `json:"panels"`
			Templating struct {
				List []struct {
					Name  string          `json:"name"`
					Type  string          `json:"type"`
					Query json.RawMessage `json:"query"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := "dashboards/" + filepath.Base(f)
		var walk func([]json.RawMessage)
		walk = func(raw []json.RawMessage) {
			for _, r := range raw {
				var p panel
				if err := json.Unmarshal(r, &p); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				for _, tg := range p.Targets {
					if tg.Expr != "" {
						out = append(out, panelQuery{fmt.Sprintf("%s: panel %q (%s)", name, p.Title, tg.RefID), tg.Expr})
					}
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			var q struct {
				Query string `json:"query"`
			}
			if json.Unmarshal(v.Query, &q) != nil {
				json.Unmarshal(v.Query, &q.Query) // older dashboards: a plain string
			}
			out = append(out, panelQuery{fmt.Sprintf("%s: variable $%s", name, v.Name), q.Query})
		}
	}
	return out
}

var templateVar = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// substitute replaces Grafana's template variables by the test's values
// (one value each, as a dashboard with one target and scenario selected).
func substitute(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := templateVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := templateVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, m)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("template variables the test does not know: %s", strings.Join(unknown, ", "))
	}
	return out, nil
}

// mayBeEmpty names the queries that have no data on the reference endpoint,
// each with its reason; every other query must return data.
var mayBeEmpty = []struct {
	re     *regexp.Regexp
	reason string
}{
	{regexp.MustCompile(`\bsglang:`), "the reference endpoint serves vLLM's metric names; no SGLang runs in this test"},
	{regexp.MustCompile(`\bllamacpp:`), "the reference endpoint serves vLLM's metric names; no llama.cpp runs in this test"},
	{regexp.MustCompile(`^max by \(target, scenario, objective\) \(llmprobe_slo_objective_seconds\{[^}]*quantity="(ntpot|e2e)"\}\)$`),
		"the SLO threshold line of a quantity the embedded default's objective sets no threshold for (it sets ttft and tpot)"},
}

var (
	latencyQuantile = regexp.MustCompile(`^\s*histogram_quantile\(\s*([0-9.]+)\s*,`)
	latencyMetric   = regexp.MustCompile(`\b(llmprobe_(?:time_to_first_token|inter_token_latency|time_per_output_token|request_duration)_seconds)(_bucket)?\b`)
	quantileArg     = regexp.MustCompile(`histogram_quantile\(\s*([0-9.]+)\s*,`)
)

// promCheck collects one Prometheus' failures, to report them all at once.
type promCheck struct {
	t        *testing.T
	p        *promInstance
	at       time.Time
	truth    truth
	failures []string
	figures  []string
	excused  []int  // per mayBeEmpty entry
	window   string // the measured window, as a range
}

// clientDelay is the delay llmprobe's own client added at quantile q of
// metric, as llmprobe measured and exported it (against the endpoint's
// stamps): the TTFT bias for TTFT, the emit lag (receive − emit) for the
// per-event quantities, spread over the default's 63 decode gaps for TPOT.
// The endpoint's stamps are the truth for what the engine did; what
// llmprobe's histograms can be held to is that truth plus the client's own
// delay, which it exports (and judges in llmprobe_client_saturated). On a
// quiet machine that is a fraction of a millisecond; beside a CPU hog the
// tail of it is tens of milliseconds, and a check without it would test
// the machine's load instead of the way from histogram to panel. The
// delay's quantile is taken at (1+q)/2: if the truth is below its own
// quantile there and the delay below its own, the sum is below both sums
// but for at most 1−q of the requests.
func (c *promCheck) clientDelay(metric string, q float64) float64 {
	delay, per := "llmprobe_ground_truth_emit_lag_seconds", 1.0
	switch metric {
	case "llmprobe_time_to_first_token_seconds":
		delay = "llmprobe_ground_truth_ttft_bias_seconds"
	case "llmprobe_time_per_output_token_seconds":
		per = 63
	}
	qq := strconv.FormatFloat((1+q)/2, 'f', -1, 64)
	expr := fmt.Sprintf(`histogram_quantile(%s, sum(rate(%s[%s]))) or histogram_quantile(%s, sum by (le) (rate(%s_bucket[%s])))`,
		qq, delay, c.window, qq, delay, c.window)
	v, err := c.instant(expr)
	if err != nil || len(v) != 1 || math.IsNaN(v[0]) {
		c.fail("the client's own delay (%s): %v %v", expr, v, err)
		return 0
	}
	return math.Max(0, v[0]) / per
}

func (c *promCheck) fail(format string, args ...any) {
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

func (c *promCheck) report() {
	c.t.Logf("%s latency quantiles against the endpoint's own stamps:\n%s", c.p.name(), strings.Join(c.figures, "\n"))
	if len(c.failures) > 0 {
		c.t.Errorf("%s: %d problems:\n%s", c.p.name(), len(c.failures), strings.Join(c.failures, "\n"))
	}
}

// ingests checks that this Prometheus stores the kinds of histogram its mode
// says: native histograms (samples of the bare name), classic buckets, or
// both.
func (c *promCheck) ingests() {
	const h = "llmprobe_time_to_first_token_seconds"
	for _, k := range []struct {
		kind, expr string
		want       bool
	}{
		{"native histograms", h, c.p.mode.native},
		{"classic buckets", h + "_bucket", c.p.mode.classic},
	} {
		values, err := c.instant(k.expr)
		if err != nil {
			c.fail("%s: %v", k.expr, err)
			continue
		}
		if got := len(values) > 0; got != k.want {
			c.fail("stores %s: %t, want %t in %s mode (%d series of %s)", k.kind, got, k.want, c.p.mode.name, len(values), k.expr)
		}
	}
}

// rulesHealthy checks that Prometheus loaded every shipped rule and alert
// and evaluates each without error.
func (c *promCheck) rulesHealthy(want []rule) {
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				File  string `json:"file"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	status, body := get(c.t, "http://"+c.p.addr+"/api/v1/rules")
	if status != 200 || json.Unmarshal([]byte(body), &resp) != nil {
		c.fail("/api/v1/rules: HTTP %d: %s", status, body)
		return
	}
	n := 0
	for _, g := range resp.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				c.fail("%s: rule %s: health %q: %s", filepath.Base(g.File), r.Name, r.Health, r.LastError)
			}
		}
	}
	if n != len(want) {
		c.fail("Prometheus loaded %d rules, the shipped files have %d", n, len(want))
	}
}

// query runs expr at the end of the measured window; it must return data,
// and if def (expr itself, or the expression of the rule that expr names)
// is a TTFT, ITL, TPOT or e2e quantile, agree with the ground truth. shown
// is the query as written in its file.
func (c *promCheck) query(where, shown, expr, def string) {
	var values []float64
	var err error
	if strings.HasPrefix(expr, "label_values(") {
		values, err = c.labelValues(expr)
	} else {
		values, err = c.instant(expr)
	}
	if err != nil {
		c.fail("%s: %v\n    %s", where, err, shown)
		return
	}
	finite := 0
	for _, v := range values {
		if !math.IsNaN(v) {
			finite++
		}
	}
	if finite == 0 {
		for i, e := range mayBeEmpty {
			if e.re.MatchString(def) {
				c.excused[i]++
				return
			}
		}
		what := "no data"
		if len(values) > 0 {
			what = fmt.Sprintf("only NaN (%d series)", len(values))
		}
		c.fail("%s: %s\n    %s", where, what, shown)
		return
	}
	c.checkQuantile(where, shown, def, values)
}

func (c *promCheck) checkQuantile(where, shown, expr string, values []float64) {
	if !latencyQuantile.MatchString(expr) {
		return
	}
	metrics := map[string]bool{}
	native := false
	for _, m := range latencyMetric.FindAllStringSubmatch(expr, -1) {
		metrics[m[1]] = true
		native = native || m[2] == ""
	}
	if len(metrics) != 1 {
		return // not one of the four latencies llmprobe measures from the send
	}
	qs := map[string]bool{}
	for _, m := range quantileArg.FindAllStringSubmatch(expr, -1) {
		qs[m[1]] = true
	}
	if len(qs) != 1 {
		c.fail("%s: quantiles %v in one query\n    %s", where, qs, shown)
		return
	}
	var metric, qs1 string
	for m := range metrics {
		metric = m
	}
	for q := range qs {
		qs1 = q
	}
	q, err := strconv.ParseFloat(qs1, 64)
	if err != nil {
		c.fail("%s: quantile %q: %v", where, qs1, err)
		return
	}
	// Native resolution where this Prometheus has native histograms and the
	// query reads them; the classic ladder's otherwise.
	tol, res := classicTolerance, "classic"
	if c.p.mode.native && native {
		tol, res = nativeTolerance, "native"
	}
	want := quantile(c.truth.series(metric), q)
	delay := c.clientDelay(metric, q)
	for _, got := range values {
		if math.IsNaN(got) {
			continue
		}
		c.figures = append(c.figures, fmt.Sprintf("  %-40s p%-4g %s: %.5fs, endpoint %.5fs (%+.1f%%), client delay %.5fs — %s",
			metric, q*100, res, got, want, (got-want)/want*100, delay, where))
		// Bucket resolution either way; the client's own delay only above
		// (it never makes a request faster).
		if got < want*(1-tol) || got > want*(1+tol)+delay {
			c.fail("%s: %s p%g = %.5fs, the endpoint's own %.5fs: %+.1f%%, outside the %s bound of %.0f%% (plus the client's own delay %.5fs above)\n    %s",
				where, metric, q*100, got, want, (got-want)/want*100, res, tol*100, delay, shown)
		}
	}
}

// instant runs an instant query at the end of the measured window and
// returns one value per series (a histogram sample counts as 1).
func (c *promCheck) instant(expr string) ([]float64, error) {
	u := fmt.Sprintf("http://%s/api/v1/query?query=%s&time=%.3f", c.p.addr, url.QueryEscape(expr), float64(c.at.UnixMilli())/1000)
	_, body := get(c.t, u)
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return nil, fmt.Errorf("response %q: %v", body, err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("error: %s", resp.Error)
	}
	switch resp.Data.ResultType {
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(resp.Data.Result, &v); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
		return []float64{f}, err
	case "vector":
		var vec []struct {
			Value     *[2]any `json:"value"`
			Histogram *[2]any `json:"histogram"`
		}
		if err := json.Unmarshal(resp.Data.Result, &vec); err != nil {
			return nil, err
		}
		values := make([]float64, 0, len(vec))
		for _, s := range vec {
			if s.Histogram != nil {
				values = append(values, 1)
				continue
			}
			f, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
			if err != nil {
				return nil, err
			}
			values = append(values, f)
		}
		return values, nil
	}
	return nil, fmt.Errorf("result type %q", resp.Data.ResultType)
}

var labelValuesCall = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)

// labelValues answers a Grafana label_values(selector, label) variable
// query as Grafana does, from Prometheus' label values API.
func (c *promCheck) labelValues(expr string) ([]float64, error) {
	m := labelValuesCall.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return nil, fmt.Errorf("not label_values(selector, label)")
	}
	u := fmt.Sprintf("http://%s/api/v1/label/%s/values?match[]=%s&start=%.3f&end=%.3f", c.p.addr, m[2],
		url.QueryEscape(m[1]), float64(c.at.Add(-time.Minute).UnixMilli())/1000, float64(c.at.UnixMilli())/1000)
	_, body := get(c.t, u)
	var resp struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return nil, fmt.Errorf("response %q: %v", body, err)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("error: %s", resp.Error)
	}
	values := make([]float64, len(resp.Data))
	return values, nil
}

// promQuery runs an instant query now and returns its single scalar result.
func promQuery(t *testing.T, addr, query string) (float64, bool) {
	t.Helper()
	status, body := get(t, "http://"+addr+"/api/v1/query?query="+url.QueryEscape(query))
	if status != 200 {
		t.Fatalf("query %s: HTTP %d: %s", query, status, body)
	}
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]interface{} `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("query %s: %v", query, err)
	}
	if len(resp.Data.Result) != 1 {
		return 0, false
	}
	s, _ := resp.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

func TestSubstituteTemplateVariables(t *testing.T) {
	vars := map[string]string{"target": "reference", "__rate_interval": "60s"}
	got, err := substitute(`rate(x{target=~"$target"}[${__rate_interval}])`, vars)
	if want := `rate(x{target=~"reference"}[60s])`; err != nil || got != want {
		t.Errorf("substitute = %q, %v; want %q", got, err, want)
	}
	if _, err := substitute(`x{pod=~"$pod"}`, vars); err == nil || !strings.Contains(err.Error(), "$pod") {
		t.Errorf("an unknown variable gave %v, want an error naming $pod", err)
	}
}
