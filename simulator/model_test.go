package simulator

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// groundTruth runs n concurrent-in-batches streamed chat requests and
// returns the server's own TTFTs and the gaps between its text-event emit
// stamps (so client scheduling noise stays out of the statistics).
func groundTruth(t *testing.T, url string, n, parallel, maxTokens int, prompt string) (ttfts, gaps, queues []time.Duration) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	body := fmt.Sprintf(`{"messages":[{"role":"user","content":%q}],"stream":true,"max_tokens":%d}`, prompt, maxTokens)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			evs, err := streamRequest(t, url+"/v1/chat/completions", body, nil)
			if err != nil {
				t.Error(err)
				return
			}
			sum := checkStream(t, evs, apiChat, false)
			mu.Lock()
			defer mu.Unlock()
			ttfts = append(ttfts, time.Duration(sum.ttftNs))
			queues = append(queues, time.Duration(sum.queueNs))
			for i := 1; i < len(sum.textEvents); i++ {
				gaps = append(gaps, time.Duration(sum.chunks[sum.textEvents[i]].EmitNs-sum.chunks[sum.textEvents[i-1]].EmitNs))
			}
		}()
	}
	wg.Wait()
	return ttfts, gaps, queues
}

// within reports whether got is in [want-lo, want+hi].
func within(got, want, lo, hi time.Duration) bool { return got >= want-lo && got <= want+hi }

func TestLatencyStatistics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TTFT = ms(20)
	cfg.TTFTJitter = Jitter{Distribution: JitterNormal, Stddev: ms(4)}
	cfg.ITL = ms(4)
	cfg.ITLJitter = Jitter{Distribution: JitterNormal, Stddev: ms(1)}
	cfg.PrefillPerToken = ms(0.5)
	s, ts := newTestServer(t, cfg)

	// The schedule the serving path computed, per request: exact model
	// output, free of this (shared, loaded) machine's timer noise.
	type trace struct {
		admitted time.Time
		sched    []time.Time
	}
	var mu sync.Mutex
	traces := map[uint64]*trace{}
	s.traceEmit = func(seq uint64, admitted, sched, _ time.Time) {
		mu.Lock()
		defer mu.Unlock()
		tr := traces[seq]
		if tr == nil {
			tr = &trace{admitted: admitted}
			traces[seq] = tr
		}
		tr.sched = append(tr.sched, sched)
	}

	const n, tokens = 200, 25
	// 10 words of prompt add 5ms of prefill.
	ttfts, gaps, _ := groundTruth(t, ts.URL, n, 25, tokens, "w w w w w w w w w w")
	if len(ttfts) != n || len(gaps) != n*(tokens-1) || len(traces) != n {
		t.Fatalf("got %d ttfts, %d gaps, %d traces", len(ttfts), len(gaps), len(traces))
	}
	var schedTTFT, schedGaps []time.Duration
	for _, tr := range traces {
		schedTTFT = append(schedTTFT, tr.sched[0].Sub(tr.admitted))
		for i := 1; i < len(tr.sched); i++ {
			schedGaps = append(schedGaps, tr.sched[i].Sub(tr.sched[i-1]))
		}
	}

	// Expected: mean as configured, p99 = mean + 2.326σ; tolerances are a
	// few standard errors of each estimate.
	wantTTFT := 25 * time.Millisecond
	wantTTFT99 := wantTTFT + time.Duration(2.326*4*float64(time.Millisecond))
	wantITL99 := 4*time.Millisecond + time.Duration(2.326*float64(time.Millisecond))
	check := func(what string, got, want, lo, hi time.Duration) {
		t.Helper()
		if !within(got, want, lo, hi) {
			t.Errorf("%s %v, want %v (-%v/+%v)", what, got, want, lo, hi)
		}
	}
	check("scheduled TTFT mean", mean(schedTTFT), wantTTFT, time.Millisecond, time.Millisecond)
	check("scheduled TTFT p99", percentile(schedTTFT, 0.99), wantTTFT99, 3*time.Millisecond, 3*time.Millisecond)
	check("scheduled ITL mean", mean(schedGaps), 4*time.Millisecond, 50*time.Microsecond, 50*time.Microsecond)
	check("scheduled ITL p99", percentile(schedGaps, 0.99), wantITL99, 300*time.Microsecond, 300*time.Microsecond)

	// What the stamps say actually happened. Absolute scheduling keeps the
	// mean gap exact however late single events are; the server's TTFT
	// adds queue, request parsing and timer lateness, which only delay,
	// and by more when other processes starve this one.
	check("emitted ITL mean", mean(gaps), 4*time.Millisecond, 500*time.Microsecond, 500*time.Microsecond)
	check("server TTFT mean", mean(ttfts), wantTTFT, 500*time.Microsecond, 15*time.Millisecond)
	t.Logf("scheduled: TTFT mean %v p99 %v, ITL mean %v p99 %v; emitted: TTFT mean %v p99 %v, ITL mean %v p99 %v",
		mean(schedTTFT), percentile(schedTTFT, 0.99), mean(schedGaps), percentile(schedGaps, 0.99),
		mean(ttfts), percentile(ttfts, 0.99), mean(gaps), percentile(gaps, 0.99))
}

func TestSamplerMoments(t *testing.T) {
	// The distributions themselves, without timers: mean and stddev as
	// configured.
	m := newLatencyModel(&Config{Seed: 7})
	r := m.rng(1)
	for _, dist := range []JitterDistribution{JitterUniform, JitterNormal, JitterLognormal} {
		s := newSampler(10*time.Millisecond, Jitter{Distribution: dist, Stddev: ms(2)})
		const n = 200000
		var sum, sq float64
		for range n {
			v := float64(s.draw(r)) / 1e6
			sum += v
			sq += v * v
		}
		mu := sum / n
		sd := math.Sqrt(sq/n - mu*mu)
		if math.Abs(mu-10) > 0.05 || math.Abs(sd-2) > 0.05 {
			t.Errorf("%s: mean %.3fms stddev %.3fms, want 10 and 2", dist, mu, sd)
		}
	}
	none := newSampler(10*time.Millisecond, Jitter{})
	if none.draw(r) != 10*time.Millisecond {
		t.Errorf("no jitter must give the mean exactly")
	}
}

func TestQueueingUnderOverload(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TTFT = ms(60)
	cfg.ITL = ms(2)
	cfg.MaxConcurrency = 2
	s, ts := newTestServer(t, cfg)
	const service = 78 * time.Millisecond // 60ms + 9 × 2ms

	// 8 simultaneous requests of 78ms service each on 2 slots: they are
	// admitted in 4 waves, 78ms apart (the first wave is long enough for
	// all 8 to have arrived, even on a loaded machine). The role chunk is
	// emitted at admission, so its stamp dates it regardless of when each
	// request happened to arrive.
	const n = 8
	type res struct {
		ttft, queue time.Duration
		admitNs     int64
	}
	out := make(chan res, n)
	var sawWaiting sync.Once
	waitingSeen := make(chan struct{})
	go func() {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.Get(ts.URL + "/metrics")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(b), `vllm:num_requests_waiting{model_name="llmprobe-sim"} 6`) &&
					strings.Contains(string(b), `vllm:num_requests_running{model_name="llmprobe-sim"} 2`) {
					sawWaiting.Do(func() { close(waitingSeen) })
					return
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for range n {
		go func() {
			evs, err := streamRequest(t, ts.URL+"/v1/chat/completions", chatBody(10, ""), nil)
			if err != nil {
				t.Error(err)
				out <- res{}
				return
			}
			sum := checkStream(t, evs, apiChat, false)
			out <- res{time.Duration(sum.ttftNs), time.Duration(sum.queueNs), sum.chunks[0].EmitNs}
		}()
	}
	var queues, admits []time.Duration
	for range n {
		r := <-out
		if r.ttft < r.queue+60*time.Millisecond {
			t.Errorf("TTFT %v must include the queue wait %v plus 60ms", r.ttft, r.queue)
		}
		queues = append(queues, r.queue)
		admits = append(admits, time.Duration(r.admitNs))
	}
	select {
	case <-waitingSeen:
	case <-time.After(3 * time.Second):
		t.Errorf("never saw 2 running and 6 waiting in /metrics")
	}
	// Two admissions per wave: a slot frees when its sequence ends, never
	// earlier; later is allowed (timers, a loaded machine).
	for w := 1; w < n/2; w++ {
		prev := percentile(admits, float64(2*w-1)/n)
		cur := percentile(admits, float64(2*w+1)/n)
		if gap := cur - prev; !within(gap, service, 500*time.Microsecond, 40*time.Millisecond) {
			t.Errorf("wave %d admitted %v after wave %d, want ≈ %v", w, gap, w-1, service)
		}
	}
	if waited := percentile(queues, 0.25); waited > 20*time.Millisecond { // ~0 when idle; a loaded machine delays the admission a little
		t.Errorf("the first wave waited %v", waited)
	}
	if waited := percentile(queues, 0.75); waited < service-10*time.Millisecond {
		t.Errorf("later waves must wait; 6th shortest wait %v (all %v)", waited, queues)
	}
	if s.running.Load() != 0 {
		t.Errorf("running %d after all finished", s.running.Load())
	}
}

func TestBatchSlowdown(t *testing.T) {
	m := newLatencyModel(&Config{ITL: ms(10), BatchSlowdown: 1, MaxConcurrency: 4, TokensPerEvent: 1})
	r := m.rng(1)
	if g := m.eventGap(r, 1, 0); g != 10*time.Millisecond {
		t.Errorf("empty batch gap %v, want 10ms", g)
	}
	if g := m.eventGap(r, 1, 4); g != 20*time.Millisecond {
		t.Errorf("full batch gap %v, want 20ms (slowdown 1)", g)
	}
	if g := m.eventGap(r, 3, 2); g != 45*time.Millisecond {
		t.Errorf("3 tokens at half batch %v, want 45ms", g)
	}
}

func TestDeterminism(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TTFTJitter = Jitter{Distribution: JitterLognormal, Stddev: ms(10)}
	cfg.ITLJitter = Jitter{Distribution: JitterUniform, Stddev: ms(3)}
	cfg.Faults.Reset, cfg.Faults.RateLimit = 0.2, 0.2
	plan := func(seed int64) []time.Duration {
		c := cfg
		c.Seed = seed
		m := newLatencyModel(&c)
		var p []time.Duration
		for seq := uint64(1); seq <= 50; seq++ {
			r := m.rng(seq)
			p = append(p, time.Duration(m.pickFault(r)), m.firstTokenDelay(r, 7))
			for range 5 {
				p = append(p, m.eventGap(r, 1, 3))
			}
		}
		return p
	}
	a, b, c := plan(42), plan(42), plan(43)
	same := func(x, y []time.Duration) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Errorf("same seed, different plans")
	}
	if same(a, c) {
		t.Errorf("different seeds, same plans")
	}

	// End to end: the n-th request draws the same fault on two servers
	// with the same seed.
	statuses := func() string {
		c := fastConfig()
		c.Seed = 9
		c.Faults.RateLimit, c.Faults.ServerError = 0.3, 0.3
		_, ts := newTestServer(t, c)
		var sb strings.Builder
		for range 30 {
			resp := post(t, ts.URL+"/v1/completions", `{"prompt":"a","max_tokens":1}`, nil)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			fmt.Fprintf(&sb, "%d ", resp.StatusCode)
		}
		return sb.String()
	}
	s1, s2 := statuses(), statuses()
	if s1 != s2 {
		t.Errorf("fault sequence differs with the same seed:\n%s\n%s", s1, s2)
	}
	if !strings.Contains(s1, "200") || !strings.Contains(s1, "429") || !strings.Contains(s1, "500") {
		t.Errorf("30 requests at 30%%/30%% should show all three statuses: %s", s1)
	}
}
