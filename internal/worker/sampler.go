package worker

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/llmprobe/llmprobe/internal/load"
	"github.com/llmprobe/llmprobe/internal/record"
)

// Thresholds decide when a worker calls itself saturated: when its own
// queueing, not the endpoint, starts to shape what it measures. Arrivals
// dropped at the in-flight cap are not among them: a slow engine fills the
// cap with the client idle, and calling that saturation would silence the
// very latency alerts that should fire (llmprobe_load_shed_ratio reports it). Any one of
// them over a sampling window marks the window; the verdict changes only
// after Persist windows in a row disagree with it. A false "saturated" is
// costly (the shipped alerts stand down for the engine while it lasts), so
// the defaults were chosen where a healthy client on the 2-core benchmark
// machine never crossed them (see bench/README.md).
type Thresholds struct {
	// LateFraction of the window's sends later than the late-dispatch
	// threshold, counted only from MinLate late sends on (one stray late
	// send in a quiet window says nothing).
	LateFraction float64
	MinLate      uint64
	// CPU utilisation of the worker's usable cores (0..1).
	CPU float64
	// SchedLatencyP99 of the Go scheduler: goroutines (stream readers among
	// them) waiting this long to run delay the timestamps they take.
	SchedLatencyP99 time.Duration
	// BacklogBytes of records not yet written to the supervisor.
	BacklogBytes int64
	// ReadLagP99 of the window's text events with a kernel stamp (user-space
	// read time − kernel receive time): the bias the client's own reading
	// would have added. Judged only from ReadLagMinEvents such events on: in
	// a thinner window the p99 is its maximum, one stray preemption. Zero
	// turns the signal off.
	ReadLagP99       time.Duration
	ReadLagMinEvents uint64
	// Persist is how many windows in a row must disagree with the current
	// verdict to change it.
	Persist int
}

// DefaultThresholds are documented in the README's saturation section.
var DefaultThresholds = Thresholds{
	LateFraction:     0.05,
	MinLate:          3,
	CPU:              0.90,
	SchedLatencyP99:  3 * time.Millisecond,
	BacklogBytes:     4 << 20,
	ReadLagP99:       10 * time.Millisecond,
	ReadLagMinEvents: 20,
	Persist:          2,
}

// Judge says whether the window between prev and cur shows saturation, and
// why (empty when not).
func (t Thresholds) Judge(prev, cur *record.Sample, cores int) (bool, string) {
	sent := cur.Sent - prev.Sent
	if late := cur.Late - prev.Late; late >= t.MinLate && late > 0 && float64(late)/float64(sent) > t.LateFraction {
		return true, fmt.Sprintf("%d of %d sends were late", late, sent)
	}
	if wall := time.Duration(cur.UnixNano - prev.UnixNano).Seconds(); wall > 0 && cores > 0 {
		if u := (cur.CPUSeconds - prev.CPUSeconds) / wall / float64(cores); u > t.CPU {
			return true, fmt.Sprintf("CPU at %.0f%% of %d cores", u*100, cores)
		}
	}
	if cur.SchedLatencyP99 > t.SchedLatencyP99 {
		return true, fmt.Sprintf("Go scheduler latency p99 %s", cur.SchedLatencyP99.Round(time.Microsecond))
	}
	if cur.PipeBacklogBytes > t.BacklogBytes {
		return true, fmt.Sprintf("%d bytes of records waiting for the supervisor", cur.PipeBacklogBytes)
	}
	if t.ReadLagP99 > 0 && cur.ReadLagEvents >= max(t.ReadLagMinEvents, 1) && cur.ReadLagP99 > t.ReadLagP99 {
		return true, fmt.Sprintf("read lag p99 %s over %d kernel-stamped events", cur.ReadLagP99.Round(time.Microsecond), cur.ReadLagEvents)
	}
	return false, ""
}

// sampler reads one process' view of itself: its runner's books, CPU time,
// and the Go runtime's scheduler latency and GC pauses since the last read.
type sampler struct {
	runner  *load.Runner
	rt      []metrics.Sample
	prevSch []uint64
	prevGC  []uint64
}

func newSampler(r *load.Runner) *sampler {
	return &sampler{runner: r, rt: []metrics.Sample{
		{Name: "/sched/latencies:seconds"},
		{Name: "/sched/pauses/total/gc:seconds"},
	}}
}

// Cores is how many cores this process may use (container-aware: Go's
// GOMAXPROCS follows the cgroup CPU limit).
func Cores() int { return runtime.GOMAXPROCS(0) }

// InProcessCores is the most cores on which the load runs in-process by
// default. Measured on 2 shared cores (bench/README.md): 2 worker processes
// cost 2-9% more CPU per token than in-process at 100-700 req/s, for the
// same accuracy; above 2 cores one worker per core stays the default until
// a bigger machine measures otherwise.
const InProcessCores = 2

// DefaultWorkers is --workers' default: 0 (in-process) on up to
// InProcessCores usable cores, one worker per core above.
func DefaultWorkers() int {
	if c := Cores(); c > InProcessCores {
		return c
	}
	return 0
}

// sample fills s for now; backlog is what the caller has not yet written.
func (sm *sampler) sample(s *record.Sample, backlog int64) {
	probes := s.Probes[:0]
	*s = record.Sample{UnixNano: time.Now().UnixNano(), PipeBacklogBytes: backlog}
	var total record.ProbeCounts
	s.Probes, total = sm.runner.Snapshots(probes)
	s.Scheduled, s.Sent, s.Dropped, s.Late = total.Scheduled, total.Sent, total.Dropped, total.Late
	s.InFlight, s.InFlightCap = sm.runner.InFlight()
	s.CPUSeconds = cpuSeconds()
	metrics.Read(sm.rt)
	sch := sm.rt[0].Value.Float64Histogram()
	s.SchedLatencyP50 = windowQuantile(sch, sm.prevSch, 0.50)
	s.SchedLatencyP90 = windowQuantile(sch, sm.prevSch, 0.90)
	s.SchedLatencyP99 = windowQuantile(sch, sm.prevSch, 0.99)
	s.SchedLatencyMax = windowQuantile(sch, sm.prevSch, 1)
	sm.prevSch = append(sm.prevSch[:0], sch.Counts...)
	gc := sm.rt[1].Value.Float64Histogram()
	s.GCPauseMax = windowQuantile(gc, sm.prevGC, 1)
	s.GCPauseTotal = histogramSum(gc)
	sm.prevGC = append(sm.prevGC[:0], gc.Counts...)
}

// windowQuantile is the q-quantile (upper bucket bound) of what h gained
// since prev; 0 when nothing was added.
func windowQuantile(h *metrics.Float64Histogram, prev []uint64, q float64) time.Duration {
	var total uint64
	for i, c := range h.Counts {
		total += c - at(prev, i)
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c - at(prev, i)
		if seen >= rank && seen > 0 {
			upper := h.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = h.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}

// histogramSum estimates the total of h from bucket midpoints.
func histogramSum(h *metrics.Float64Histogram) time.Duration {
	var sum float64
	for i, c := range h.Counts {
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		sum += float64(c) * (lo + hi) / 2
	}
	return time.Duration(sum * float64(time.Second))
}

func at(s []uint64, i int) uint64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// cpuSeconds is this process' user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// verdict is a worker's standing saturation judgement, debounced over
// windows; transitions are logged, and the runner marks the records it sends
// while saturated.
type verdict struct {
	saturated bool
	against   int // windows in a row that disagreed with saturated
	windows   int // judged so far
}

// startupWindows are not judged: a process that has just started (its heap
// small and collected often, its code paged in, its first connections being
// dialled) sends its first requests a few milliseconds late for reasons that
// say nothing of its capacity, and a false "saturated" would hold back the
// SLO alerts for their whole window after every start or reload. A client
// saturated from the start is called so startupWindows later.
const startupWindows = 2

func (v *verdict) update(t Thresholds, prev, cur *record.Sample, r *load.Runner, logger *slog.Logger) {
	if changed, why := v.judge(t, prev, cur, Cores()); changed {
		logTransition(v.saturated, why, logger)
	}
	cur.Saturated = v.saturated
	r.SetSaturated(v.saturated)
}

// judge takes the window between prev and cur and reports whether the
// verdict changed, and why the window was bad.
func (v *verdict) judge(t Thresholds, prev, cur *record.Sample, cores int) (bool, string) {
	sat, why := t.Judge(prev, cur, cores)
	if v.windows++; v.windows <= startupWindows {
		sat = false
	}
	return v.observe(sat, t.Persist), why
}

// observe takes one window's judgement and reports whether the verdict
// changed.
func (v *verdict) observe(sat bool, persist int) bool {
	if sat == v.saturated {
		v.against = 0
		return false
	}
	v.against++
	if v.against < max(persist, 1) {
		return false
	}
	v.saturated, v.against = sat, 0
	return true
}

func logTransition(sat bool, why string, logger *slog.Logger) {
	if sat {
		logger.Warn("client saturated: its measurements now include its own queueing", "why", why)
	} else {
		logger.Info("client no longer saturated")
	}
}
