package load_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
	"github.com/llmprobe/llmprobe/simulator"
)

// sink keeps copies of the records it is handed.
type sink struct {
	mu      sync.Mutex
	sends   []record.Send
	records []record.Record
}

func (s *sink) Sent(v record.Send) {
	s.mu.Lock()
	s.sends = append(s.sends, v)
	s.mu.Unlock()
}

func (s *sink) sent() []record.Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]record.Send(nil), s.sends...)
}

func (s *sink) Put(r *record.Record) {
	s.mu.Lock()
	s.records = append(s.records, *r)
	s.mu.Unlock()
	// The copy shares Gaps/EmitLags with r; not returning r to the pool
	// keeps them valid.
}

func (s *sink) all() []record.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]record.Record(nil), s.records...)
}

func endpoint(t *testing.T, ttft time.Duration) string {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Model = "m"
	cfg.TTFT, cfg.ITL = model.Duration(ttft), model.Duration(time.Millisecond)
	addr, stop, err := simulator.Serve(context.Background(), "127.0.0.1:0", cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return "http://" + addr
}

func runFor(t *testing.T, url, loadYAML string, d time.Duration, watch func(*load.Runner)) []record.Record {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: ref, url: %q, model: m}]
scenarios:
  - name: s
    load: %s
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [ref], scenarios: [s]}]
`, url, loadYAML)), "")
	if err != nil {
		t.Fatal(err)
	}
	return runShare(t, cfg, load.Options{Workers: 1, Drain: 5 * time.Second}, d, watch)
}

func runShare(t *testing.T, cfg *config.Config, opts load.Options, d time.Duration, watch func(*load.Runner)) []record.Record {
	t.Helper()
	s, _ := runSink(t, cfg, opts, d, watch)
	return s.all()
}

// runSink runs cfg's share for d and returns what reached the sink and the
// stopped runner (for its books).
func runSink(t *testing.T, cfg *config.Config, opts load.Options, d time.Duration, watch func(*load.Runner)) (*sink, *load.Runner) {
	t.Helper()
	s := &sink{}
	r, err := load.New(cfg, opts, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	if watch != nil {
		watch(r)
	}
	<-done
	r.Close()
	return s, r
}

func TestClosedLoopKeepsConcurrency(t *testing.T) {
	url := endpoint(t, 20*time.Millisecond)
	var maxInFlight int64
	recs := runFor(t, url, "{mode: closed, concurrency: 3}", time.Second, func(r *load.Runner) {
		for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			in, capacity := r.InFlight()
			maxInFlight = max(maxInFlight, in)
			if capacity != 3 {
				t.Errorf("cap = %d, want 3", capacity)
				return
			}
		}
	})
	if maxInFlight != 3 {
		t.Errorf("max in flight %d, want exactly 3 (closed loop keeps its concurrency)", maxInFlight)
	}
	// ~24 ms per request, 3 at a time, for 1 s: about 120.
	if len(recs) < 60 {
		t.Errorf("%d requests in 1s at concurrency 3 with ~24ms requests", len(recs))
	}
	for _, r := range recs {
		if r.Outcome != prober.OutcomeSuccess {
			t.Fatalf("outcome %s", r.Outcome)
		}
	}
}

func TestWarmupMarksEarlyIntendedTimes(t *testing.T) {
	url := endpoint(t, 5*time.Millisecond)
	recs := runFor(t, url, "{mode: open, arrival: constant, rate: 40, warmup: 500ms}", 1200*time.Millisecond, nil)
	// The runner's clock starts inside Run; a constant stream's first
	// arrival comes one gap (25 ms) after it.
	start := recs[0].Intended
	for _, r := range recs {
		start = min(start, r.Intended)
	}
	start -= int64(25 * time.Millisecond)
	var warm, measured int
	for _, r := range recs {
		intendedAfter := time.Duration(r.Intended - start)
		switch {
		case r.Warmup && intendedAfter > 550*time.Millisecond,
			!r.Warmup && intendedAfter < 450*time.Millisecond:
			t.Errorf("intended %v after start, warmup=%v", intendedAfter, r.Warmup)
		case r.Warmup:
			warm++
		default:
			measured++
		}
	}
	if warm < 15 || measured < 20 {
		t.Errorf("%d warm-up and %d measured requests at 40/s over 0.5s + 0.7s", warm, measured)
	}
}

// An open loop never waits for the server: with one slot and a slow
// endpoint, arrivals are dropped and counted, and the schedule goes on.
func TestOpenLoopDropsInsteadOfQueueing(t *testing.T) {
	url := endpoint(t, 200*time.Millisecond)
	var last record.ProbeCounts
	recs := runFor(t, url, "{mode: open, arrival: constant, rate: 100, max_in_flight: 1}", time.Second, func(r *load.Runner) {
		time.Sleep(990 * time.Millisecond)
		last = firstBooks(r)
	})
	if last.Scheduled < 90 || last.Dropped < last.Scheduled-10 {
		t.Errorf("books %+v: want ~100 scheduled, nearly all dropped", last)
	}
	// A queued request would wait for the slot, ~200 ms; a busy machine
	// delays a send by far less.
	for _, r := range recs {
		if r.ScheduleDelay > 150*time.Millisecond {
			t.Errorf("a request waited %v for its slot: the open loop queued it", r.ScheduleDelay)
		}
	}
}

// With more workers than closed-loop streams, a worker's share is 0: it sends
// nothing, but runs until stopped (a worker that returned at once would be
// restarted over and over by its supervisor).
func TestWorkerWithNoShareRunsUntilStopped(t *testing.T) {
	cfg, err := config.LoadBytes([]byte(`
targets: [{name: ref, url: "http://127.0.0.1:1", model: m}]
scenarios: [{name: s, load: {mode: closed, concurrency: 1}}]
probes: [{targets: [ref], scenarios: [s]}]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	recs := runShare(t, cfg, load.Options{Worker: 1, Workers: 2, Drain: time.Second}, 300*time.Millisecond, nil)
	if took := time.Since(began); took < 250*time.Millisecond {
		t.Errorf("Run returned after %v, before its context ended", took)
	}
	if len(recs) != 0 {
		t.Errorf("%d requests from a worker with no share", len(recs))
	}
}

// firstBooks is the first probe's books.
func firstBooks(r *load.Runner) record.ProbeCounts {
	s, _ := r.Snapshots(nil)
	return s[0]
}

// The drain bound holds for closed loops too: a closed loop's request is
// sent from its loop, and a server that holds it does not hold the stop for
// the scenario timeout; the request ends canceled, with its record.
func TestClosedLoopRequestsDrainWithinTheBound(t *testing.T) {
	release := make(chan struct{})
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hold.Close()
	defer close(release)
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: ref, url: %q, model: m}]
scenarios: [{name: s, load: {mode: closed, concurrency: 2}, timeout: 1m}]
probes: [{targets: [ref], scenarios: [s]}]
`, hold.URL)), "")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	recs := runShare(t, cfg, load.Options{Workers: 1, Drain: 300 * time.Millisecond}, 200*time.Millisecond, nil)
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("stopping took %v: the held requests waited for their 1m timeout, not the 300ms drain", took)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want the 2 held requests", len(recs))
	}
	for _, r := range recs {
		if r.Outcome != prober.OutcomeCanceled {
			t.Errorf("outcome %v, want canceled after the drain bound", r.Outcome)
		}
	}
}
