package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/version"
	"go.yaml.in/yaml/v2"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/metrics"
)

// Paths relative to this package's directory, where go test runs.
const (
	promDir       = "prometheus"
	dashboardsDir = "../dashboards"
	k8sDir        = "kubernetes"
	composeDir    = "compose"
)

func promtoolPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): ./test.sh installs it (Debian package prometheus)", err)
	}
	return p
}

// promtool runs promtool in dir and fails the test with its output on error.
func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtoolPath(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, promDir, "check", "rules", "rules.yml", "alerts.yml")
}

func TestPromtoolRuleUnitTests(t *testing.T) {
	out := promtool(t, promDir, "test", "rules", "tests.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

func TestPromtoolCheckConfig(t *testing.T) {
	// Run from the config's directory: its rule_files are relative to it.
	out := promtool(t, promDir, "check", "config", "prometheus.yml")
	for _, f := range []string{"rules.yml", "alerts.yml"} {
		if !strings.Contains(out, "Checking "+f) {
			t.Errorf("promtool check config did not check %s: does prometheus.yml list it in rule_files?\n%s", f, out)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRuleFile(t *testing.T, path string) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, path), &rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rf
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exportedNames returns every metric name llmprobe's daemon exports, with the
// _bucket, _sum and _count series of histograms: the real collectors,
// registered as the daemon does, with one series of each vector created.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector("llmprobe"))
	m := metrics.New(reg)
	cfg, err := config.Default("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Scenarios {
		if len(cfg.Scenarios[i].SLOs) == 0 {
			t.Fatalf("default scenario %q has no SLO: the SLO series would be missing", cfg.Scenarios[i].Name)
		}
		m.ForProbe("t", &cfg.Scenarios[i])
	}
	metrics.NewSaturation(reg).Worker("0", 1)
	config.NewSafeConfig(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[n+s] = true
			}
		}
	}
	return names
}

// recordedNames returns the names rules.yml records.
func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, g := range readRuleFile(t, filepath.Join(promDir, "rules.yml")).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names
}

var identifier = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)

// engineName matches a name in an inference engine's own namespace. Any such
// name in a deploy file must be listed in externalMetrics (a typo fails,
// never vanishes into a panel that shows no data); the letter after the colon
// keeps host:port strings such as vllm:8000 out.
var engineName = regexp.MustCompile(`^(vllm|sglang|llamacpp):[a-z]`)

// externalMetric is a metric that another project exports and that deploy
// files may name beside llmprobe's own: the dashboard's engine row and the
// README's PromQL put server-side figures next to client-side ones.
type externalMetric struct {
	name    string // as exposed on /metrics (counters with their _total)
	kind    string // counter, gauge or histogram
	project string
	source  string // where the name is defined, as read to verify it
}

// Where the names below were read (December 2026):
const (
	// vLLM V1 engine, PrometheusStatLogger; labels model_name, engine.
	// Served on the API server's port (default 8000) at /metrics, always on.
	// Counters are declared without _total and exposed with it.
	vllmSource = "vllm/v1/metrics/loggers.py"
	// SGLang: SchedulerMetricsCollector (gauges, queue time) and
	// TokenizerMetricsCollector (request latencies, token counters); label
	// model_name and more. Served with --enable-metrics.
	sglangSource = "python/sglang/srt/metrics/collector.py"
	// llama.cpp llama-server, served with --metrics, no labels: the /metrics
	// route in tools/server/server-context.cpp renders
	// server_task_result_metrics::to_metrics() (tools/server/server-task.cpp);
	// older trees had the handler in tools/server/server.cpp or
	// examples/server/server.cpp, with the same names.
	llamacppSource = "tools/server/server-context.cpp, tools/server/server-task.cpp"
)

// externalMetrics is the explicit list of names that are not llmprobe's and
// that deploy files may use. Add a name only after reading it in the
// project's source; TestQueryMetricNamesKnown fails on any other.
var externalMetrics = []externalMetric{
	// vLLM.
	{"vllm:time_to_first_token_seconds", "histogram", "vLLM", vllmSource},           // frontend arrival (before tokenization) to first token
	{"vllm:inter_token_latency_seconds", "histogram", "vLLM", vllmSource},           // per token
	{"vllm:request_time_per_output_token_seconds", "histogram", "vLLM", vllmSource}, // per request: decode time / (tokens - 1)
	// The per-token histogram's name before 0.11; hidden since 0.12 (unless
	// --show-hidden-metrics-for-version=0.11), for older servers only.
	{"vllm:time_per_output_token_seconds", "histogram", "vLLM", vllmSource},
	{"vllm:e2e_request_latency_seconds", "histogram", "vLLM", vllmSource}, // frontend arrival to last token
	{"vllm:request_queue_time_seconds", "histogram", "vLLM", vllmSource},  // WAITING phase in the engine core
	{"vllm:request_prefill_time_seconds", "histogram", "vLLM", vllmSource},
	{"vllm:request_decode_time_seconds", "histogram", "vLLM", vllmSource},
	{"vllm:num_requests_running", "gauge", "vLLM", vllmSource},
	{"vllm:num_requests_waiting", "gauge", "vLLM", vllmSource},
	{"vllm:kv_cache_usage_perc", "gauge", "vLLM", vllmSource},
	{"vllm:num_preemptions_total", "counter", "vLLM", vllmSource},
	{"vllm:prompt_tokens_total", "counter", "vLLM", vllmSource},
	{"vllm:generation_tokens_total", "counter", "vLLM", vllmSource},
	{"vllm:request_success_total", "counter", "vLLM", vllmSource},

	// SGLang.
	{"sglang:time_to_first_token_seconds", "histogram", "SGLang", sglangSource},
	{"sglang:inter_token_latency_seconds", "histogram", "SGLang", sglangSource}, // a chunk of k tokens: k observations of gap/k
	{"sglang:e2e_request_latency_seconds", "histogram", "SGLang", sglangSource},
	{"sglang:queue_time_seconds", "histogram", "SGLang", sglangSource}, // waiting queue to forward
	{"sglang:num_running_reqs", "gauge", "SGLang", sglangSource},
	{"sglang:num_queue_reqs", "gauge", "SGLang", sglangSource},
	{"sglang:token_usage", "gauge", "SGLang", sglangSource},
	{"sglang:prompt_tokens_total", "counter", "SGLang", sglangSource},
	{"sglang:generation_tokens_total", "counter", "SGLang", sglangSource},
	{"sglang:num_requests_total", "counter", "SGLang", sglangSource},

	// llama.cpp: no latency histograms; per-slot time sums and token counts.
	{"llamacpp:prompt_tokens_total", "counter", "llama.cpp", llamacppSource},            // excluding cached prompt tokens
	{"llamacpp:prompt_seconds_total", "counter", "llama.cpp", llamacppSource},           // prompt processing time, summed over slots
	{"llamacpp:tokens_predicted_total", "counter", "llama.cpp", llamacppSource},         // generated tokens, the first included
	{"llamacpp:tokens_predicted_seconds_total", "counter", "llama.cpp", llamacppSource}, // first to last generated token, summed over slots
	{"llamacpp:prompt_tokens_seconds", "gauge", "llama.cpp", llamacppSource},            // prompt tokens/s between scrapes
	{"llamacpp:predicted_tokens_seconds", "gauge", "llama.cpp", llamacppSource},         // generation tokens/s between scrapes
	{"llamacpp:requests_processing", "gauge", "llama.cpp", llamacppSource},              // busy slots
	{"llamacpp:requests_deferred", "gauge", "llama.cpp", llamacppSource},                // waiting for a free slot

	// Prometheus itself: the series every scrape writes (LLMProbeDown reads it).
	{"up", "gauge", "Prometheus", "the scrape health series of every target"},
}

// externalNames returns the external names with a histogram's _bucket, _sum
// and _count series, each mapped to the project it comes from.
func externalNames(t *testing.T) map[string]string {
	t.Helper()
	names := map[string]string{}
	for _, m := range externalMetrics {
		if m.project == "" || m.source == "" {
			t.Errorf("external metric %s: no project or source", m.name)
		}
		series := []string{m.name}
		switch m.kind {
		case "histogram":
			series = append(series, m.name+"_bucket", m.name+"_sum", m.name+"_count")
		case "counter":
			if !strings.HasSuffix(m.name, "_total") {
				t.Errorf("external counter %s: want the exposed name, with _total", m.name)
			}
		case "gauge":
		default:
			t.Errorf("external metric %s: kind %q", m.name, m.kind)
		}
		for _, s := range series {
			if _, dup := names[s]; dup {
				t.Errorf("external metric %s listed twice", s)
			}
			names[s] = m.project
		}
	}
	return names
}

// PromQL words that are not metric names: keywords, binary operators, and
// aggregation operators (which may be followed by by/without before their
// parenthesis).
var (
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "start": true, "end": true,
	}
	promqlGrouping    = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	promqlAggregators = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true,
	}
)

// promqlMetricNames returns the metric names an expression selects: the
// identifiers left once strings, label matchers, ranges, numbers and
// durations, comments, function and aggregation names, keywords and grouping
// label lists are taken out. Enough of a lexer for the expressions here;
// promtool checks that they parse.
func promqlMetricNames(expr string) []string {
	var names []string
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isIdent := func(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
	skipString := func(i int) int { // i at the opening quote; returns the index after the closing one
		q := expr[i]
		for i++; i < len(expr); i++ {
			if expr[i] == '\\' && q != '`' {
				i++
			} else if expr[i] == q {
				return i + 1
			}
		}
		return i
	}
	skipTo := func(i int, open, closing byte) int { // i at open; returns the index after the matching close
		depth := 0
		for i < len(expr) {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				i = skipString(i)
				continue
			case c == open:
				depth++
			case c == closing:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	nextNonSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n' || expr[i] == '\r') {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(i)
		case c == '{':
			i = skipTo(i, '{', '}')
		case c == '[':
			i = skipTo(i, '[', ']')
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case (c >= '0' && c <= '9') || (c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9'):
			// A number or a duration: 0.99, 1e-3, 0x1f, 5m, 1h30m.
			for i++; i < len(expr); i++ {
				if d := expr[i]; isIdent(d) || d == '.' {
					continue
				} else if (d == '+' || d == '-') && (expr[i-1] == 'e' || expr[i-1] == 'E') {
					continue
				}
				break
			}
		case isIdentStart(c):
			j := i + 1
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word, k := expr[i:j], nextNonSpace(j)
			i = j
			switch {
			case promqlGrouping[word]:
				if k < len(expr) && expr[k] == '(' {
					i = skipTo(k, '(', ')') // label names, not metrics
				}
			case promqlKeywords[word] || promqlAggregators[word]:
			case k < len(expr) && expr[k] == '(':
				// a function
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	return names
}

// filesUsingMetrics are every file users apply or read that names metrics.
func filesUsingMetrics(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{
		filepath.Join(promDir, "*.yml"),
		filepath.Join(dashboardsDir, "*.json"),
		filepath.Join(k8sDir, "*.yaml"),
		filepath.Join(composeDir, "*.yml"),
		"README.md",
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// TestMetricNamesExist fails on any llmprobe_* name in rules, alerts, tests,
// dashboards and docs that llmprobe does not export, and on any recording-rule
// name (level:metric:operations) that rules.yml does not record.
func TestMetricNamesExist(t *testing.T) {
	exported := exportedNames(t)
	recorded := recordedNames(t)
	external := externalNames(t)
	for name := range recorded {
		if parts := strings.Split(name, ":"); len(parts) != 3 || slices.Contains(parts, "") {
			t.Errorf("recording rule %q: want level:metric:operations", name)
		}
	}
	used := map[string]bool{}
	for _, f := range filesUsingMetrics(t) {
		for _, id := range identifier.FindAllString(string(readFile(t, f)), -1) {
			if engineName.MatchString(id) {
				used[id] = true
				if _, ok := external[id]; !ok {
					t.Errorf("%s: %s is not in externalMetrics (names read in the engine's source)", f, id)
				}
				continue
			}
			if !strings.Contains(id, "llmprobe_") || strings.HasSuffix(id, "_") {
				continue // not a metric; "llmprobe_" alone is prose for a prefix
			}
			used[id] = true
			switch {
			case strings.Contains(id, ":"):
				if !recorded[id] {
					t.Errorf("%s: %s is not recorded by %s/rules.yml", f, id, promDir)
				}
			case strings.HasPrefix(id, "llmprobe_"):
				if !exported[id] {
					t.Errorf("%s: llmprobe does not export %s", f, id)
				}
			}
		}
	}
	// Guard against a scan that silently finds nothing.
	for _, must := range []string{
		"llmprobe_time_to_first_token_seconds_bucket", "llmprobe_slo_good_requests_total",
		"llmprobe_client_saturated", "llmprobe_worker_restarts_total", "llmprobe_config_last_reload_successful",
		"target_scenario:llmprobe_time_to_first_token_seconds:p99_rate5m",
		"vllm:time_to_first_token_seconds_bucket", "sglang:time_to_first_token_seconds_bucket",
		"llamacpp:tokens_predicted_seconds_total",
	} {
		if !used[must] {
			t.Errorf("no file uses %s: the scan is broken or the rules lost it", must)
		}
	}
}

// unknownNames returns the names expr selects that are neither llmprobe's
// (exported or recorded) nor in externalMetrics.
func unknownNames(expr string, exported, recorded map[string]bool, external map[string]string) []string {
	var out []string
	for _, n := range promqlMetricNames(expr) {
		if _, ok := external[n]; !exported[n] && !recorded[n] && !ok {
			out = append(out, n)
		}
	}
	return out
}

// TestQueryMetricNamesKnown fails on any metric name, llmprobe's or not, that
// a dashboard query, a recording rule or an alert selects and that is neither
// exported by llmprobe, recorded by rules.yml, nor listed in externalMetrics.
func TestQueryMetricNamesKnown(t *testing.T) {
	exported, recorded, external := exportedNames(t), recordedNames(t), externalNames(t)
	grafanaVars := strings.NewReplacer(
		"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
		"$job", ".*", "$target", ".*", "$scenario", ".*", "$instance", ".*", "$engine_job", ".*",
	)
	seen := map[string]bool{}
	check := func(where, expr string) {
		for _, n := range promqlMetricNames(expr) {
			seen[n] = true
		}
		for _, n := range unknownNames(expr, exported, recorded, external) {
			t.Errorf("%s selects %s: not exported by llmprobe, not recorded by rules.yml, not in externalMetrics", where, n)
		}
	}
	for f, d := range readDashboards(t) {
		for _, p := range flatten(d.Panels) {
			for _, q := range p.Targets {
				check(fmt.Sprintf("%s: panel %q query %s", f, p.Title, q.RefID), grafanaVars.Replace(q.Expr))
			}
		}
	}
	for _, rf := range []string{"rules.yml", "alerts.yml"} {
		for _, g := range readRuleFile(t, filepath.Join(promDir, rf)).Groups {
			for _, r := range g.Rules {
				check(fmt.Sprintf("%s: %s%s", rf, r.Record, r.Alert), r.Expr)
			}
		}
	}
	// Guard against a lexer that finds nothing: the engine row and the rules.
	for _, must := range []string{
		"llmprobe_time_to_first_token_seconds_bucket", "vllm:time_to_first_token_seconds_bucket",
		"sglang:num_queue_reqs", "llamacpp:tokens_predicted_total", "up",
	} {
		if !seen[must] {
			t.Errorf("no query selects %s: the lexer or the dashboard is broken", must)
		}
	}
}

// TestPromQLMetricNames checks the lexer itself, and that an unlisted name
// fails whatever its prefix.
func TestPromQLMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{
			`histogram_quantile(0.99, sum by (job, le) (rate(vllm:time_to_first_token_seconds_bucket{job=~"a|b", le!="+Inf"}[5m])))`,
			[]string{"vllm:time_to_first_token_seconds_bucket"},
		}, {
			`sum without (instance) (rate(llamacpp:tokens_predicted_seconds_total[5m])) / on (job) group_left (model_name) rate(llamacpp:tokens_predicted_total[1h:1m] offset 5m)`,
			[]string{"llamacpp:tokens_predicted_seconds_total", "llamacpp:tokens_predicted_total"},
		}, {
			`up{job=~".*llmprobe.*"} == 0 unless on (job, instance) max by (job, instance) (max_over_time(llmprobe_client_saturated[30m])) == 1`,
			[]string{"up", "llmprobe_client_saturated"},
		}, {
			`label_replace(vector(1e-3) * 2.5, "dst", "$1", "src", "(.*)") > bool 0x1f and count(foo:bar) # a comment naming nope_total`,
			[]string{"foo:bar"},
		}, {
			`topk(3, sum(rate(sglang:num_requests_total[5m] @ end()))) or absent(sglang:num_running_reqs)`,
			[]string{"sglang:num_requests_total", "sglang:num_running_reqs"},
		},
	} {
		if got := promqlMetricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("promqlMetricNames(%s) = %q, want %q", c.expr, got, c.want)
		}
	}
	exported, recorded, external := exportedNames(t), recordedNames(t), externalNames(t)
	expr := `rate(vllm:time_to_first_token_second_bucket[5m]) + rate(node_cpu_seconds_total[5m]) + rate(llmprobe_requests_total[5m]) + vllm:num_requests_waiting`
	if got, want := unknownNames(expr, exported, recorded, external), []string{"vllm:time_to_first_token_second_bucket", "node_cpu_seconds_total"}; !slices.Equal(got, want) {
		t.Errorf("unknown names %q, want %q", got, want)
	}
	// Each engine's names carry its own prefix.
	prefix := map[string]string{"vLLM": "vllm:", "SGLang": "sglang:", "llama.cpp": "llamacpp:"}
	for _, m := range externalMetrics {
		if p, ok := prefix[m.project]; ok && !strings.HasPrefix(m.name, p) {
			t.Errorf("external metric %s from %s: want prefix %s", m.name, m.project, p)
		}
	}
}

// TestSimulatorServesVLLMNames: the reference endpoint serves vLLM-shaped
// names so that vLLM dashboards (this one's engine row included) work
// against it; each must be a real vLLM name.
func TestSimulatorServesVLLMNames(t *testing.T) {
	external := externalNames(t)
	src := string(readFile(t, "../simulator/metrics.go"))
	found := regexp.MustCompile(`"(vllm:[a-z_]+)"`).FindAllStringSubmatch(src, -1)
	if len(found) == 0 {
		t.Fatal("no vllm: names in simulator/metrics.go: the scan is broken")
	}
	for _, m := range found {
		if external[m[1]] != "vLLM" {
			t.Errorf("the simulator serves %s, which externalMetrics does not list as vLLM's", m[1])
		}
	}
}

func TestAlertsHaveSeverityAndAnnotations(t *testing.T) {
	rf := readRuleFile(t, filepath.Join(promDir, "alerts.yml"))
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			// Alerts that blame the endpoint must hold back while the
			// client is saturated (the promise: measure the engine).
			if strings.Contains(r.Expr, "slo_good_requests") || strings.Contains(r.Expr, "requests_errors") {
				if !strings.Contains(r.Expr, "unless on (job, instance)") || !strings.Contains(r.Expr, "llmprobe_client_saturated") {
					t.Errorf("%s blames the endpoint but is not held back while llmprobe_client_saturated is 1:\n%s", r.Alert, r.Expr)
				}
			}
		}
	}
	for _, want := range []string{
		"LLMProbeSLOBurnRateFast", "LLMProbeSLOBurnRateSlow", "LLMProbeClientSaturated", "LLMProbeWorkerRestarting",
		"LLMProbeConfigReloadFailed", "LLMProbeEndpointErrors", "LLMProbeLoadShed", "LLMProbeDown",
	} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
	// The runbook documents every alert.
	readme := string(readFile(t, "README.md"))
	for _, a := range alerts {
		if !strings.Contains(readme, a) {
			t.Errorf("README.md does not document %s", a)
		}
	}
}

type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

func readDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", dashboardsDir, err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(readFile(t, f)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: trailing data after the dashboard", f)
		}
		out[f] = d
	}
	return out
}

// flatten lists every panel, rows' nested panels included.
func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func TestDashboardPanels(t *testing.T) {
	for f, d := range readDashboards(t) {
		if d.Title == "" || d.UID == "" || d.SchemaVersion < 36 {
			t.Errorf("%s: title %q, uid %q, schemaVersion %d: want a title, a uid and schemaVersion >= 36", f, d.Title, d.UID, d.SchemaVersion)
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v.Type + " " + string(v.Query)
		}
		if !strings.HasPrefix(vars["datasource"], `datasource "prometheus"`) {
			t.Errorf("%s: want a prometheus datasource variable, got %q", f, vars["datasource"])
		}
		for _, v := range []string{"job", "target", "scenario"} {
			if !strings.HasPrefix(vars[v], "query ") || !strings.Contains(vars[v], "label_values(llmprobe_requests_total") {
				t.Errorf("%s: want a query variable %s from label_values(llmprobe_requests_total...), got %q", f, v, vars[v])
			}
		}
		ids := map[int]bool{}
		graphs := 0
		for _, p := range flatten(d.Panels) {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d used twice", f, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("%s: panel %q has no size", f, p.Title)
			}
			if p.Type == "row" {
				continue
			}
			graphs++
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q does not use the ${datasource} variable", f, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, q := range p.Targets {
				if strings.TrimSpace(q.Expr) == "" || q.RefID == "" {
					t.Errorf("%s: panel %q has a query without expr or refId", f, p.Title)
				}
			}
		}
		if graphs == 0 {
			t.Errorf("%s: no panels", f)
		}
	}
}

// TestDashboardQueriesParse runs every dashboard query through promtool's
// PromQL parser, Grafana's variables replaced by what they expand to.
func TestDashboardQueriesParse(t *testing.T) {
	grafanaVars := strings.NewReplacer(
		"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
		"$job", ".*", "$target", ".*", "$scenario", ".*", "$instance", ".*", "$engine_job", ".*",
	)
	var rf strings.Builder
	rf.WriteString("groups:\n  - name: dashboard-queries\n    rules:\n")
	n := 0
	for f, d := range readDashboards(t) {
		for _, p := range flatten(d.Panels) {
			for _, q := range p.Targets {
				expr := grafanaVars.Replace(q.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: panel %q: unknown variable in %s", f, p.Title, q.Expr)
					continue
				}
				b, _ := json.Marshal(expr) // a JSON string is a valid YAML string
				fmt.Fprintf(&rf, "      - record: dashboard:query_%d:check\n        expr: %s\n", n, b)
				n++
			}
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "queries.yml"), []byte(rf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := promtool(t, dir, "check", "rules", "queries.yml")
	if want := fmt.Sprintf("SUCCESS: %d rules found", n); !strings.Contains(out, want) {
		t.Fatalf("want %q in:\n%s", want, out)
	}
}

// k8s objects, only the fields these tests check (yaml.v2 ignores the rest).
type k8sMeta struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
}

type httpProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type deployment struct {
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    int   `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name  string   `yaml:"name"`
					Args  []string `yaml:"args"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					ReadinessProbe *httpProbe `yaml:"readinessProbe"`
					LivenessProbe  *httpProbe `yaml:"livenessProbe"`
					Resources      struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					SecurityContext struct {
						ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
					} `yaml:"securityContext"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type monitor struct {
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		PodMetricsEndpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"podMetricsEndpoints"`
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// readK8s decodes every document of every manifest, keyed by kind; raw keeps
// each document for kind-specific decoding.
func readK8s(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]byte{}
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, f)))
		for {
			var doc yaml.MapSlice
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			raw, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var m k8sMeta
			if err := yaml.Unmarshal(raw, &m); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if m.APIVersion == "" || m.Kind == "" {
				t.Fatalf("%s: a document without apiVersion or kind", f)
			}
			if _, dup := byKind[m.Kind]; dup {
				t.Fatalf("%s: a second %s; these tests expect one of each kind", f, m.Kind)
			}
			byKind[m.Kind] = raw
		}
	}
	return byKind
}

func decodeKind(t *testing.T, byKind map[string][]byte, kind string, into any) {
	t.Helper()
	raw, ok := byKind[kind]
	if !ok {
		t.Fatalf("no %s in %s", kind, k8sDir)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetesManifests(t *testing.T) {
	byKind := readK8s(t)
	var d deployment
	decodeKind(t, byKind, "Deployment", &d)
	podLabels := d.Spec.Template.Metadata.Labels
	if !subset(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not match pod labels %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	pod := d.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Error("pod must run as a non-root user")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("container root filesystem must be read-only")
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("container must not allow privilege escalation")
	}
	// CPU requests = limits: GOMAXPROCS follows the limit, --workers follows
	// GOMAXPROCS, and the node must guarantee what the workers count on.
	req, lim := c.Resources.Requests["cpu"], c.Resources.Limits["cpu"]
	if req == "" || req != lim {
		t.Errorf("CPU request %q and limit %q must be set and equal", req, lim)
	}
	portName := ""
	for _, p := range c.Ports {
		if p.ContainerPort == 10212 {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Fatal("container does not expose 10212 by name")
	}
	for probe, want := range map[*httpProbe]string{c.ReadinessProbe: "/-/ready", c.LivenessProbe: "/-/healthy"} {
		if probe == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port != portName {
			t.Errorf("want an HTTP probe on %s port %s, got %+v", want, portName, probe)
		}
	}

	// --config.file points into the ConfigMap volume, and the configuration
	// there loads; its credentials_file lies in the Secret volume.
	mounts := map[string]string{} // volume name -> mount path
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var cmName, cmMount, secretMount string
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			cmName, cmMount = v.ConfigMap.Name, mounts[v.Name]
		case v.Secret != nil:
			secretMount = mounts[v.Name]
		}
	}
	if cmMount == "" || secretMount == "" || cmName == "" {
		t.Fatalf("want a mounted ConfigMap and a mounted Secret volume, got %v", mounts)
	}
	// The ConfigMap is kustomize's configMapGenerator's (its hashed name
	// rolls the pods when the file changes).
	var kz struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
		Images []struct {
			Name    string `yaml:"name"`
			NewTag  string `yaml:"newTag"`
			NewName string `yaml:"newName"`
		} `yaml:"images"`
	}
	decodeKind(t, byKind, "Kustomization", &kz)
	for _, r := range kz.Resources {
		if _, err := os.Stat(filepath.Join(k8sDir, r)); err != nil {
			t.Errorf("kustomization resource %s: %v", r, err)
		}
	}
	if _, ok := byKind["ConfigMap"]; ok {
		t.Error("a ConfigMap manifest: the configuration must come from the configMapGenerator, so that changing it rolls the pods")
	}
	cm := struct{ Data map[string]string }{Data: map[string]string{}}
	for _, g := range kz.ConfigMapGenerator {
		if g.Name != cmName {
			continue
		}
		for _, f := range g.Files {
			cm.Data[filepath.Base(f)] = string(readFile(t, filepath.Join(k8sDir, f)))
		}
	}
	if len(cm.Data) == 0 {
		t.Fatalf("the Deployment mounts ConfigMap %q, which no configMapGenerator of kustomization.yaml makes", cmName)
	}
	var configFile string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	key, ok := strings.CutPrefix(configFile, cmMount+"/")
	if !ok || cm.Data[key] == "" {
		t.Fatalf("--config.file=%q is not a key of the ConfigMap mounted at %s", configFile, cmMount)
	}
	cfg, err := config.LoadBytes([]byte(cm.Data[key]), t.TempDir())
	if err != nil {
		t.Fatalf("the ConfigMap's configuration does not load: %v", err)
	}
	credFiles := 0
	for _, tg := range cfg.Targets {
		if a := tg.HTTPClientConfig.Authorization; a != nil && a.CredentialsFile != "" {
			credFiles++
			if !strings.HasPrefix(a.CredentialsFile, secretMount+"/") {
				t.Errorf("target %s: credentials_file %s is not in the Secret mounted at %s", tg.Name, a.CredentialsFile, secretMount)
			}
		}
	}
	if credFiles == 0 {
		t.Error("the ConfigMap's configuration reads no credentials_file from the Secret")
	}

	var svc service
	decodeKind(t, byKind, "Service", &svc)
	svcLabels := map[string]string{}
	if raw := byKind["Service"]; raw != nil {
		var m k8sMeta
		yaml.Unmarshal(raw, &m)
		svcLabels = m.Metadata.Labels
	}
	if !subset(svc.Spec.Selector, podLabels) {
		t.Errorf("Service selector %v does not match pod labels %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != portName {
		t.Errorf("Service must target port %s: %+v", portName, svc.Spec.Ports)
	}

	var pm monitor
	decodeKind(t, byKind, "PodMonitor", &pm)
	if !subset(pm.Spec.Selector.MatchLabels, podLabels) || len(pm.Spec.PodMetricsEndpoints) != 1 ||
		pm.Spec.PodMetricsEndpoints[0].Port != portName || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
		t.Errorf("PodMonitor must select the pods and scrape %s /metrics: %+v", portName, pm.Spec)
	}
	var sm monitor
	decodeKind(t, byKind, "ServiceMonitor", &sm)
	if !subset(sm.Spec.Selector.MatchLabels, svcLabels) || len(sm.Spec.Endpoints) != 1 ||
		sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor must select the Service and scrape its port /metrics: %+v", sm.Spec)
	}

	// Native histograms need the protobuf format, asked for first; the
	// classic buckets are kept beside them.
	for _, k := range []string{"PodMonitor", "ServiceMonitor"} {
		var m struct {
			Spec struct {
				ScrapeProtocols         []string `yaml:"scrapeProtocols"`
				ScrapeClassicHistograms *bool    `yaml:"scrapeClassicHistograms"`
			} `yaml:"spec"`
		}
		decodeKind(t, byKind, k, &m)
		if len(m.Spec.ScrapeProtocols) == 0 || m.Spec.ScrapeProtocols[0] != "PrometheusProto" {
			t.Errorf("%s: scrapeProtocols %v, want PrometheusProto first (native histograms)", k, m.Spec.ScrapeProtocols)
		}
		if m.Spec.ScrapeClassicHistograms == nil || !*m.Spec.ScrapeClassicHistograms {
			t.Errorf("%s: want scrapeClassicHistograms: true", k)
		}
	}

	// The image is the release's, pinned the same in both places, never
	// :latest.
	var img struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Image string `yaml:"image"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	decodeKind(t, byKind, "Deployment", &img)
	image := img.Spec.Template.Spec.Containers[0].Image
	name, tag, ok := strings.Cut(image, ":")
	if !ok || tag == "" || tag == "latest" {
		t.Errorf("Deployment image %q: want a pinned release tag", image)
	}
	if len(kz.Images) != 1 || kz.Images[0].Name != name || kz.Images[0].NewTag != tag || kz.Images[0].NewName != "" {
		t.Errorf("kustomization images %+v: want %s pinned to %s, as in deployment.yaml", kz.Images, name, tag)
	}
}

// TestKubernetesSecretOptional: a keyless user gets a running pod.
func TestKubernetesSecretOptional(t *testing.T) {
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Volumes []struct {
						Secret *struct {
							SecretName string `yaml:"secretName"`
							Optional   *bool  `yaml:"optional"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	decodeKind(t, readK8s(t), "Deployment", &d)
	n := 0
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			n++
			if v.Secret.Optional == nil || !*v.Secret.Optional {
				t.Errorf("Secret volume %s is not optional: a pod without the Secret would never start", v.Secret.SecretName)
			}
		}
	}
	if n == 0 {
		t.Error("no Secret volume")
	}
}

// TestKubernetesReplicasOverlay: the overlay builds on the base, runs more
// than one replica and names each replica's seed.
func TestKubernetesReplicasOverlay(t *testing.T) {
	var kz struct {
		Resources []string `yaml:"resources"`
		Replicas  []struct {
			Name  string `yaml:"name"`
			Count int    `yaml:"count"`
		} `yaml:"replicas"`
		Patches []struct {
			Patch string `yaml:"patch"`
		} `yaml:"patches"`
	}
	raw := readFile(t, filepath.Join(k8sDir, "replicas", "kustomization.yaml"))
	if err := yaml.Unmarshal(raw, &kz); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kz.Resources, []string{"../"}) {
		t.Errorf("replicas overlay resources %v, want the base (../)", kz.Resources)
	}
	if len(kz.Replicas) != 1 || kz.Replicas[0].Name != "llmprobe" || kz.Replicas[0].Count < 2 {
		t.Errorf("replicas overlay: %+v, want llmprobe at 2 or more", kz.Replicas)
	}
	if len(kz.Patches) != 1 || !strings.Contains(kz.Patches[0].Patch, "LLMPROBE_REPLICA") || !strings.Contains(kz.Patches[0].Patch, "metadata.name") {
		t.Error("replicas overlay does not set LLMPROBE_REPLICA from the pod name")
	}
	for _, want := range []string{"divide the rates", "sum by (target, scenario)", "LLMPROBE_REPLICA", "--load.replica"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("replicas overlay does not document %q", want)
		}
	}
}

type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command []string `yaml:"command"`
		Volumes []string `yaml:"volumes"`
		Ports   []string `yaml:"ports"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestCompose checks what can be checked without a Docker engine: the file
// parses, every bind-mounted file exists, and Prometheus and Grafana inside
// find the rules and the dashboard where their configurations look.
func TestCompose(t *testing.T) {
	var cf composeFile
	if err := yaml.Unmarshal(readFile(t, filepath.Join(composeDir, "docker-compose.yml")), &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, s := range []string{"llmprobe", "prometheus", "grafana"} {
		if _, ok := cf.Services[s]; !ok {
			t.Fatalf("no service %s", s)
		}
	}
	// container path -> host path, per service
	binds := map[string]map[string]string{}
	for name, s := range cf.Services {
		binds[name] = map[string]string{}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q: want source:target", name, v)
				continue
			}
			if !strings.HasPrefix(parts[0], ".") {
				if _, ok := cf.Volumes[parts[0]]; !ok {
					t.Errorf("%s: named volume %s is not declared", name, parts[0])
				}
				continue
			}
			host := filepath.Join(composeDir, parts[0])
			if _, err := os.Stat(host); err != nil {
				t.Errorf("%s: bind mount source: %v", name, err)
			}
			binds[name][parts[1]] = host
		}
	}
	lp := cf.Services["llmprobe"]
	if lp.Build == nil {
		t.Fatal("llmprobe is not built from the repository")
	}
	if _, err := os.Stat(filepath.Join(composeDir, lp.Build.Context, lp.Build.Dockerfile)); err != nil {
		t.Errorf("llmprobe build: %v", err)
	}
	if len(lp.Command) != 0 {
		t.Errorf("llmprobe should run the built-in default (no arguments), got %v", lp.Command)
	}

	prom := cf.Services["prometheus"]
	if !slices.Contains(prom.Command, "--enable-feature=native-histograms") {
		t.Error("prometheus does not enable native histograms")
	}
	var promCfgPath string
	for _, a := range prom.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			promCfgPath = binds["prometheus"][v]
		}
	}
	if promCfgPath == "" {
		t.Fatal("prometheus' --config.file is not bind-mounted")
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName                       string `yaml:"job_name"`
			AlwaysScrapeClassicHistograms bool   `yaml:"always_scrape_classic_histograms"`
			StaticConfigs                 []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, promCfgPath), &pc); err != nil {
		t.Fatalf("%s: %v", promCfgPath, err)
	}
	var mounted []string
	for _, rf := range pc.RuleFiles {
		host, ok := binds["prometheus"][rf]
		if !ok {
			t.Errorf("rule file %s is not bind-mounted into prometheus", rf)
			continue
		}
		mounted = append(mounted, filepath.Base(host))
	}
	sort.Strings(mounted)
	if !slices.Equal(mounted, []string{"alerts.yml", "rules.yml"}) {
		t.Errorf("prometheus loads %v, want alerts.yml and rules.yml", mounted)
	}
	scraped := false
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, "llmprobe:10212") {
				scraped = true
				if !sc.AlwaysScrapeClassicHistograms {
					t.Error("with native histograms on, the llmprobe job needs always_scrape_classic_histograms: the rules read _bucket series")
				}
			}
		}
	}
	if !scraped {
		t.Error("prometheus does not scrape llmprobe:10212")
	}

	// Grafana: the provider's path holds the dashboard.
	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	found := false
	for dst, host := range binds["grafana"] {
		if strings.Contains(dst, "/provisioning/dashboards/") {
			if err := yaml.Unmarshal(readFile(t, host), &provider); err != nil {
				t.Fatalf("%s: %v", host, err)
			}
			for _, p := range provider.Providers {
				if dir, ok := binds["grafana"][p.Options.Path]; ok {
					if _, err := os.Stat(filepath.Join(dir, "llmprobe.json")); err == nil {
						found = true
					}
				}
			}
		}
	}
	if !found {
		t.Error("grafana's dashboard provider does not point at a mount holding llmprobe.json")
	}
}

// The ldflags may only name fields prometheus/common/version has: -X on a
// missing variable is silently ignored. The map fails to compile if one goes.
var versionFields = map[string]*string{
	"Version": &version.Version, "Revision": &version.Revision, "Branch": &version.Branch,
	"BuildUser": &version.BuildUser, "BuildDate": &version.BuildDate,
}

func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "../Dockerfile"))
	for _, want := range []string{
		"FROM --platform=$BUILDPLATFORM golang:1.26 AS build", "CGO_ENABLED=0", "-trimpath",
		"USER 65534", "EXPOSE 10212", `ENTRYPOINT ["/bin/llmprobe"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Contains(df, "CMD ") {
		t.Error("Dockerfile sets CMD: the default container should run the embedded default configuration")
	}
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`-X github\.com/prometheus/common/version\.(\w+)=`).FindAllStringSubmatch(df, -1) {
		if _, ok := versionFields[m[1]]; !ok {
			t.Errorf("Dockerfile sets version.%s, which prometheus/common/version does not have", m[1])
		}
		set[m[1]] = true
	}
	for f := range versionFields {
		if !set[f] {
			t.Errorf("Dockerfile does not set version.%s", f)
		}
	}
	di := string(readFile(t, "../.dockerignore"))
	for _, line := range strings.Split(di, "\n") {
		if strings.TrimSpace(line) == "/config" || strings.TrimSpace(line) == "config" {
			t.Error(".dockerignore drops config/, whose default.yml is embedded in the binary")
		}
	}
}
