// Package worker decides where load runs: in the daemon's own process
// (--workers=0) or in supervised worker processes, and carries every record
// and schedule counter from there into the collector.
package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/llmprobe/llmprobe/collector"
	"github.com/llmprobe/llmprobe/config"
	"github.com/llmprobe/llmprobe/load"
	"github.com/llmprobe/llmprobe/record"
)

// booksInterval is how often schedule counters are carried to the metrics.
const booksInterval = 250 * time.Millisecond

// inProcess runs one config generation's load inside this process.
type inProcess struct {
	cancel context.CancelFunc
	done   chan struct{}
	queue  *collector.Queue
}

// startInProcess plans cfg and starts its load; records and counters flow to
// probes (indexed like cfg.Pairs()).
func startInProcess(cfg *config.Config, probes []*collector.Probe, drain time.Duration, logger *slog.Logger) (*inProcess, error) {
	q := collector.NewQueue()
	runner, err := load.New(cfg, load.Options{Worker: 0, Workers: 1, Drain: drain}, q, logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &inProcess{cancel: cancel, done: make(chan struct{}), queue: q}
	finished := make(chan struct{})
	go func() {
		runner.Run(ctx)
		runner.Close()
		close(finished)
	}()
	go func() {
		defer close(g.done)
		aggregate(q, probes, runner, finished)
	}()
	return g, nil
}

// stop ends scheduling; in-flight requests finish (or are canceled after the
// drain bound) and are all recorded before done closes.
func (g *inProcess) stop() { g.cancel() }

// aggregate observes records and carries counters until the runner has
// finished and everything it produced is counted.
func aggregate(q *collector.Queue, probes []*collector.Probe, runner *load.Runner, finished <-chan struct{}) {
	books := collector.NewBooks(probes)
	tick := time.NewTicker(booksInterval)
	defer tick.Stop()
	var snaps []record.ProbeCounts
	observe := func() {
		for _, r := range q.Drain() {
			if int(r.Probe) < len(probes) {
				probes[r.Probe].Observe(r)
			}
			record.Put(r)
		}
	}
	for {
		select {
		case <-q.Ready():
			observe()
		case <-tick.C:
			books.Apply(runner.Snapshots(snaps[:0]))
		case <-finished:
			observe()
			books.Apply(runner.Snapshots(snaps[:0]))
			return
		}
	}
}
