// Command agreement runs `llmprobe bench`'s runner (report.Bench: the
// daemon's pool, records and registry) against the reference endpoint at a
// few rates and prints, from each single run, the TTFT bias against the
// endpoint's ground truth twice: as bench reports it (exact, from every
// record) and as the daemon's /metrics gives it (the same run's
// llmprobe_ground_truth_ttft_bias_seconds native histogram, interpolated as
// histogram_quantile does). Results: bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/report"
)

type row struct {
	Workers      int     `json:"workers"`
	Rate         float64 `json:"rate"`
	Achieved     float64 `json:"achieved_over_requested"`
	Requests     int     `json:"requests"`
	MetricsCount uint64  `json:"metrics_count"`
	BenchP50     float64 `json:"bench_p50"`
	BenchP99     float64 `json:"bench_p99"`
	DaemonP50    float64 `json:"daemon_p50"`
	DaemonP99    float64 `json:"daemon_p99"`
	ScheduleP99  float64 `json:"schedule_delay_p99"`
	Saturated    bool    `json:"client_saturated"`
	Verdict      string  `json:"verdict"`
}

func main() {
	rates := flag.String("rates", "100,300,700", "Requested rates, req/s.")
	modes := flag.String("modes", "0,2", "Worker processes per run (0: in process).")
	duration := flag.Duration("duration", 20*time.Second, "Measured time per run, after the warm-up.")
	warmup := flag.Duration("warmup", 3*time.Second, "Warm-up per run.")
	out := flag.String("out", "", "Also write the rows as JSON here.")
	flag.Parse()
	if err := run(*rates, *modes, *duration, *warmup, *out); err != nil {
		fmt.Fprintln(os.Stderr, "agreement:", err)
		os.Exit(1)
	}
}

func run(rateList, modeList string, duration, warmup time.Duration, out string) error {
	dir, err := os.MkdirTemp("", "llmprobe-agreement")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "llmprobe")
	if b, err := exec.Command("go", "build", "-o", bin, "./cmd/llmprobe").CombinedOutput(); err != nil {
		return fmt.Errorf("building llmprobe (run from the repository root): %v\n%s", err, b)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	// The endpoint in its own process, as for the accuracy benchmark: it
	// never queues, and TTFT 50 ms, ITL 10 ms, 64 tokens.
	sim := exec.Command(bin, "simulate", "--listen-address="+addr, "--ttft=50ms", "--itl=10ms", "--model=bench", "--max-concurrency=1000000", "--log.level=warn")
	sim.Stderr = os.Stderr
	sim.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sim.Start(); err != nil {
		return err
	}
	defer func() { syscall.Kill(-sim.Process.Pid, syscall.SIGKILL); sim.Wait() }()
	if err := waitListening(addr, 10*time.Second); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var rows []row
	for _, m := range strings.Split(modeList, ",") {
		workers, err := strconv.Atoi(m)
		if err != nil {
			return err
		}
		for _, r := range strings.Split(rateList, ",") {
			rate, err := strconv.ParseFloat(r, 64)
			if err != nil {
				return err
			}
			maxInFlight := int(math.Ceil(rate*0.68*3)) + 100
			cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: sim, url: "http://%s", model: bench}]
scenarios:
  - name: agreement
    timeout: 60s
    load: {mode: open, arrival: poisson, rate: %g, max_in_flight: %d, warmup: %s}
    workload: {input_tokens: {value: 16}, output_tokens: {value: 64}}
probes: [{targets: [sim], scenarios: [agreement]}]
`, addr, rate, maxInFlight, warmup)), "")
			if err != nil {
				return err
			}
			rep, reg, err := report.Bench(context.Background(), cfg, report.BenchOptions{Workers: workers, Drain: 10 * time.Second,
				Duration: duration, Command: []string{bin, "worker", "--log.level=warn"}, Replica: "agreement"}, logger)
			if err != nil {
				return err
			}
			mfs, err := reg.Gather()
			if err != nil {
				return err
			}
			p := rep.Probes[0]
			rw := row{Workers: workers, Rate: rate, Achieved: p.AchievedRate / rate, Saturated: rep.Saturation.Saturated, Verdict: rep.Verdict,
				ScheduleP99: p.ScheduleDelay.P99}
			if p.GroundTruthTTFTBias != nil {
				rw.Requests, rw.BenchP50, rw.BenchP99 = p.GroundTruthTTFTBias.Count, p.GroundTruthTTFTBias.P50, p.GroundTruthTTFTBias.P99
			}
			for _, mf := range mfs {
				if mf.GetName() == "llmprobe_ground_truth_ttft_bias_seconds" && len(mf.Metric) == 1 {
					h := mf.Metric[0].Histogram
					rw.MetricsCount = h.GetSampleCount()
					rw.DaemonP50, rw.DaemonP99 = nativeQuantile(h, 0.5), nativeQuantile(h, 0.99)
				}
			}
			fmt.Fprintf(os.Stderr, "workers=%d rate=%g: bench p50/p99 %s / %s, daemon %s / %s (%d / %d obs), saturated %v\n", workers, rate,
				report.Dur(rw.BenchP50), report.Dur(rw.BenchP99), report.Dur(rw.DaemonP50), report.Dur(rw.DaemonP99), rw.Requests, rw.MetricsCount, rw.Saturated)
			rows = append(rows, rw)
		}
	}
	fmt.Println("| workers | req/s | achieved / requested | TTFT bias p50: bench (exact) / daemon (native histogram) | p99: bench / daemon | observations | client saturated |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %d | %g | %.3f | %s / %s | %s / %s | %d | %v |\n", r.Workers, r.Rate, r.Achieved,
			report.Dur(r.BenchP50), report.Dur(r.DaemonP50), report.Dur(r.BenchP99), report.Dur(r.DaemonP99), r.Requests, map[bool]string{true: "yes", false: "no"}[r.Saturated])
	}
	if out != "" {
		b, _ := json.MarshalIndent(rows, "", "  ")
		return os.WriteFile(out, b, 0o644)
	}
	return nil
}

// nativeQuantile is histogram_quantile over h's native buckets, linear
// within a bucket (as Prometheus 2.x does), zero bucket and negative buckets
// included.
func nativeQuantile(h *dto.Histogram, q float64) float64 {
	type bucket struct{ lo, hi, n float64 }
	base := math.Pow(2, math.Pow(2, -float64(h.GetSchema())))
	expand := func(spans []*dto.BucketSpan, deltas []int64, neg bool) []bucket {
		var out []bucket
		idx, k := int32(0), 0
		var count int64
		for _, s := range spans {
			idx += s.GetOffset()
			for j := uint32(0); j < s.GetLength(); j++ {
				count += deltas[k]
				k++
				hi, lo := math.Pow(base, float64(idx)), math.Pow(base, float64(idx-1))
				if neg {
					lo, hi = -hi, -lo
				}
				out = append(out, bucket{lo, hi, float64(count)})
				idx++
			}
		}
		return out
	}
	neg := expand(h.NegativeSpan, h.NegativeDelta, true)
	var all []bucket
	for i := len(neg) - 1; i >= 0; i-- {
		all = append(all, neg[i])
	}
	zt := h.GetZeroThreshold()
	all = append(all, bucket{-zt, zt, float64(h.GetZeroCount())})
	all = append(all, expand(h.PositiveSpan, h.PositiveDelta, false)...)
	var total float64
	for _, b := range all {
		total += b.n
	}
	rank, seen := q*total, 0.0
	for _, b := range all {
		if b.n > 0 && seen+b.n >= rank {
			return b.lo + (b.hi-b.lo)*(rank-seen)/b.n
		}
		seen += b.n
	}
	return math.NaN()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitListening(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the reference endpoint did not listen on %s within %s", addr, within)
}
