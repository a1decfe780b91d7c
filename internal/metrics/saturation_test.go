package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llmprobe/llmprobe/internal/record"
)

// During a reload the old incarnation of a worker drains while the new one
// runs: gauges must show their sum, and the old one must not speak for the
// saturation verdict any more.
func TestOverlappingIncarnations(t *testing.T) {
	s := NewSaturation(prometheus.NewPedanticRegistry())
	w := s.Worker("0", 10)
	old := w.Start()
	old.Apply(&record.Sample{UnixNano: 1e9, Sent: 5, InFlight: 3, InFlightCap: 8, Saturated: true}, 1, true)
	if got := testutil.ToFloat64(w.saturated); got != 1 {
		t.Fatalf("saturated = %v, want 1", got)
	}
	next := w.Start()
	next.Apply(&record.Sample{UnixNano: 1e9, Sent: 2, InFlight: 2, InFlightCap: 8}, 1, true)
	old.Apply(&record.Sample{UnixNano: 2e9, Sent: 5, InFlight: 1, InFlightCap: 8, Saturated: true}, 1, false)
	for name, c := range map[string]struct {
		g    prometheus.Gauge
		want float64
	}{"up": {w.up, 2}, "in flight": {w.inFlight, 3}, "cap": {w.cap, 16}, "saturated": {w.saturated, 0}} {
		if got := testutil.ToFloat64(c.g); got != c.want {
			t.Errorf("%s = %v, want %v", name, got, c.want)
		}
	}
	old.End()
	if up, infl := testutil.ToFloat64(w.up), testutil.ToFloat64(w.inFlight); up != 1 || infl != 2 {
		t.Errorf("after the old incarnation ends: up %v, in flight %v; want 1 and 2", up, infl)
	}
	if sent := testutil.ToFloat64(w.sent); sent != 7 {
		t.Errorf("sent = %v, want 7 (5 + 2, never backwards)", sent)
	}
}
