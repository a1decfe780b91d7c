package worker

import (
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/record"
)

func TestJudge(t *testing.T) {
	th := DefaultThresholds
	base := record.Sample{UnixNano: 0, Sent: 1000, Late: 10, Dropped: 5, CPUSeconds: 10}
	window := func(f func(*record.Sample)) *record.Sample {
		s := base
		s.UnixNano = int64(time.Second)
		s.Sent += 100
		s.CPUSeconds += 0.2
		f(&s)
		return &s
	}
	for _, c := range []struct {
		name string
		cur  *record.Sample
		want string
	}{
		{"healthy", window(func(*record.Sample) {}), ""},
		{"one stray late send", window(func(s *record.Sample) { s.Late += 2 }), ""},
		{"many late sends", window(func(s *record.Sample) { s.Late += 6 }), "6 of 100 sends were late"},
		{"few late among few sends", window(func(s *record.Sample) { s.Sent -= 97; s.Late += 3 }), "3 of 3 sends were late"},
		{"drops are the engine's, not saturation", window(func(s *record.Sample) { s.Dropped += 500 }), ""},
		{"CPU", window(func(s *record.Sample) { s.CPUSeconds += 0.75 }), "CPU at 95% of 1 cores"},
		{"scheduler at the limit", window(func(s *record.Sample) { s.SchedLatencyP99 = 3 * time.Millisecond }), ""},
		{"scheduler over", window(func(s *record.Sample) { s.SchedLatencyP99 = 4 * time.Millisecond }), "Go scheduler latency p99 4ms"},
		{"backlog", window(func(s *record.Sample) { s.PipeBacklogBytes = 5 << 20 }), "5242880 bytes of records waiting for the supervisor"},
		{"read lag at the limit", window(func(s *record.Sample) { s.ReadLagEvents, s.ReadLagP99 = 500, 10*time.Millisecond }), ""},
		{"read lag over", window(func(s *record.Sample) { s.ReadLagEvents, s.ReadLagP99 = 500, 12*time.Millisecond }), "read lag p99 12ms over 500 kernel-stamped events"},
		{"read lag over, too few events to judge", window(func(s *record.Sample) { s.ReadLagEvents, s.ReadLagP99 = 19, 50*time.Millisecond }), ""},
		{"no kernel-stamped events", window(func(s *record.Sample) { s.ReadLagP99 = 50 * time.Millisecond }), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			sat, why := th.Judge(&base, c.cur, 1)
			if sat != (c.want != "") || why != c.want {
				t.Errorf("Judge = %v, %q; want %q", sat, why, c.want)
			}
		})
	}
}

// The first windows after a start are not judged: a process warming up sends
// its first requests late for reasons that say nothing of its capacity.
// Saturation from the start is still called, startupWindows later.
func TestVerdictIgnoresStartup(t *testing.T) {
	var v verdict
	late := func(i int) (*record.Sample, *record.Sample) {
		prev := &record.Sample{UnixNano: int64(i) * 1e9, Sent: uint64(i) * 6, Late: uint64(i) * 4}
		cur := &record.Sample{UnixNano: int64(i+1) * 1e9, Sent: uint64(i+1) * 6, Late: uint64(i+1) * 4}
		return prev, cur
	}
	for i := 0; i < startupWindows; i++ {
		prev, cur := late(i)
		if changed, why := v.judge(DefaultThresholds, prev, cur, 1); changed || v.saturated || why != "4 of 6 sends were late" {
			t.Fatalf("start-up window %d: changed %v, saturated %v (%q); want not saturated", i, changed, v.saturated, why)
		}
	}
	for i := startupWindows; i < startupWindows+DefaultThresholds.Persist; i++ {
		prev, cur := late(i)
		v.judge(DefaultThresholds, prev, cur, 1)
	}
	if !v.saturated {
		t.Errorf("still not saturated after %d bad windows past start-up", DefaultThresholds.Persist)
	}
}

func TestVerdictNeedsPersistentWindows(t *testing.T) {
	var v verdict
	steps := []struct {
		window, changed, saturated bool
	}{
		{true, false, false},  // one bad window is not enough
		{false, false, false}, // and a good one resets it
		{true, false, false},
		{true, true, true}, // two in a row
		{true, false, true},
		{false, false, true}, // one good window does not clear it
		{false, true, false},
	}
	for i, s := range steps {
		if changed := v.observe(s.window, 2); changed != s.changed || v.saturated != s.saturated {
			t.Fatalf("step %d: changed %v saturated %v; want %v %v", i, changed, v.saturated, s.changed, s.saturated)
		}
	}
}
