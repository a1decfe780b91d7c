// Package worker decides where load runs: in the daemon's own process
// (--workers=0) or in supervised worker processes, and carries every record,
// schedule counter and saturation sample from there into the collector.
package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/internal/record"
)

// inProcess runs one config generation's load inside this process.
type inProcess struct {
	cancel context.CancelFunc
	done   chan struct{}
	runner *load.Runner
	table  *probeTable
}

func (g *inProcess) stop()                     { g.cancel() }
func (g *inProcess) finished() <-chan struct{} { return g.done }

func (g *inProcess) update(cfg *config.Config, ids []uint32, resolve resolveFunc) error {
	return g.runner.Update(cfg, ids, func() {
		probes, _ := resolve()
		g.table.set(ids, probes)
	})
}

// startInProcess plans cfg and, once that succeeded, resolves its series and
// starts its load; records flow to the probes (named by ids, in
// cfg.Probes() order) and samples to the one worker.
func startInProcess(cfg *config.Config, ids []uint32, resolve resolveFunc, opts Options, logger *slog.Logger) (*inProcess, error) {
	q := metrics.NewQueue()
	runner, err := load.New(cfg, load.Options{Worker: 0, Workers: 1, Drain: opts.Drain, Replica: opts.Replica, IDs: ids}, q, logger)
	if err != nil {
		return nil, err
	}
	probes, workers := resolve()
	table := newProbeTable()
	table.set(ids, probes)
	worker := workers[0]
	ctx, cancel := context.WithCancel(context.Background())
	g := &inProcess{cancel: cancel, done: make(chan struct{}), runner: runner, table: table}
	finished := make(chan struct{})
	go func() {
		runner.Run(ctx)
		runner.Close()
		close(finished)
	}()
	go func() {
		defer close(g.done)
		a := &aggregator{retired: ctx.Done(), q: q, probes: table, worker: worker, runner: runner, sampler: newSampler(runner),
			books: metrics.NewBooks(table.get), inc: worker.Start(), opts: opts, logger: logger}
		a.run(finished)
	}()
	return g, nil
}

// aggregator is the in-process counterpart of a worker's frame writer and
// the supervisor's frame reader at once.
type aggregator struct {
	retired   <-chan struct{}
	q         *metrics.Queue
	probes    *probeTable
	worker    *metrics.Worker
	runner    *load.Runner
	sampler   *sampler
	books     *metrics.Books
	inc       *metrics.Incarnation
	opts      Options
	logger    *slog.Logger
	prev, cur record.Sample
	verdict   verdict
}

func (a *aggregator) run(finished <-chan struct{}) {
	tick := time.NewTicker(a.opts.SampleInterval)
	defer tick.Stop()
	a.sampler.sample(&a.prev, 0)
	for {
		select {
		case <-a.q.Ready():
			a.observe()
		case <-tick.C:
			a.sample()
		case <-finished:
			a.observe()
			a.sample()
			a.books.Close()
			a.inc.End()
			return
		}
	}
}

func (a *aggregator) observe() {
	for _, it := range a.q.Drain() {
		if it.Record == nil {
			if p := a.probes.get(it.Send.Probe); p != nil {
				p.ObserveSend(it.Send)
			}
			a.worker.ObserveSend(it.Send)
			if a.opts.Tap != nil {
				a.opts.Tap.Send(it.Send)
			}
			continue
		}
		if p := a.probes.get(it.Record.Probe); p != nil {
			p.Observe(it.Record)
		}
		if a.opts.Tap != nil {
			a.opts.Tap.Record(it.Record)
		}
		record.Put(it.Record)
	}
}

func (a *aggregator) sample() {
	a.sampler.sample(&a.cur, 0)
	a.verdict.update(a.opts.Thresholds, &a.prev, &a.cur, a.runner, a.logger)
	if a.opts.Tap != nil {
		_, why := a.opts.Thresholds.Judge(&a.prev, &a.cur, Cores())
		a.opts.Tap.Sample(0, &a.cur, why)
	}
	a.books.Apply(a.cur.Probes)
	a.inc.Apply(&a.cur, Cores(), !closed(a.retired))
	a.prev, a.cur = a.cur, a.prev
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
