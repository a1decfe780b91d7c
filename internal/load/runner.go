// Package load turns a plan into requests: an arrival process per probe
// decides intended send times, a request goes out at each (never queued
// behind another), and each send and each request's record go to a sink,
// normally a Queue that the worker loop drains.
package load

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
	"github.com/llmprobe/llmprobe/internal/workload"
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

// Runner drives every probe of one worker's share of the plan. Probes come
// and go while it runs (Update): each has its own loops and its own drain, so
// a reload restarts only the probes that changed.
type Runner struct {
	sink          Sink
	logger        *slog.Logger
	lateThreshold time.Duration
	drain         time.Duration
	opts          Options
	// saturated is set by the saturation sampler; requests sent while it is
	// set are marked in their records.
	saturated atomic.Bool

	mu       sync.Mutex
	probes   []*probeRun // live, then retired ones until reported once more
	runCtx   context.Context
	reqCtx   context.Context // outlives runCtx by the drain
	running  bool
	backoffs map[string]*backoff // by target name, shared by its probes
	retired  record.ProbeCounts  // totals of the probes dropped from probes
}

type probeRun struct {
	id       uint32 // what its records and counts carry (Options.IDs)
	probe    config.Probe
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

	stop    context.CancelFunc // ends its loops; its requests then drain
	done    chan struct{}      // closed once its loops and requests have ended
	retired bool
}

// Options says which share of the plan this runner owns.
type Options struct {
	Worker, Workers int
	// Drain bounds how long in-flight requests may run on after Run's
	// context ends (or their probe is removed) before they are canceled.
	Drain time.Duration
	// Replica tells this instance's draws from another's of the same
	// configuration: it is mixed with global.seed into every worker's
	// random draws (prompts, arrival gaps), not into the probe's workload
	// (its corpus and shared prefix stay the probe's). Empty: no mixing.
	Replica string
	// IDs name the configuration's probes (cfg.Probes() order) in records
	// and counts; nil numbers them 0, 1, … A probe keeps its ID while it
	// runs unchanged across reloads.
	IDs []uint32
}

// New plans cfg's probes for worker opts.Worker of opts.Workers.
func New(cfg *config.Config, opts Options, sink Sink, logger *slog.Logger) (*Runner, error) {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	r := &Runner{sink: sink, logger: logger, lateThreshold: time.Duration(cfg.Global.LateDispatchThreshold), drain: opts.Drain,
		opts: opts, backoffs: map[string]*backoff{}}
	probes, err := r.plan(cfg, opts.IDs, nil)
	if err != nil {
		return nil, err
	}
	r.probes = probes
	return r, nil
}

// plan builds cfg's probes whose IDs are not in keep (all when keep is nil).
func (r *Runner) plan(cfg *config.Config, ids []uint32, keep map[uint32]bool) ([]*probeRun, error) {
	opts := r.opts
	var out []*probeRun
	fail := func(err error) ([]*probeRun, error) {
		for _, p := range out {
			p.close()
		}
		return nil, err
	}
	for i, probe := range cfg.Probes() {
		id := uint32(i)
		if ids != nil {
			if i >= len(ids) {
				return fail(fmt.Errorf("%d probe IDs for more probes", len(ids)))
			}
			id = ids[i]
		}
		if keep[id] {
			continue
		}
		p := &probeRun{id: id, probe: probe, failures: newFailureLog(r.logger, cfg, probe)}
		if t := probe.Target; t.HonorRetryAfter {
			if r.backoffs[t.Name] == nil {
				r.backoffs[t.Name] = newBackoff(t.Name, t.RetryAfterCap(), loggerOrDiscard(r.logger))
			}
			p.backoff = r.backoffs[t.Name]
		}
		// The workload (its corpus, its shared prefix) is the probe's, the
		// same in every worker; the random draws are the worker's own.
		probeSeed := cfg.Global.Seed + int64(i)*7919
		p.seed = WorkerSeed(probeSeed^ReplicaSalt(opts.Replica), opts.Worker)
		var err error
		if p.client, err = prober.NewClient(probe.Target, r.logger); err != nil {
			return fail(err) // names the target already
		}
		if p.workload, err = workload.New(probe.Scenario.Workload, probeSeed); err != nil {
			p.close()
			return fail(fmt.Errorf("scenario %q: %w", probe.Scenario.Name, err))
		}
		l := probe.Scenario.Load
		if p.closed = l.Mode == config.LoadClosed; p.closed {
			p.conc = SplitConcurrency(l.Concurrency, opts.Worker, opts.Workers)
			p.cap = int64(p.conc)
		} else {
			if p.arrivals, err = NewArrivals(l, opts.Worker, opts.Workers); err != nil {
				p.close()
				return fail(fmt.Errorf("scenario %q: %w", probe.Scenario.Name, err))
			}
			p.offset = Offset(l, opts.Worker, opts.Workers)
			p.cap = int64(SplitConcurrency(l.MaxInFlight, opts.Worker, opts.Workers))
			if p.cap < 1 {
				p.cap = 1
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func (p *probeRun) close() {
	if p.client != nil {
		p.client.Close()
	}
	p.failures.flush()
}

// Update moves the runner to cfg, whose probes are named by ids: probes whose
// ID runs already go on untouched; the others start now (their warm-up with
// them); running probes whose ID is not in ids stop, their in-flight
// requests finishing within the drain bound. ready, if set, is called once
// the new probes are planned and before they start. On error nothing
// changes and ready is not called. cfg's global settings must be those the
// runner was made with (a reload that changes them restarts everything).
func (r *Runner) Update(cfg *config.Config, ids []uint32, ready func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	live := map[uint32]bool{}
	for _, p := range r.probes {
		if !p.retired && want[p.id] {
			live[p.id] = true
		}
	}
	added, err := r.plan(cfg, ids, live)
	if err != nil {
		return err
	}
	if ready != nil {
		ready() // before the first record of a new probe can exist
	}
	for _, p := range r.probes {
		if !p.retired && !want[p.id] {
			p.retired = true
			if p.stop != nil {
				p.stop()
			}
		}
	}
	for _, p := range added {
		r.probes = append(r.probes, p)
		if r.running {
			r.start(p)
		}
	}
	return nil
}

// Close releases the probes' HTTP connections and logs the failures not
// yet summarised.
func (r *Runner) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.probes {
		p.close()
	}
}

// SetSaturated marks whether requests sent from now on count as sent while
// the worker was saturated.
func (r *Runner) SetSaturated(v bool) { r.saturated.Store(v) }

// Snapshots appends each probe's books, and returns the books of every
// probe this runner ever ran, summed (they never go backwards when probes
// are removed). A removed probe is reported once more after its last request
// has ended (its final counts), then no more.
func (r *Runner) Snapshots(dst []record.ProbeCounts) ([]record.ProbeCounts, record.ProbeCounts) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	total := r.retired
	keep := r.probes[:0]
	for _, p := range r.probes {
		c := p.Stats.Snapshot()
		c.ID = p.id
		c.BackingOff = p.backoff.active(now)
		dst = append(dst, c)
		addCounts(&total, &c)
		if p.retired && closedChan(p.done) {
			p.close()
			addCounts(&r.retired, &c)
			continue
		}
		keep = append(keep, p)
	}
	clear(r.probes[len(keep):])
	r.probes = keep
	return dst, total
}

func addCounts(t, c *record.ProbeCounts) {
	t.Scheduled += c.Scheduled
	t.Sent += c.Sent
	t.Dropped += c.Dropped
	t.BackedOff += c.BackedOff
	t.Late += c.Late
}

func closedChan(c chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// InFlight is the total of requests in flight, and Cap their total cap
// (that of live probes).
func (r *Runner) InFlight() (inFlight, capacity int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.probes {
		inFlight += p.Stats.InFlight.Load()
		if !p.retired {
			capacity += p.cap
		}
	}
	return inFlight, capacity
}

// Run sends load until ctx ends, then lets in-flight requests finish for
// up to the drain bound before canceling them. Every request sent yields
// exactly one record, canceled ones included.
func (r *Runner) Run(ctx context.Context) {
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	r.mu.Lock()
	r.runCtx, r.reqCtx, r.running = ctx, reqCtx, true
	for _, p := range r.probes {
		r.start(p)
	}
	r.mu.Unlock()
	// A worker may have nothing to send (its share of a closed loop is 0);
	// it still runs until told to stop, or its supervisor would restart it.
	<-ctx.Done()
	r.mu.Lock()
	r.running = false
	probes := append([]*probeRun(nil), r.probes...)
	r.mu.Unlock()
	for _, p := range probes {
		<-p.done
	}
}

// start runs p's loops until its own stop or the runner's end, then gives
// its in-flight requests the drain bound. Called with r.mu held.
func (r *Runner) start(p *probeRun) {
	loopCtx, stop := context.WithCancel(r.runCtx)
	reqCtx, cancelRequests := context.WithCancel(r.reqCtx)
	p.stop, p.done = stop, make(chan struct{})
	if p.retired {
		stop()
	}
	var requests, loops sync.WaitGroup
	start := time.Now()
	if p.closed {
		for i := 0; i < p.conc; i++ {
			loops.Add(1)
			go func() {
				defer loops.Done()
				r.closedLoop(loopCtx, reqCtx, p, start, uint64(i))
			}()
		}
	} else {
		loops.Add(1)
		go func() {
			defer loops.Done()
			r.openLoop(loopCtx, reqCtx, p, start, &requests)
		}()
	}
	go func() {
		defer close(p.done)
		defer cancelRequests()
		<-loopCtx.Done()
		// A closed loop's request is in its loop: the drain bounds both.
		done := make(chan struct{})
		go func() { loops.Wait(); requests.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(r.drain):
			cancelRequests()
			<-done
		}
	}()
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
	warmupEnd := start.Add(time.Duration(p.probe.Scenario.Load.Warmup))
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
	warmupEnd := start.Add(time.Duration(p.probe.Scenario.Load.Warmup))
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
	rec.Probe = p.id
	rec.Intended = intended.UnixNano()
	rec.Warmup = warmup
	rec.Saturated = r.saturated.Load()
	sc := p.probe.Scenario
	ctx, cancel := context.WithTimeout(ctx, time.Duration(sc.Timeout))
	// The schedule delay is told before the request goes out, so that a
	// server that holds requests for minutes cannot hide the client's view of
	// its own schedule.
	delay := time.Since(intended)
	if r.lateThreshold > 0 && delay > r.lateThreshold {
		p.Stats.Late.Add(1)
	}
	r.sink.Sent(record.Send{Probe: p.id, ScheduleDelay: delay, Warmup: warmup})
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
