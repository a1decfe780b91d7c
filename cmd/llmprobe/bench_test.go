package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/report"
	"github.com/llmprobe/llmprobe/simulator"
)

// referenceEndpoint serves the simulator on loopback for the test.
func referenceEndpoint(t *testing.T, mutate func(*simulator.Config)) string {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Model = "m"
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, stop, err := simulator.Serve(ctx, "127.0.0.1:0", cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); cancel() })
	return "http://" + addr
}

func benchConfig(t *testing.T, url, load string) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: ref, url: %q, model: m}]
scenarios:
  - name: s
    load: %s
    workload: {input_tokens: {value: 16}, output_tokens: {value: 8}}
    slos: [{name: fast, ttft: 40ms}, {name: any, e2e: 10s}]
probes: [{targets: [ref], scenarios: [s]}]
`, url, load)), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// bench's report and the daemon's metrics of the same run agree: the same
// counts by outcome, goodput and observation counts, and every exact
// quantile of the report lies in the classic bucket of the matching
// histogram that holds that rank: bench adds exactness, not another
// measurement. In process and with worker processes.
func TestBenchReportAgreesWithMetrics(t *testing.T) {
	url := referenceEndpoint(t, func(c *simulator.Config) { c.Faults.ServerError = 0.05 })
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			cfg := benchConfig(t, url, "{mode: open, rate: 40, warmup: 1s}")
			rep, reg, err := report.Bench(context.Background(), cfg, report.BenchOptions{Workers: workers, Drain: 5 * time.Second,
				Duration: 3 * time.Second, Command: []string{binary, "worker"}}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Probes) != 1 {
				t.Fatalf("%d probes in the report", len(rep.Probes))
			}
			p := rep.Probes[0]
			mfs := gather(t, reg)
			var all, warm float64
			for outcome, n := range p.Requests {
				all += value(mfs, "llmprobe_requests_total", map[string]string{"outcome": outcome})
				warm += float64(n)
			}
			if all != warm+float64(p.WarmupRequests) {
				t.Errorf("requests_total %v, the report %v after warm-up + %d in it", all, warm, p.WarmupRequests)
			}
			if p.Requests["success"] < 60 || p.Requests["http_5xx"] == 0 {
				t.Fatalf("the run did not exercise successes and failures: %v", p.Requests)
			}
			if sent := value(mfs, "llmprobe_requests_scheduled_total", nil); float64(p.Scheduled) != sent {
				t.Errorf("scheduled: report %d, metrics %v", p.Scheduled, sent)
			}
			for _, g := range p.Goodput {
				l := map[string]string{"objective": g.Objective}
				if tot, good := value(mfs, "llmprobe_slo_requests_total", l), value(mfs, "llmprobe_slo_good_requests_total", l); float64(g.Requests) != tot || float64(g.Good) != good {
					t.Errorf("goodput %s: report %d of %d, metrics %v of %v", g.Objective, g.Good, g.Requests, good, tot)
				}
			}
			// Plain HTTP on Linux: kernel stamps, so the read lag is measured.
			if p.ClientReadLag == nil {
				t.Fatalf("no client read lag in the report of a plain-HTTP target on Linux")
			}
			for _, c := range []struct {
				metric string
				q      report.Quantiles
			}{
				{"llmprobe_time_to_first_token_seconds", p.TTFT}, {"llmprobe_inter_token_latency_seconds", p.ITL},
				{"llmprobe_time_per_output_token_seconds", p.TPOT}, {"llmprobe_normalized_time_per_output_token_seconds", p.NTPOT},
				{"llmprobe_request_duration_seconds", p.E2E}, {"llmprobe_schedule_delay_seconds", p.ScheduleDelay},
				{"llmprobe_client_read_lag_seconds", *p.ClientReadLag},
			} {
				h := singleHistogram(t, mfs, c.metric)
				if int(h.GetSampleCount()) != c.q.Count || c.q.Count == 0 {
					t.Errorf("%s: %d observations, the report %d", c.metric, h.GetSampleCount(), c.q.Count)
					continue
				}
				if mean := h.GetSampleSum() / float64(h.GetSampleCount()); math.Abs(mean-c.q.Mean) > 1e-9*math.Max(1, math.Abs(mean)) {
					t.Errorf("%s: mean %v, the report %v", c.metric, mean, c.q.Mean)
				}
				for _, qv := range []struct {
					q float64
					v float64
				}{{0.5, c.q.P50}, {0.9, c.q.P90}, {0.99, c.q.P99}} {
					lo, hi := bucketOfRank(h, qv.q)
					if !(qv.v > lo && qv.v <= hi) {
						t.Errorf("%s: p%v %v outside the histogram's bucket (%v, %v] for that rank", c.metric, qv.q*100, qv.v, lo, hi)
					}
				}
			}
			if p.GroundTruthTTFTBias == nil || p.GroundTruthTTFTBias.Count != p.TTFT.Count {
				t.Errorf("ground-truth TTFT bias missing for the reference endpoint: %+v", p.GroundTruthTTFTBias)
			}
			if rep.Verdict == "" || len(rep.Saturation.Workers) != max(1, workers) {
				t.Errorf("verdict %q, %d workers judged", rep.Verdict, len(rep.Saturation.Workers))
			}
			if math.Abs(p.AchievedRate-40)/40 > 0.35 {
				t.Errorf("achieved %v req/s of 40 requested", p.AchievedRate)
			}
		})
	}
}

// bucketOfRank is the classic bucket (lo, hi] holding the observation of
// nearest rank ⌈q·n⌉.
func bucketOfRank(h *dto.Histogram, q float64) (float64, float64) {
	rank := uint64(math.Ceil(q * float64(h.GetSampleCount())))
	lo := math.Inf(-1)
	for _, b := range h.Bucket {
		if b.GetCumulativeCount() >= rank {
			return lo, b.GetUpperBound()
		}
		lo = b.GetUpperBound()
	}
	return lo, math.Inf(1)
}

func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value sums the series of name whose labels include want.
func value(mfs []*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.Metric {
			for k, v := range want {
				found := false
				for _, l := range m.Label {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func singleHistogram(t *testing.T, mfs []*dto.MetricFamily, name string) *dto.Histogram {
	t.Helper()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].Histogram
		}
	}
	t.Fatalf("no single series of %s", name)
	return nil
}

// `llmprobe bench` on the embedded default, as the README runs it: exit 0,
// a versioned JSON report of the reference probe, and no progress line
// when standard error is not a terminal. A probe with no successful
// request makes it exit 1, saying which.
func TestBenchCommand(t *testing.T) {
	cmd := exec.Command(binary, "bench", "--duration=2s", "--warmup=0s", "--workers=0", "--output=-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep report.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("not a JSON report: %v\n%s", err, out)
	}
	if rep.Schema != report.Schema || len(rep.Probes) != 1 || rep.Probes[0].Target != "reference" || rep.Probes[0].Requests["success"] == 0 {
		t.Errorf("report %+v", rep)
	}
	if strings.Contains(stderr.String(), "\r") {
		t.Error("a progress line was written to a non-terminal")
	}

	url := referenceEndpoint(t, nil)
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "bad.yml", fmt.Sprintf(`
targets: [{name: wrong-model, url: %q, model: absent}]
scenarios:
  - {name: s, load: {mode: open, rate: 5}, workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}}
probes: [{targets: [wrong-model], scenarios: [s]}]
`, url))
	csvFile := filepath.Join(dir, "r.csv")
	cmd = exec.Command(binary, "bench", "--config.file="+cfgFile, "--duration=1s", "--workers=0", "--output="+csvFile)
	combined, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("bench with no successful request: %v, want exit 1\n%s", err, combined)
	}
	if !strings.Contains(string(combined), "no successful request after the warm-up: wrong-model/s") || !strings.Contains(string(combined), "http_4xx") {
		t.Errorf("the output does not say which probe measured nothing:\n%s", combined)
	}
	if b, err := os.ReadFile(csvFile); err != nil || !strings.HasPrefix(string(b), "target,scenario,") || strings.Count(string(b), "\n") != 2 {
		t.Errorf("CSV report: %v\n%s", err, b)
	}
}

func TestVerdictError(t *testing.T) {
	ok := &report.Report{Probes: []report.Probe{{Target: "a", Scenario: "s", Requests: map[string]uint64{"success": 3}}}}
	if err := verdictError(ok, true); err != nil {
		t.Errorf("a clean run failed: %v", err)
	}
	sat := &report.Report{Probes: ok.Probes, Verdict: "client saturated at 9 req/s (…): figures above include client delay"}
	sat.Saturation.Saturated = true
	if err := verdictError(sat, false); err != nil {
		t.Errorf("saturation failed the run without --fail-on-saturation: %v", err)
	}
	if err := verdictError(sat, true); err == nil || !strings.Contains(err.Error(), "client saturated") {
		t.Errorf("--fail-on-saturation: %v", err)
	}
}
