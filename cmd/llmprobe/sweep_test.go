package main

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/report"
	"github.com/llmprobe/llmprobe/simulator"
)

// An engine that serves two sequences at a time holds its TTFT at light
// load and queues beyond: the sweep finds the knee below the overload,
// stops after two collapsed steps without running the rest, and every step
// reports the rate it asked for.
func TestSweepFindsTheKneeAndStopsEarly(t *testing.T) {
	url := referenceEndpoint(t, func(c *simulator.Config) {
		c.TTFT, c.ITL, c.MaxConcurrency = model.Duration(5*time.Millisecond), model.Duration(time.Millisecond), 2
	})
	base := benchConfig(t, url, "{mode: open, rate: 1, max_in_flight: 40}")
	zero := model.Duration(0)
	values := []float64{5, 20, 400, 800, 1600}
	sw, err := sweep(context.Background(), base, "", values, &zero, 0.99,
		report.BenchOptions{Workers: 0, Drain: 3 * time.Second, Duration: 1500 * time.Millisecond}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Steps) != 4 || !sw.StoppedEarly {
		t.Fatalf("%d steps run (stopped early: %v), want 4: two that hold, two that collapse", len(sw.Steps), sw.StoppedEarly)
	}
	for i, st := range sw.Steps {
		if got := st.Report.Probes[0].RequestedRate; got != values[i] {
			t.Errorf("step %d asked for %v req/s, want %v", i, got, values[i])
		}
		t.Logf("step %v: goodput %.3f, TTFT p99 %s, saturated %v", st.Value, st.Goodput, report.Dur(st.TTFTP99), st.ClientSaturated)
	}
	if sw.Steps[2].Holds || sw.Steps[3].Holds {
		t.Fatalf("the overloaded steps held: %+v / %+v", sw.Steps[2].Goodput, sw.Steps[3].Goodput)
	}
	// The light steps hold unless the shared machine saturated the client
	// there, which the knee must then not count.
	if sw.Knee == nil {
		if !sw.Steps[0].ClientSaturated && !sw.Steps[1].ClientSaturated {
			t.Fatalf("no knee: %s", sw.KneeNote)
		}
	} else if *sw.Knee != 20 && *sw.Knee != 5 {
		t.Errorf("knee %v, want 20 (or 5 if the client saturated at 20)", *sw.Knee)
	}
}

func TestLadder(t *testing.T) {
	if got, err := ladder("1, 2,4", 0, 0, 0); err != nil || !slices.Equal(got, []float64{1, 2, 4}) {
		t.Errorf("--rates: %v, %v", got, err)
	}
	if got, err := ladder("", 10, 50, 5); err != nil || !slices.Equal(got, []float64{10, 20, 30, 40, 50}) {
		t.Errorf("--from/--to/--steps: %v, %v", got, err)
	}
	for _, bad := range []struct {
		rates    string
		from, to float64
		steps    int
	}{{"2,1", 0, 0, 0}, {"1,x", 0, 0, 0}, {"0", 0, 0, 0}, {"", 5, 5, 3}, {"", 1, 5, 1}, {"", 0, 5, 3}} {
		if _, err := ladder(bad.rates, bad.from, bad.to, bad.steps); err == nil {
			t.Errorf("ladder(%q, %v, %v, %v) accepted", bad.rates, bad.from, bad.to, bad.steps)
		}
	}
}
