// Package status is the live status page: per probe its load, in flight
// against its cap, warm-up, latency quantiles and outcomes over the last
// minute and its latest failures; per worker its saturation verdict and
// why; and the configuration's reload state. Its data comes from the pool's
// Tap, in the supervisor, so it shows the same with worker processes as in
// process.
package status

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

const (
	// Span is how far back the page's figures reach.
	Span = time.Minute
	// maxKept bounds the records kept per probe within Span (1,500 req/s
	// for a minute); beyond, the oldest go first.
	maxKept = 90_000
	// Failures is how many of the latest failed requests a probe shows.
	Failures = 20
)

// Window keeps the last minute of every probe. It implements worker.Tap.
type Window struct {
	now func() time.Time

	mu      sync.Mutex
	byID    map[uint32]*probe
	probes  []*probe // configured now, in configuration order
	workers map[int]*workerState
}

type probe struct {
	target, scenario string
	sc               *config.Scenario
	started          time.Time // when this run of the probe (its ID) began
	ids              map[uint32]bool
	events           []event // within Span, oldest first
	sends            []time.Time
	failures         []Failure // latest last, at most Failures
	inFlight         map[int]map[uint32]int64
}

type event struct {
	at             time.Time
	outcome        prober.Outcome
	ttft, tpot, e2 time.Duration // -1 when undefined
}

// Failure is one failed request as the page shows it.
type Failure struct {
	At      time.Time
	Outcome string
	Status  int
	Detail  string // as the prober redacted and bounded it
}

type workerState struct {
	sample record.Sample
	seen   time.Time
	why    string
	// lastWhy is the latest reason a window was bad, kept while the
	// verdict stands (a saturated worker's current window may be good).
	lastWhy string
}

// NewWindow returns an empty window.
func NewWindow() *Window {
	return &Window{now: time.Now, byID: map[uint32]*probe{}, workers: map[int]*workerState{}}
}

// Probes implements worker.Tap: the page lists the probes of the latest
// configuration applied.
func (w *Window) Probes(ids []uint32, probes []config.Probe) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	next := make([]*probe, 0, len(probes))
	for i, id := range ids {
		p := w.byID[id]
		if p == nil {
			p = w.find(probes[i].Target.Name, probes[i].Scenario.Name)
			if p == nil {
				p = &probe{target: probes[i].Target.Name, scenario: probes[i].Scenario.Name, ids: map[uint32]bool{}, inFlight: map[int]map[uint32]int64{}}
			}
			p.started = now // a new ID: the probe (re)starts, with its warm-up
			p.ids[id] = true
			w.byID[id] = p
		}
		p.sc = probes[i].Scenario
		next = append(next, p)
	}
	w.probes = next
}

func (w *Window) find(target, scenario string) *probe {
	for _, p := range w.probes {
		if p.target == target && p.scenario == scenario {
			return p
		}
	}
	return nil
}

// Send implements worker.Tap.
func (w *Window) Send(s record.Send) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.byID[s.Probe]; p != nil {
		now := w.now()
		p.sends = append(trimTimes(p.sends, now), now)
	}
}

// Record implements worker.Tap.
func (w *Window) Record(r *record.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.byID[r.Probe]
	if p == nil {
		return
	}
	now := w.now()
	e := event{at: now, outcome: r.Outcome, ttft: -1, tpot: -1, e2: -1}
	// Latencies of warm-up requests stay out, as they stay out of the
	// histograms; their outcomes count.
	if r.Outcome == prober.OutcomeSuccess && !r.Warmup {
		e.e2 = r.E2E
		if r.TTFT >= 0 {
			e.ttft = r.TTFT
		}
		if v, ok := r.TPOT(); ok {
			e.tpot = v
		}
	} else {
		// r.Detail is the prober's: one line, redacted, bounded.
		p.failures = append(p.failures, Failure{At: now, Outcome: r.Outcome.String(), Status: r.Status, Detail: r.Detail})
		if n := len(p.failures); n > Failures {
			p.failures = slices.Delete(p.failures, 0, n-Failures)
		}
	}
	p.events = append(trimEvents(p.events, now), e)
}

// Sample implements worker.Tap.
func (w *Window) Sample(worker int, s *record.Sample, why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := w.workers[worker]
	if ws == nil {
		ws = &workerState{}
		w.workers[worker] = ws
	}
	probes := ws.sample.Probes
	ws.sample = *s
	ws.sample.Probes = append(probes[:0], s.Probes...)
	ws.seen, ws.why = w.now(), why
	if why != "" {
		ws.lastWhy = why
	} else if !s.Saturated {
		ws.lastWhy = ""
	}
	for _, pc := range s.Probes {
		if p := w.byID[pc.ID]; p != nil {
			if p.inFlight[worker] == nil {
				p.inFlight[worker] = map[uint32]int64{}
			}
			p.inFlight[worker][pc.ID] = pc.InFlight
		}
	}
}

func trimEvents(ev []event, now time.Time) []event {
	cut := sort.Search(len(ev), func(i int) bool { return now.Sub(ev[i].at) <= Span })
	// Resliced, not copied: the next growth of the slice copies only what
	// is live, so trimming stays amortised O(1) per event.
	return ev[max(cut, len(ev)+1-maxKept):]
}

func trimTimes(ts []time.Time, now time.Time) []time.Time {
	cut := sort.Search(len(ts), func(i int) bool { return now.Sub(ts[i]) <= Span })
	return ts[max(cut, len(ts)+1-maxKept):]
}
