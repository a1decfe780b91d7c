package report

import (
	"strings"
	"sync"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

// Collector keeps every record of a one-shot run, per probe, for exact
// quantiles, and every worker's saturation samples. It is the pool's
// worker.Tap: it sees what the metrics see, from the same records. Its
// arithmetic (what counts, after warm-up, for which SLO) follows
// metrics.Probe.Observe; a test holds the two to each other.
type Collector struct {
	mu      sync.Mutex
	byID    map[uint32]*probeData
	probes  []*probeData // in order of first appearance
	workers map[int]*workerData
}

type probeData struct {
	target, scenario string
	sc               *config.Scenario

	outcomes [prober.NumOutcomes]uint64 // after warm-up
	warmup   uint64                     // records of the warm-up, any outcome

	ttft, itl, tpot, ntpot, e2e, ttfb, delay, bias, readLag []float64
	outputTokens, inputTokens                               int64
	slo                                                     []sloCount
	saturatedObs                                            uint64

	// The books, per worker: its latest cumulative counts for each of the
	// probe's IDs (a reload that restarts a probe gives it a new ID).
	books map[int]map[uint32]record.ProbeCounts
}

type sloCount struct{ total, good uint64 }

type workerData struct {
	windows, badWindows, saturatedWindows int
	reasons                               map[string]int // kind → bad windows
	example                               map[string]string
	firstSaturated                        time.Time
	lastInFlight, lastCap                 int64
	lastSchedP99                          time.Duration
	lastSent                              uint64
	lastTime                              int64
	sendRate                              float64
	saturated                             bool
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{byID: map[uint32]*probeData{}, workers: map[int]*workerData{}}
}

// Probes implements worker.Tap.
func (c *Collector) Probes(ids []uint32, probes []config.Probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if _, ok := c.byID[id]; ok {
			continue
		}
		p := c.find(probes[i].Target.Name, probes[i].Scenario.Name)
		if p == nil {
			p = &probeData{target: probes[i].Target.Name, scenario: probes[i].Scenario.Name, books: map[int]map[uint32]record.ProbeCounts{}}
			c.probes = append(c.probes, p)
		}
		p.sc = probes[i].Scenario
		p.slo = make([]sloCount, len(p.sc.SLOs))
		c.byID[id] = p
	}
}

func (c *Collector) find(target, scenario string) *probeData {
	for _, p := range c.probes {
		if p.target == target && p.scenario == scenario {
			return p
		}
	}
	return nil
}

// Send implements worker.Tap: the schedule delay as the request goes out,
// as llmprobe_schedule_delay_seconds takes it.
func (c *Collector) Send(s record.Send) {
	if s.Warmup {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.byID[s.Probe]; p != nil {
		p.delay = append(p.delay, s.ScheduleDelay.Seconds())
	}
}

// Record implements worker.Tap, counting as metrics.Probe.Observe does.
func (c *Collector) Record(r *record.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.byID[r.Probe]
	if p == nil {
		return
	}
	if r.Warmup {
		p.warmup++
		return
	}
	p.outcomes[r.Outcome]++
	// The client's own delay, whatever the outcome, as metrics counts it.
	for _, l := range r.ReadLags {
		p.readLag = append(p.readLag, l.Seconds())
	}
	if r.Saturated {
		p.saturatedObs++
	}
	ok := r.Outcome == prober.OutcomeSuccess
	if ok {
		p.observeLatencies(r)
	}
	if r.Outcome == prober.OutcomeCanceled {
		return
	}
	for i := range p.slo {
		p.slo[i].total++
		if ok && r.Meets(&p.sc.SLOs[i]) {
			p.slo[i].good++
		}
	}
}

func (p *probeData) observeLatencies(r *record.Record) {
	p.e2e = append(p.e2e, r.E2E.Seconds())
	if r.TTFB >= 0 {
		p.ttfb = append(p.ttfb, r.TTFB.Seconds())
	}
	if r.TTFT >= 0 {
		p.ttft = append(p.ttft, r.TTFT.Seconds())
		if v, ok := r.TPOT(); ok {
			p.tpot = append(p.tpot, v.Seconds())
		}
	}
	for _, g := range r.Gaps {
		k := max(g.Tokens, 1)
		per := (g.Gap / time.Duration(k)).Seconds()
		for range k {
			p.itl = append(p.itl, per)
		}
	}
	if v, ok := r.NTPOT(); ok {
		p.ntpot = append(p.ntpot, v.Seconds())
	}
	p.outputTokens += int64(r.OutputTokens)
	p.inputTokens += int64(max(r.InputTokens, 0))
	if r.GroundTruth && r.ServerTTFT >= 0 && r.TTFT >= 0 {
		p.bias = append(p.bias, (r.TTFT - r.ServerTTFT).Seconds())
	}
}

// Sample implements worker.Tap.
func (c *Collector) Sample(worker int, s *record.Sample, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workers[worker]
	if w == nil {
		w = &workerData{reasons: map[string]int{}, example: map[string]string{}}
		c.workers[worker] = w
	}
	w.windows++
	if why != "" {
		w.badWindows++
		k := ReasonKind(why)
		w.reasons[k]++
		w.example[k] = why
	}
	if s.Saturated {
		w.saturatedWindows++
		if w.firstSaturated.IsZero() {
			w.firstSaturated = time.Unix(0, s.UnixNano)
		}
	}
	w.lastInFlight, w.lastCap, w.lastSchedP99 = s.InFlight, s.InFlightCap, s.SchedLatencyP99
	if w.lastTime != 0 && s.UnixNano > w.lastTime && s.Sent >= w.lastSent {
		w.sendRate = float64(s.Sent-w.lastSent) / time.Duration(s.UnixNano-w.lastTime).Seconds()
	}
	w.lastSent, w.lastTime, w.saturated = s.Sent, s.UnixNano, s.Saturated
	for _, pc := range s.Probes {
		if p := c.byID[pc.ID]; p != nil {
			if p.books[worker] == nil {
				p.books[worker] = map[uint32]record.ProbeCounts{}
			}
			p.books[worker][pc.ID] = pc
		}
	}
}

// ReasonReadLag is the kind of a window bad on its client read lag alone.
const ReasonReadLag = "read_lag"

// ReasonKind names the saturation signal a reason (worker.Thresholds.Judge)
// is about.
func ReasonKind(why string) string {
	switch {
	case strings.Contains(why, "late"):
		return "late_sends"
	case strings.HasPrefix(why, "CPU"):
		return "cpu"
	case strings.Contains(why, "scheduler"):
		return "go_scheduler_latency"
	case strings.Contains(why, "records waiting"):
		return "record_backlog"
	case strings.HasPrefix(why, "read lag"):
		return ReasonReadLag
	}
	return "other"
}

// Progress is a live glance at a running collection.
type Progress struct {
	Ended      uint64  // requests ended, warm-up included
	Errors     uint64  // of them, not successful
	RecentRate float64 // requests sent per second over the latest samples
	Saturated  bool    // some worker's latest verdict
}

// Progress reads the collection so far.
func (c *Collector) Progress() Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	var p Progress
	for _, d := range c.probes {
		p.Ended += d.warmup
		for o, n := range d.outcomes {
			p.Ended += n
			if prober.Outcome(o) != prober.OutcomeSuccess {
				p.Errors += n
			}
		}
	}
	for _, w := range c.workers {
		p.RecentRate += w.sendRate
		p.Saturated = p.Saturated || w.saturated
	}
	return p
}
