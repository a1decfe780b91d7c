// Package load turns a plan into requests: an arrival process per probe
// decides intended send times, a request goes out at each (never queued
// behind another), and one record per request goes to a sink.
package load

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmprobe/llmprobe/config"
	"github.com/llmprobe/llmprobe/prober"
	"github.com/llmprobe/llmprobe/record"
	"github.com/llmprobe/llmprobe/workload"
)

// Sink receives what happens to requests: Sent as each one goes out (so its
// schedule delay counts however long the server then takes), Put with its
// record once it has ended. Put takes ownership of r (the sink gives it back
// with record.Put). Neither may block: they run on the request's goroutine,
// and blocking there would hold an in-flight slot or delay the send.
type Sink interface {
	Sent(s record.Send)
	Put(r *record.Record)
}

// Runner drives every probe of one worker's share of the plan.
type Runner struct {
	probes        []*probeRun
	sink          Sink
	logger        *slog.Logger
	lateThreshold time.Duration
	drain         time.Duration
	// saturated is set by the saturation sampler; requests sent while it is
	// set are marked in their records.
	saturated atomic.Bool
}

type probeRun struct {
	index    uint32
	pair     config.Pair
	client   *prober.Client
	workload *workload.Generator
	arrivals Arrivals
	offset   time.Duration
	closed   bool
	conc     int // closed loop: this worker's share (may be 0 when workers outnumber it)
	cap      int64
	seed     uint64
	failures *failureLog
	backoff  *backoff // nil unless the target has honor_retry_after
	Stats    Stats
}

// Options says which share of the plan this runner owns.
type Options struct {
	Worker, Workers int
	// Drain bounds how long in-flight requests may run on after Run's
	// context ends before they are canceled.
	Drain time.Duration
	// Replica tells this instance's draws from another's of the same
	// configuration: it is mixed with global.seed into every worker's
	// random draws (prompts, arrival gaps), not into the probe's workload
	// (its corpus and shared prefix stay the probe's). Empty: no mixing.
	Replica string
}

// New plans cfg's probes for worker opts.Worker of opts.Workers.
func New(cfg *config.Config, opts Options, sink Sink, logger *slog.Logger) (*Runner, error) {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	r := &Runner{sink: sink, logger: logger, lateThreshold: time.Duration(cfg.Global.LateDispatchThreshold), drain: opts.Drain}
	backoffs := map[*config.Target]*backoff{}
	for i, pair := range cfg.Pairs() {
		p := &probeRun{index: uint32(i), pair: pair, failures: newFailureLog(logger, cfg, pair)}
		if t := pair.Target; t.HonorRetryAfter {
			if backoffs[t] == nil {
				backoffs[t] = newBackoff(t.Name, t.RetryAfterCap(), loggerOrDiscard(logger))
			}
			p.backoff = backoffs[t]
		}
		// The workload (its corpus, its shared prefix) is the probe's, the
		// same in every worker; the random draws are the worker's own.
		probeSeed := cfg.Global.Seed + int64(i)*7919
		p.seed = WorkerSeed(probeSeed^ReplicaSalt(opts.Replica), opts.Worker)
		var err error
		if p.client, err = prober.NewClient(pair.Target, logger); err != nil {
			r.Close()
			return nil, err // names the target already
		}
		if p.workload, err = workload.New(pair.Scenario.Workload, probeSeed); err != nil {
			r.Close()
			return nil, fmt.Errorf("scenario %q: %w", pair.Scenario.Name, err)
		}
		l := pair.Scenario.Load
		if p.closed = l.Mode == config.LoadClosed; p.closed {
			p.conc = SplitConcurrency(l.Concurrency, opts.Worker, opts.Workers)
			p.cap = int64(p.conc)
		} else {
			if p.arrivals, err = NewArrivals(l, opts.Worker, opts.Workers); err != nil {
				r.Close()
				return nil, fmt.Errorf("scenario %q: %w", pair.Scenario.Name, err)
			}
			p.offset = Offset(l, opts.Worker, opts.Workers)
			p.cap = int64(SplitConcurrency(l.MaxInFlight, opts.Worker, opts.Workers))
			if p.cap < 1 {
				p.cap = 1
			}
		}
		r.probes = append(r.probes, p)
	}
	return r, nil
}

// Close releases the probes' HTTP connections and logs the failures not
// yet summarised.
func (r *Runner) Close() {
	for _, p := range r.probes {
		if p.client != nil {
			p.client.Close()
		}
		p.failures.flush()
	}
}

// SetSaturated marks whether requests sent from now on count as sent while
// the worker was saturated.
func (r *Runner) SetSaturated(v bool) { r.saturated.Store(v) }

// Snapshots appends each probe's books, in plan order.
func (r *Runner) Snapshots(dst []record.ProbeCounts) []record.ProbeCounts {
	now := time.Now()
	for _, p := range r.probes {
		c := p.Stats.Snapshot()
		c.BackingOff = p.backoff.active(now)
		dst = append(dst, c)
	}
	return dst
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// InFlight is the total of requests in flight, and Cap their total cap.
func (r *Runner) InFlight() (inFlight, capacity int64) {
	for _, p := range r.probes {
		inFlight += p.Stats.InFlight.Load()
		capacity += p.cap
	}
	return inFlight, capacity
}

// Run sends load until ctx ends, then lets in-flight requests finish for
// up to the drain bound before canceling them. Every request sent yields
// exactly one record, canceled ones included.
func (r *Runner) Run(ctx context.Context) {
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	var requests, loops sync.WaitGroup
	start := time.Now()
	for _, p := range r.probes {
		if p.closed {
			for i := 0; i < p.conc; i++ {
				loops.Add(1)
				go func() {
					defer loops.Done()
					r.closedLoop(ctx, reqCtx, p, start, uint64(i))
				}()
			}
			continue
		}
		loops.Add(1)
		go func() {
			defer loops.Done()
			r.openLoop(ctx, reqCtx, p, start, &requests)
		}()
	}
	// A worker may have nothing to send (its share of a closed loop is 0);
	// it still runs until told to stop, or its supervisor would restart it.
	<-ctx.Done()
	loops.Wait()
	done := make(chan struct{})
	go func() { requests.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.drain):
		cancelRequests()
		<-done
	}
}

// openLoop sends at the arrival process' intended times. It never waits for
// a response: when the in-flight cap is full the arrival is dropped and
// counted, and when the loop runs late it sends at once, keeping the intended
// times (and so the measured schedule delay) honest.
func (r *Runner) openLoop(ctx, reqCtx context.Context, p *probeRun, start time.Time, requests *sync.WaitGroup) {
	rng := rand.New(rand.NewPCG(p.seed, 0x9e3779b97f4a7c15))
	next := start.Add(p.offset)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	warmupEnd := start.Add(time.Duration(p.pair.Scenario.Load.Warmup))
	for {
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		intended := next
		next = next.Add(p.arrivals.Next(rng))
		if p.backoff.active(intended) {
			p.Stats.BackedOff.Add(1)
			continue
		}
		if p.Stats.InFlight.Load() >= p.cap {
			p.Stats.Dropped.Add(1)
			continue
		}
		p.Stats.InFlight.Add(1)
		p.Stats.Sent.Add(1)
		prompt := p.workload.Next(rng)
		requests.Add(1)
		go func() {
			defer requests.Done()
			r.send(reqCtx, p, intended, intended.Before(warmupEnd), prompt)
		}()
	}
}

// closedLoop keeps one request in flight: the next one is intended the
// moment the previous one ends.
func (r *Runner) closedLoop(ctx, reqCtx context.Context, p *probeRun, start time.Time, stream uint64) {
	rng := rand.New(rand.NewPCG(p.seed, stream))
	warmupEnd := start.Add(time.Duration(p.pair.Scenario.Load.Warmup))
	for ctx.Err() == nil {
		if wait := p.backoff.remaining(time.Now()); wait > 0 {
			// A closed loop has no arrivals to skip: it waits out the
			// target's back-off.
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		intended := time.Now()
		p.Stats.InFlight.Add(1)
		p.Stats.Sent.Add(1)
		r.send(reqCtx, p, intended, intended.Before(warmupEnd), p.workload.Next(rng))
	}
}

// send measures one request and hands its record to the sink.
func (r *Runner) send(ctx context.Context, p *probeRun, intended time.Time, warmup bool, prompt workload.Prompt) {
	rec := record.Get()
	rec.Probe = p.index
	rec.Intended = intended.UnixNano()
	rec.Warmup = warmup
	rec.Saturated = r.saturated.Load()
	sc := p.pair.Scenario
	ctx, cancel := context.WithTimeout(ctx, time.Duration(sc.Timeout))
	// The schedule delay is told before the request goes out, so that a
	// server that holds requests for minutes cannot hide the client's view of
	// its own schedule.
	delay := time.Since(intended)
	if r.lateThreshold > 0 && delay > r.lateThreshold {
		p.Stats.Late.Add(1)
	}
	r.sink.Sent(record.Send{Probe: p.index, ScheduleDelay: delay, Warmup: warmup})
	sent := p.client.Do(ctx, prober.Request{Prompt: prompt.Text, MaxTokens: prompt.MaxTokens, Stream: sc.Streamed()}, &rec.Result)
	cancel()
	rec.ScheduleDelay = sent.Sub(intended)
	p.Stats.InFlight.Add(-1)
	if rec.Outcome != prober.OutcomeSuccess {
		p.failures.failed(&rec.Result)
		p.backoff.hold(time.Now(), rec.RetryAfter, rec.Status)
	}
	r.sink.Put(rec)
}
