package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/llmprobe/llmprobe/internal/load"
	"github.com/llmprobe/llmprobe/internal/record"
)

// output is where a worker loop sends what its runner produced: a worker
// process frames it onto its pipe (frameOutput), the daemon's own process
// hands it to the supervisor side directly (intake). Its methods run on the
// loop's goroutine only, never on a request's.
type output interface {
	send(s record.Send) error
	// record must not keep r: the loop returns it to the pool afterwards.
	record(r *record.Record) error
	// sample takes one window, its saturation verdict set.
	sample(s *record.Sample) error
	// flush ends a batch of sends and records.
	flush() error
	// backlog is how many bytes are accepted and not yet passed on.
	backlog() int64
}

// loop is one worker's whole measuring side, in a worker process or in the
// daemon: its runner's sends and records as they happen, and every interval
// a sample with the saturation verdict, all to one output.
type loop struct {
	q          *load.Queue
	runner     *load.Runner
	sampler    *sampler
	out        output
	interval   time.Duration
	thresholds Thresholds
	logger     *slog.Logger
	prev, cur  record.Sample
	verdict    verdict
	// lags are the read lags of the records passed on in this window: the
	// loop has every record before it is framed, on one goroutine.
	lags lagWindow
}

// newLoop returns the loop of runner, which must have been built on q.
func newLoop(q *load.Queue, runner *load.Runner, out output, interval time.Duration, t Thresholds, logger *slog.Logger) *loop {
	if interval <= 0 {
		interval = time.Second
	}
	return &loop{q: q, runner: runner, sampler: newSampler(runner), out: out, interval: interval, thresholds: t, logger: logger}
}

// run runs the runner until ctx ends and its in-flight requests have
// drained, passing everything on to the output; after the last record it
// sends a last sample. It returns the output's first error (the runner then
// goes on until ctx ends, unread).
func (l *loop) run(ctx context.Context) error {
	finished := make(chan struct{})
	go func() {
		l.runner.Run(ctx)
		l.runner.Close()
		close(finished)
	}()
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	batch := time.NewTimer(drainDelay)
	batch.Stop()
	armed := false
	l.sampler.sample(&l.prev, 0)
	for {
		// While a batch collects, the queue's signals are not listened
		// to: each would wake the loop for nothing.
		ready := l.q.Ready()
		if armed {
			ready = nil
		}
		select {
		case <-ready:
			batch.Reset(drainDelay)
			armed = true
		case <-batch.C:
			armed = false
			if err := l.drain(); err != nil {
				return err
			}
		case <-tick.C:
			if err := l.sample(); err != nil {
				return err
			}
		case <-finished:
			if err := l.drain(); err != nil {
				return err
			}
			return l.sample()
		}
	}
}

// drainDelay is how long the loop lets sends and records collect after the
// first before it passes them on: one wake-up, one frame write and one
// read on the supervisor's side per batch rather than per item. Nothing
// downstream needs them sooner (the registry is scraped every few seconds;
// the sample, which carries the verdict, is not delayed).
const drainDelay = 20 * time.Millisecond

func (l *loop) drain() error {
	for _, it := range l.q.Drain() {
		var err error
		if it.Record == nil {
			err = l.out.send(it.Send)
		} else {
			l.lags.add(it.Record.ReadLags)
			err = l.out.record(it.Record)
			record.Put(it.Record)
		}
		if err != nil {
			return err
		}
	}
	return l.out.flush()
}

func (l *loop) sample() error {
	l.sampler.sample(&l.cur, l.out.backlog())
	l.cur.ReadLagEvents, l.cur.ReadLagP99 = l.lags.take()
	l.verdict.update(l.thresholds, &l.prev, &l.cur, l.runner, l.logger)
	if err := l.out.sample(&l.cur); err != nil {
		return err
	}
	l.prev, l.cur = l.cur, l.prev
	return nil
}
