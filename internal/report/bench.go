package report

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/internal/worker"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	Workers  int           // worker processes; 0 runs the load in this process
	Replica  string        // mixed into every random draw (worker.Options)
	Drain    time.Duration // at the end, the bound on in-flight requests
	Duration time.Duration // measured, after the longest warm-up
	Command  []string      // starts a worker process (default: this binary's worker subcommand)
	Progress io.Writer     // a terminal for the progress line; nil: quiet
}

// Bench runs cfg's probes with the daemon's pool, metrics and records
// for the longest warm-up plus o.Duration (less if ctx ends first), drains,
// and reports from every record. The registry it returns holds the same
// run's metrics, as the daemon would export them.
func Bench(ctx context.Context, cfg *config.Config, o BenchOptions, logger *slog.Logger) (*Report, *prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	col := NewCollector()
	pool, err := worker.NewPool(metrics.New(reg), metrics.NewSaturation(reg), worker.Options{
		Workers: o.Workers, Drain: o.Drain, Thresholds: worker.DefaultThresholds, Replica: o.Replica, Command: o.Command, Tap: col,
	}, logger)
	if err != nil {
		return nil, nil, err
	}
	var warmup time.Duration
	for _, p := range cfg.Probes() {
		warmup = max(warmup, time.Duration(p.Scenario.Load.Warmup))
	}
	started := time.Now()
	if err := pool.Apply(cfg); err != nil {
		return nil, nil, err
	}
	total := warmup + o.Duration
	end := time.NewTimer(total)
	defer end.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			logger.Info("interrupted: reporting what was measured")
			break wait
		case <-end.C:
			break wait
		case <-tick.C:
			if o.Progress != nil {
				printProgress(o.Progress, col, time.Since(started), total, warmup)
			}
		}
	}
	elapsed := time.Since(started)
	if o.Progress != nil {
		fmt.Fprint(o.Progress, "\r\033[K")
	}
	pool.Shutdown()
	return col.Build(Run{Started: started, Warmup: warmup, Duration: max(0, elapsed-warmup), Workers: o.Workers}), reg, nil
}

// printProgress rewrites one terminal line: elapsed / total, the send rate
// over the last second, errors and the client's verdict.
func printProgress(w io.Writer, col *Collector, elapsed, total, warmup time.Duration) {
	p := col.Progress()
	phase := ""
	if elapsed < warmup {
		phase = " (warm-up)"
	}
	sat := "no"
	if p.Saturated {
		sat = "YES"
	}
	fmt.Fprintf(w, "\r\033[K%s / %s%s  %.1f req/s  errors %d  client saturated: %s",
		elapsed.Round(time.Second), total.Round(time.Second), phase, p.RecentRate, p.Errors, sat)
}
