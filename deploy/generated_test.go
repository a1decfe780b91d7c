package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

var update = flag.Bool("update", false, "rewrite the generated files (dashboard, PrometheusRule)")

// TestGeneratedFiles: the dashboard and the PrometheusRule are what their
// generators make; -update rewrites them.
func TestGeneratedFiles(t *testing.T) {
	dash, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	rule, err := PrometheusRule(promDir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]byte{
		filepath.Join(dashboardsDir, "llmprobe.json"): dash,
		filepath.Join(k8sDir, "prometheusrule.yaml"):  rule,
	} {
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
			t.Errorf("%s differs from its generator: go test ./deploy/ -run TestGeneratedFiles -update", path)
		}
	}
}

// TestPrometheusRuleHoldsRuleFiles: the PrometheusRule's groups are those of
// the rule files, rule for rule.
func TestPrometheusRuleHoldsRuleFiles(t *testing.T) {
	var pr struct {
		Kind string   `yaml:"kind"`
		Spec ruleFile `yaml:"spec"`
	}
	raw := readK8s(t)["PrometheusRule"]
	if raw == nil {
		t.Fatal("no PrometheusRule in kubernetes/")
	}
	if err := yamlUnmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range []string{"rules.yml", "alerts.yml"} {
		for _, g := range readRuleFile(t, filepath.Join(promDir, f)).Groups {
			for _, r := range g.Rules {
				want = append(want, g.Name+"/"+r.Record+r.Alert+": "+r.Expr)
			}
		}
	}
	var got []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			got = append(got, g.Name+"/"+r.Record+r.Alert+": "+r.Expr)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) == 0 {
		t.Errorf("PrometheusRule rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// dashboardQueries returns every query of every dashboard with Grafana's
// variables replaced by what they expand to when "All" is picked.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	grafanaVars := strings.NewReplacer(
		"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
		"$job", ".*", "$target", ".*", "$scenario", ".*", "$instance", ".*", "$engine_job", ".*",
	)
	out := map[string]string{}
	for f, d := range readDashboards(t) {
		for _, p := range flatten(d.Panels) {
			for _, q := range p.Targets {
				out[fmt.Sprintf("%s: panel %q query %s", filepath.Base(f), p.Title, q.RefID)] = grafanaVars.Replace(q.Expr)
			}
		}
	}
	return out
}

// TestDashboardCoversMetrics: every metric family llmprobe exports is on a
// panel, or listed in dashboardDeliberatelyAbsent with a reason.
func TestDashboardCoversMetrics(t *testing.T) {
	used := map[string]bool{}
	for _, expr := range dashboardQueries(t) {
		for _, n := range promqlMetricNames(expr) {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				n = strings.TrimSuffix(n, s)
			}
			used[n] = true
		}
	}
	reg := populatedRegistry(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		n := mf.GetName()
		if why, ok := dashboardDeliberatelyAbsent[n]; ok {
			if used[n] {
				t.Errorf("%s is on a panel and listed as deliberately absent (%s)", n, why)
			}
			continue
		}
		if !used[n] {
			t.Errorf("%s is on no dashboard panel: add one, or list it in dashboardDeliberatelyAbsent with why", n)
		}
	}
	if len(mfs) < 40 {
		t.Errorf("only %d families gathered: the registry is not the daemon's", len(mfs))
	}
}

// populatedRegistry holds every collector the daemon registers, with one
// probe that saw streamed successes with ground-truth stamps, an error and a
// retry, and SLO objectives on every quantity.
func populatedRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector("llmprobe"))
	m := metrics.New(reg)
	d := func(v time.Duration) model.Duration { return model.Duration(v) }
	sc := &config.Scenario{
		Name: "chat",
		Load: config.Load{Mode: config.LoadOpen, Rate: 2, MaxInFlight: 16},
		SLOs: []config.SLO{
			{Name: "interactive", TTFT: d(200 * time.Millisecond), TPOT: d(20 * time.Millisecond)},
			{Name: "batch", NTPOT: d(50 * time.Millisecond), E2E: d(5 * time.Second)},
		},
	}
	p := m.ForProbe("sim", sc)
	w := metrics.NewSaturation(reg).Worker("0", 2)
	for i := 0; i < 20; i++ {
		r := &record.Record{ScheduleDelay: time.Duration(100+i*10) * time.Microsecond}
		r.Result = prober.Result{
			Outcome: prober.OutcomeSuccess, Status: 200, Stream: true,
			TTFB: 2 * time.Millisecond, TTFT: time.Duration(50+i) * time.Millisecond, E2E: time.Duration(700+i*5) * time.Millisecond,
			InputTokens: int32(100 + i), OutputTokens: 64, CountedTokens: 64, UsageReported: true,
			GroundTruth: true, ServerTTFT: 50 * time.Millisecond, Retry: prober.RetryEOF, KernelStamps: true,
		}
		for j := 0; j < 64; j++ {
			r.Gaps = append(r.Gaps, prober.Gap{Gap: time.Duration(10000+j*13) * time.Microsecond, Tokens: 1})
			r.EmitLags = append(r.EmitLags, time.Duration(80+j)*time.Microsecond)
			r.ReadLags = append(r.ReadLags, time.Duration(20+j)*time.Microsecond)
		}
		p.ObserveSend(record.Send{ScheduleDelay: r.ScheduleDelay})
		p.Observe(r)
		w.Observe(r)
	}
	failed := &record.Record{}
	failed.Result = prober.Result{Outcome: prober.OutcomeHTTP5xx, Status: 503, TTFB: -1, TTFT: -1, ServerTTFT: -1, ServerQueue: -1}
	p.ObserveSend(record.Send{})
	p.Observe(failed)
	config.NewSafeConfig(reg)
	return reg
}

// seriesLine is one input series of a promtool test: counters, histogram
// buckets, sums and counts grow by their gathered value every minute;
// gauges hold it.
func seriesLine(name string, labels map[string]string, v float64, counter bool) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ls []string
	for _, k := range keys {
		ls = append(ls, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	values := fmt.Sprintf("%gx30", v)
	if counter {
		values = fmt.Sprintf("0+%gx30", v)
	}
	return fmt.Sprintf("      - series: '%s{%s}'\n        values: '%s'\n", name, strings.Join(ls, ","), values)
}

// classicSeries writes what a classic-only Prometheus stores of a registry
// (histograms as _bucket, _sum and _count), with job and instance labels.
func classicSeries(t *testing.T, g prometheus.Gatherer, job string) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			labels := map[string]string{"job": job, "instance": "a:10212"}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			n := mf.GetName()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				b.WriteString(seriesLine(n, labels, m.GetCounter().GetValue(), true))
			case dto.MetricType_GAUGE:
				b.WriteString(seriesLine(n, labels, m.GetGauge().GetValue(), false))
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, bk := range h.Bucket {
					bl := map[string]string{"le": strconv.FormatFloat(bk.GetUpperBound(), 'g', -1, 64)}
					for k, v := range labels {
						bl[k] = v
					}
					b.WriteString(seriesLine(n+"_bucket", bl, float64(bk.GetCumulativeCount()), true))
				}
				bl := map[string]string{"le": "+Inf"}
				for k, v := range labels {
					bl[k] = v
				}
				b.WriteString(seriesLine(n+"_bucket", bl, float64(h.GetSampleCount()), true))
				b.WriteString(seriesLine(n+"_sum", labels, h.GetSampleSum(), true))
				b.WriteString(seriesLine(n+"_count", labels, float64(h.GetSampleCount()), true))
			}
		}
	}
	return b.String()
}

// engineSeries fakes every engine metric the deploy files may name, as a
// classic exposition of it would look.
func engineSeries() string {
	var b strings.Builder
	for _, m := range externalMetrics {
		if m.project == "Prometheus" {
			continue
		}
		labels := map[string]string{"job": "engine", "instance": "e:8000", "target": "sim"}
		switch m.kind {
		case "histogram":
			for i, le := range []string{"0.05", "0.5", "+Inf"} {
				bl := map[string]string{"le": le}
				for k, v := range labels {
					bl[k] = v
				}
				b.WriteString(seriesLine(m.name+"_bucket", bl, float64(5*(i+1)), true))
			}
			b.WriteString(seriesLine(m.name+"_sum", labels, 1.5, true))
			b.WriteString(seriesLine(m.name+"_count", labels, 15, true))
		case "counter":
			b.WriteString(seriesLine(m.name, labels, 7, true))
		case "gauge":
			b.WriteString(seriesLine(m.name, labels, 3, false))
		}
	}
	return b.String()
}

// TestDashboardQueriesReturnData runs every dashboard query, through
// promtool, on what a classic-only Prometheus (Debian's 2.42 here) stores of
// the daemon's real metrics and of the engines': each must return at least
// one series (an alert on absent(query) must stay quiet). The native and
// both-scraped modes are run against a real Prometheus 3 by the end-to-end
// test in cmd/llmprobe.
func TestDashboardQueriesReturnData(t *testing.T) {
	queries := dashboardQueries(t)
	names := make([]string, 0, len(queries))
	for k := range queries {
		names = append(names, k)
	}
	sort.Strings(names)
	var rules, tests strings.Builder
	rules.WriteString("groups:\n  - name: dashboard-returns-data\n    rules:\n")
	tests.WriteString("rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
	tests.WriteString(classicSeries(t, populatedRegistry(t), "llmprobe"))
	tests.WriteString(engineSeries())
	tests.WriteString("    alert_rule_test:\n")
	for i, n := range names {
		expr, _ := json.Marshal("absent(" + queries[n] + ")")
		fmt.Fprintf(&rules, "      - alert: Empty%d\n        expr: %s\n        annotations: {query: %q}\n", i, expr, n)
		fmt.Fprintf(&tests, "      - eval_time: 20m\n        alertname: Empty%d\n", i)
	}
	dir := t.TempDir()
	for f, s := range map[string]string{"rules.yml": rules.String(), "tests.yml": tests.String()} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctxOut := promtoolOutput(t, dir, "test", "rules", "tests.yml")
	if !strings.Contains(ctxOut, "SUCCESS") {
		// Name the panels whose queries came back empty.
		for i, n := range names {
			if strings.Contains(ctxOut, fmt.Sprintf("alertname: Empty%d,", i)) {
				t.Errorf("%s returns no data on a classic-only Prometheus:\n%s", n, queries[n])
			}
		}
		t.Fatalf("promtool:\n%.3000s", ctxOut)
	}
	if len(names) < 50 {
		t.Errorf("only %d dashboard queries checked", len(names))
	}
}

// promtoolOutput runs promtool in dir and returns its output, failing or not.
func promtoolOutput(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtoolPath(t), args...)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	return string(out)
}

func yamlUnmarshal(b []byte, into any) error { return yaml.Unmarshal(b, into) }
