package worker

import (
	"context"
	"log/slog"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
)

// inProcess runs one config generation's load inside this process: the
// worker loop, with the supervisor side's intake as its output.
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
	q := load.NewQueue()
	runner, err := load.New(cfg, load.Options{Worker: 0, Workers: 1, Drain: opts.Drain, Replica: opts.Replica, IDs: ids}, q, logger)
	if err != nil {
		return nil, err
	}
	probes, workers := resolve()
	table := newProbeTable()
	table.set(ids, probes)
	ctx, cancel := context.WithCancel(context.Background())
	g := &inProcess{cancel: cancel, done: make(chan struct{}), runner: runner, table: table}
	in := newIntake(table, workers[0], Cores(), func() bool { return ctx.Err() == nil }, opts.Tap, 0, opts.Thresholds)
	l := newLoop(q, runner, in, opts.SampleInterval, opts.Thresholds, logger)
	go func() {
		defer close(g.done)
		l.run(ctx) // the intake never fails
		in.close()
	}()
	return g, nil
}
