package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/simulator"
)

// The ground truth of the real-Prometheus test is what the reference endpoint
// itself did, read from its own per-event stamps (llmprobe_emit_ns: the
// server's wall clock just before it writes the event) as it writes them: the
// TTFT, token gaps, TPOT and end-to-end time each request actually had on
// the server. Unlike the configured latency model, these include the
// endpoint's own lateness on a busy machine, which is real latency that any
// client must see; what is left between them and Prometheus' figures is
// llmprobe's measurement (loopback, tens of microseconds) and the histograms'
// resolution, which is what the test is about.

// serverRequest is one streamed chat request as the endpoint served it.
type serverRequest struct {
	done            time.Time // emit of its last stamped event
	ttft, e2e, tpot time.Duration
	gaps            []time.Duration // between text-bearing events
}

// truthEndpoint serves the reference endpoint on loopback and keeps the
// stamps of every streamed chat completion it serves.
type truthEndpoint struct {
	addr string
	mu   sync.Mutex
	reqs []serverRequest
}

// startTruthEndpoint serves cfg on a free loopback port until the test ends.
func startTruthEndpoint(t *testing.T, cfg simulator.Config) *truthEndpoint {
	t.Helper()
	sim, err := simulator.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &truthEndpoint{addr: ln.Addr().String()}
	inner := sim.Handler()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			inner.ServeHTTP(w, r)
			return
		}
		sw := &stampWriter{ResponseWriter: w, arrival: time.Now()}
		inner.ServeHTTP(sw, r)
		e.add(sw)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		sim.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return e
}

func (e *truthEndpoint) add(sw *stampWriter) {
	if !sw.sawDone || len(sw.textEmits) < 2 {
		return // not a complete stream of at least 2 tokens: the histograms the test checks leave it out too
	}
	arrival := sw.arrival.UnixNano()
	first := sw.textEmits[0]
	req := serverRequest{
		done: time.Unix(0, sw.lastEmit),
		ttft: time.Duration(first - arrival),
		e2e:  time.Duration(sw.lastEmit - arrival),
		gaps: make([]time.Duration, 0, len(sw.textEmits)-1),
	}
	req.tpot = (req.e2e - req.ttft) / time.Duration(len(sw.textEmits)-1)
	prev := first
	for _, emit := range sw.textEmits[1:] {
		req.gaps = append(req.gaps, time.Duration(emit-prev))
		prev = emit
	}
	e.mu.Lock()
	e.reqs = append(e.reqs, req)
	e.mu.Unlock()
}

// truth is the exact distribution of the requests the endpoint finished in
// (from, to].
type truth struct {
	requests             int
	ttft, itl, tpot, e2e []float64 // seconds, sorted
}

func (e *truthEndpoint) truth(from, to time.Time) truth {
	e.mu.Lock()
	defer e.mu.Unlock()
	var tr truth
	for _, r := range e.reqs {
		if !r.done.After(from) || r.done.After(to) {
			continue
		}
		tr.requests++
		tr.ttft = append(tr.ttft, r.ttft.Seconds())
		tr.e2e = append(tr.e2e, r.e2e.Seconds())
		tr.tpot = append(tr.tpot, r.tpot.Seconds())
		for _, g := range r.gaps {
			tr.itl = append(tr.itl, g.Seconds())
		}
	}
	for _, s := range [][]float64{tr.ttft, tr.itl, tr.tpot, tr.e2e} {
		slices.Sort(s)
	}
	return tr
}

// series returns the sorted truth for one of the four latency metrics.
func (tr truth) series(metric string) []float64 {
	switch metric {
	case "llmprobe_time_to_first_token_seconds":
		return tr.ttft
	case "llmprobe_inter_token_latency_seconds":
		return tr.itl
	case "llmprobe_time_per_output_token_seconds":
		return tr.tpot
	case "llmprobe_request_duration_seconds":
		return tr.e2e
	}
	panic("no ground truth for " + metric)
}

// quantile is the q-quantile of sorted values, interpolated between the two
// nearest order statistics.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// stampWriter passes the endpoint's stream through unchanged and reads, per
// SSE event, its emit stamp and whether it carries generated text.
type stampWriter struct {
	http.ResponseWriter
	arrival   time.Time
	pending   []byte
	textEmits []int64 // emit stamps of text-bearing events, Unix ns
	lastEmit  int64
	sawDone   bool
}

var (
	emitField = []byte(`"llmprobe_emit_ns":`)
	doneEvent = []byte("data: [DONE]")
	eventEnd  = []byte("\n\n")
	// Each token is the word "tok" (simulator/README.md); the role chunk's
	// content is empty and the usage chunk has no delta.
	textContent = []byte(`"content":"tok`)
)

func (s *stampWriter) Write(p []byte) (int, error) {
	s.pending = append(s.pending, p...)
	for {
		i := bytes.Index(s.pending, eventEnd)
		if i < 0 {
			break
		}
		s.event(s.pending[:i])
		s.pending = s.pending[i+len(eventEnd):]
	}
	return s.ResponseWriter.Write(p)
}

func (s *stampWriter) event(ev []byte) {
	if bytes.HasPrefix(ev, doneEvent) {
		s.sawDone = true
		return
	}
	emit, ok := emitStamp(ev)
	if !ok {
		return
	}
	s.lastEmit = emit
	if bytes.Contains(ev, textContent) {
		s.textEmits = append(s.textEmits, emit)
	}
}

func emitStamp(ev []byte) (int64, bool) {
	i := bytes.Index(ev, emitField)
	if i < 0 {
		return 0, false
	}
	rest := ev[i+len(emitField):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	v, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	return v, err == nil
}

func (s *stampWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// referenceConfig is the embedded default's reference endpoint
// (simulator.DefaultConfig: TTFT 50 ms, ITL 10 ms, no prefill cost) with
// spread around those means. A point mass is the one distribution no
// bucketed quantile can resolve (every quantile lands wherever interpolation
// puts it in the one bucket holding all the mass), and no engine has one.
func referenceConfig() simulator.Config {
	cfg := simulator.DefaultConfig()
	cfg.Model = "llmprobe-reference"
	cfg.Seed = 7
	cfg.TTFTJitter = simulator.Jitter{Distribution: simulator.JitterLognormal, Stddev: model.Duration(15 * time.Millisecond)}
	cfg.ITLJitter = simulator.Jitter{Distribution: simulator.JitterLognormal, Stddev: model.Duration(3 * time.Millisecond)}
	return cfg
}

// TestTruthEndpointReadsTheStamps checks the ground truth's own reading: one
// streamed request of 8 tokens against a jitter-free model (TTFT 20 ms, ITL
// 5 ms) gives one request of 7 gaps and as many text events as the client
// read tokens, with times no shorter than the model's (the endpoint never
// emits early; lateness on a busy machine only adds).
func TestTruthEndpointReadsTheStamps(t *testing.T) {
	cfg := simulator.DefaultConfig()
	cfg.TTFT = model.Duration(20 * time.Millisecond)
	cfg.ITL = model.Duration(5 * time.Millisecond)
	e := startTruthEndpoint(t, cfg)

	before := time.Now()
	body := `{"model":"` + cfg.Model + `","messages":[{"role":"user","content":"hello there"}],"stream":true,"max_tokens":8,"stream_options":{"include_usage":true}}`
	resp, err := http.Post("http://"+e.addr+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	after := time.Now()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP %d, %v: %s", resp.StatusCode, err, stream)
	}
	if n := strings.Count(string(stream), `"content":"tok `); n != 8 {
		t.Fatalf("the stream carried %d tokens, want 8:\n%s", n, stream)
	}

	tr := e.truth(before, after)
	if tr.requests != 1 || len(tr.itl) != 7 {
		t.Fatalf("truth has %d requests and %d gaps, want 1 and 7", tr.requests, len(tr.itl))
	}
	const slack = 50 * time.Millisecond // lateness a busy 2-core machine may add
	within := func(what string, got float64, least time.Duration) {
		if got < least.Seconds() || got > (least+slack).Seconds() {
			t.Errorf("%s = %.4fs, want %s to %s", what, got, least, least+slack)
		}
	}
	within("TTFT", tr.ttft[0], 20*time.Millisecond)
	within("e2e", tr.e2e[0], 20*time.Millisecond+7*5*time.Millisecond)
	// Events are due on a fixed schedule from the first token, so one late
	// event shortens the next gap: only their sum has a floor, the schedule
	// less the first token's own lateness.
	sum := 0.0
	for i, g := range tr.itl {
		sum += g
		if g < 0 || g > (5*time.Millisecond+slack).Seconds() {
			t.Errorf("gap %d = %.4fs, want 0 to %s", i, g, 5*time.Millisecond+slack)
		}
	}
	if floor := 0.035 - (tr.ttft[0] - 0.020); sum < floor {
		t.Errorf("the gaps add up to %.4fs, under the schedule's %.4fs", sum, floor)
	}
	if want := (tr.e2e[0] - tr.ttft[0]) / 7; math.Abs(tr.tpot[0]-want) > 1e-9 {
		t.Errorf("TPOT = %.6fs, want (e2e - TTFT) / 7 = %.6fs", tr.tpot[0], want)
	}
	if got := e.truth(after, after.Add(time.Hour)); got.requests != 0 {
		t.Errorf("a window after the request holds %d requests", got.requests)
	}
}
