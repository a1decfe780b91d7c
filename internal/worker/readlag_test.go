package worker

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/record"
)

func TestLagBuckets(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 7, 8, 9, 15, 16, 1000, time.Microsecond * 137, time.Millisecond, 3*time.Millisecond + 1, time.Hour, math.MaxInt64} {
		i := lagBucket(d)
		if up := lagUpper(i); up < d || (d >= 8 && float64(up) > 1.25*float64(d)) {
			t.Errorf("%v: bucket %d ends at %v: want at or above it, by at most 25%%", d, i, up)
		}
		if i > 0 && lagUpper(i-1) >= d {
			t.Errorf("%v: bucket %d, but the one below ends at %v", d, i, lagUpper(i-1))
		}
	}
	if got := lagBucket(-time.Second); got != 0 {
		t.Errorf("a negative lag in bucket %d, want 0", got)
	}
}

// The window's p99 is that of the lags it was given, then it starts over.
func TestLagWindowP99(t *testing.T) {
	var w lagWindow
	lags := make([]time.Duration, 0, 1000)
	for i := range 990 {
		lags = append(lags, time.Duration(50+i%100)*time.Microsecond)
	}
	for range 10 {
		lags = append(lags, 20*time.Millisecond)
	}
	w.add(lags[:500])
	w.add(lags[500:])
	n, p99 := w.take()
	if n != 1000 || p99 < 149*time.Microsecond || p99 > 190*time.Microsecond {
		t.Errorf("1000 lags, 1%% of them 20ms: n %d, p99 %v; want 1000 and ~150µs", n, p99)
	}
	w.add(lags[990:])
	if n, p99 := w.take(); n != 10 || p99 < 20*time.Millisecond || p99 > 25*time.Millisecond {
		t.Errorf("next window: n %d, p99 %v; want 10 and ~20ms", n, p99)
	}
	if n, p99 := w.take(); n != 0 || p99 != 0 {
		t.Errorf("empty window: n %d, p99 %v", n, p99)
	}
	if a := testing.AllocsPerRun(100, func() { w.add(lags); w.take() }); a != 0 {
		t.Errorf("%v allocations per window", a)
	}
}

// sampleTap keeps the windows a worker reported, and why each was bad.
type sampleTap struct {
	mu      sync.Mutex
	samples []record.Sample
	whys    []string
}

func (s *sampleTap) Probes([]uint32, []config.Probe) {}
func (s *sampleTap) Send(record.Send)                {}
func (s *sampleTap) Record(*record.Record)           {}
func (s *sampleTap) Sample(_ int, smp *record.Sample, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *smp
	c.Probes = nil
	s.samples = append(s.samples, c)
	s.whys = append(s.whys, why)
}

// summary says how the windows' read-lag p99 spread, for the log.
func (s *sampleTap) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p99s []time.Duration
	var events uint64
	for _, smp := range s.samples {
		if smp.ReadLagEvents > 0 {
			p99s = append(p99s, smp.ReadLagP99)
			events += smp.ReadLagEvents
		}
	}
	if len(p99s) == 0 {
		return "no window with kernel-stamped events"
	}
	slices.Sort(p99s)
	q := func(f float64) time.Duration { return p99s[int(f*float64(len(p99s)-1))] }
	return fmt.Sprintf("%d windows, %d events; window read-lag p99: min %v, median %v, p90 %v, max %v", len(p99s), events, q(0), q(.5), q(.9), q(1))
}

// medianP99 is the median of the windows' read-lag p99, over windows with
// kernel-stamped events.
func (s *sampleTap) medianP99() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p99s []time.Duration
	for _, smp := range s.samples {
		if smp.ReadLagEvents > 0 {
			p99s = append(p99s, smp.ReadLagP99)
		}
	}
	if len(p99s) == 0 {
		return 0
	}
	slices.Sort(p99s)
	return p99s[len(p99s)/2]
}

// judged counts the windows with at least min kernel-stamped events.
func (s *sampleTap) judged(min uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, smp := range s.samples {
		if smp.ReadLagEvents >= min {
			n++
		}
	}
	return n
}

// verdictsFollowFigures says which window's read-lag verdict disagrees with
// its own figures under th (read lag the only signal), or "" if none. The
// first sample has no window before it and is not judged.
func (s *sampleTap) verdictsFollowFigures(th Thresholds) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, smp := range s.samples {
		if i == 0 {
			continue
		}
		want := smp.ReadLagEvents >= th.ReadLagMinEvents && smp.ReadLagP99 > th.ReadLagP99
		if got := strings.HasPrefix(s.whys[i], "read lag"); got != want {
			return fmt.Sprintf("window %d (%d events, read-lag p99 %v): judged bad on read lag %v (%q), want %v", i, smp.ReadLagEvents, smp.ReadLagP99, got, s.whys[i], want)
		}
	}
	return ""
}

func (s *sampleTap) readLagWhys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, w := range s.whys {
		if strings.HasPrefix(w, "read lag") {
			out = append(out, w)
		}
	}
	return out
}

func readLagConfig(t *testing.T, url string, rate int) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: ref, url: %q, model: m, timestamps: kernel}]
scenarios:
  - name: s
    load: {mode: open, rate: %d, max_in_flight: 1000}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 16}}
probes: [{targets: [ref], scenarios: [s]}]
`, url, rate)), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readLagOnly judges on read lag alone, so that a starved reader is shown
// to flip the verdict by that signal (its late sends and scheduler latency
// would flip it too, and be named first).
var readLagOnly = Thresholds{
	LateFraction: 2, CPU: 1e9, // JSON has no +Inf: the assignment carries these
	SchedLatencyP99: time.Hour, BacklogBytes: math.MaxInt64,
	ReadLagP99: DefaultThresholds.ReadLagP99, ReadLagMinEvents: DefaultThresholds.ReadLagMinEvents, Persist: DefaultThresholds.Persist,
}

// A worker process whose reading goroutines wait for a core (GOMAXPROCS 1
// and busy goroutines) reads its events late: its read lag turns it
// saturated, with read lag the reason, and its windows' read lag stands far
// above a healthy worker's measured in the same run. A busy machine delays a
// healthy reader too, and such a window is rightly judged bad, so the
// healthy cases assert that every verdict follows its own figures, not that
// none is bad. The endpoint runs in the test process, which the starvation
// does not reach, and the lags are the worker's own stamps against the
// kernel's, not timed against the machine.
func TestReadLagVerdict(t *testing.T) {
	ep := newEndpoint(t, 5*time.Millisecond, 2*time.Millisecond)
	w0 := map[string]string{"worker": "0"}
	healthy := map[int]time.Duration{} // median window read-lag p99 by workers

	for _, workers := range []int{0, 1} {
		t.Run(fmt.Sprintf("healthy/workers=%d", workers), func(t *testing.T) {
			h := newPool(t, workers, 200*time.Millisecond)
			tap := &sampleTap{}
			h.pool.opts.Tap, h.pool.opts.Thresholds = tap, readLagOnly
			if err := h.pool.Apply(readLagConfig(t, ep.URL, 20)); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "read lags observed", func() bool {
				return h.value(t, "llmprobe_worker_client_read_lag_seconds", w0) > 0
			})
			saturated := 0
			for range 15 {
				if h.value(t, "llmprobe_client_saturated", w0) != 0 {
					saturated++
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Log(tap.summary())
			if n := tap.judged(readLagOnly.ReadLagMinEvents); n < 5 {
				t.Errorf("%d windows with enough kernel-stamped events to judge, want at least 5 (%s)", n, tap.summary())
			}
			if msg := tap.verdictsFollowFigures(readLagOnly); msg != "" {
				t.Error(msg)
			}
			if whys := tap.readLagWhys(); saturated > 0 && len(whys) < readLagOnly.Persist {
				t.Errorf("llmprobe_client_saturated = 1 at %d polls, but only %d windows bad on read lag (%q), want at least %d", saturated, len(whys), whys, readLagOnly.Persist)
			}
			if v := h.value(t, "llmprobe_timestamp_source", map[string]string{"target": "ref", "source": "kernel"}); v != 1 {
				t.Errorf("llmprobe_timestamp_source{source=kernel} = %v, want 1", v)
			}
			healthy[workers] = tap.medianP99()
		})
	}
	t.Run("starved reader", func(t *testing.T) {
		t.Setenv(starveWorker, "1") // the worker process only
		h := newPool(t, 1, 200*time.Millisecond)
		tap := &sampleTap{}
		h.pool.opts.Tap, h.pool.opts.Thresholds = tap, readLagOnly
		if err := h.pool.Apply(readLagConfig(t, ep.URL, 20)); err != nil {
			t.Fatal(err)
		}
		defer func() { t.Log(tap.summary()) }()
		eventually(t, 15*time.Second, "llmprobe_client_saturated = 1", func() bool {
			return h.value(t, "llmprobe_client_saturated", w0) == 1
		})
		if whys := tap.readLagWhys(); len(whys) < readLagOnly.Persist {
			t.Errorf("saturated, but %d windows bad on read lag (%q); want at least %d", len(whys), whys, readLagOnly.Persist)
		}
		if msg := tap.verdictsFollowFigures(readLagOnly); msg != "" {
			t.Error(msg)
		}
		if base, ok := healthy[1]; ok && tap.medianP99() < 4*base {
			t.Errorf("starved worker's median window read-lag p99 %v, under 4× the healthy worker's %v", tap.medianP99(), base)
		}
	})
}
