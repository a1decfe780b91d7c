package main

import (
	"bytes"
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/simulator"
)

// naiveHelperEnv makes the test binary the naive client, as the benchmark's
// binary is when it re-executes itself: the subprocess tests below run the
// real subcommand, signals and exit status included.
const naiveHelperEnv = "LLMPROBE_ACCURACY_NAIVE_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(naiveHelperEnv) == "1" && len(os.Args) > 1 && os.Args[1] == naiveCommand {
		os.Exit(naiveMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// naiveEndpoint serves the reference endpoint in-process, fast (TTFT 5 ms,
// ITL 1 ms), and counts the TCP connections clients open to it.
func naiveEndpoint(t *testing.T) (url string, conns *atomic.Int64) {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Model = "bench"
	cfg.TTFT = model.Duration(5 * time.Millisecond)
	cfg.ITL = model.Duration(time.Millisecond)
	cfg.MaxConcurrency = 10000
	s, err := simulator.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int64{}
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() { s.Close(); srv.Close() })
	return srv.URL, conns
}

func naiveOpts(url string) *naiveOptions {
	return &naiveOptions{url: url, model: "bench", rate: 40, seed: 1, inputTokens: 16, outputTokens: 64,
		arrival: "constant", duration: time.Minute, includeUsage: true}
}

// The client reads the simulator's stream as it is: 64 content chunks for
// 64 tokens (the role chunk, with empty content, is not one), the usage
// chunk's count, [DONE]; every TTFT and gap is recorded, and connections
// are reused.
func TestNaiveClientStreamsAgainstSimulator(t *testing.T) {
	url, conns := naiveEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	st := runNaive(ctx, naiveOpts(url))
	if st.Requests < 10 || st.Errors != 0 {
		t.Fatalf("requests %d, errors %d (abandoned %d): want ≥ 10 and none", st.Requests, st.Errors, st.Abandoned)
	}
	if st.Tokens != 64*st.Requests || st.UsageTokens != 64*st.Requests {
		t.Errorf("tokens %d, usage tokens %d for %d requests: want 64 each", st.Tokens, st.UsageTokens, st.Requests)
	}
	if n := st.TTFT.Count(); n != uint64(st.Requests) {
		t.Errorf("%d TTFTs for %d requests", n, st.Requests)
	}
	if n := st.ITL.Count(); n != 63*uint64(st.Requests) {
		t.Errorf("%d gaps for %d requests: want 63 each", n, st.Requests)
	}
	if p := st.TTFT.Quantile(0.5); !(p >= 0.005) {
		t.Errorf("TTFT p50 %g s: below the endpoint's 5 ms", p)
	}
	if n := conns.Load(); n*2 > st.Requests+st.Abandoned {
		t.Errorf("%d connections for %d requests: keep-alive connections are not reused", n, st.Requests+st.Abandoned)
	}
}

// What the benchmark takes from the endpoint for a naive run: one lateness
// observation per streamed token event and one ended stream per request.
func TestEndpointCountsWhatTheNaiveRunReads(t *testing.T) {
	url, _ := naiveEndpoint(t)
	o := naiveOpts(url)
	c := &naiveClient{o: o, client: &http.Client{}, url: url + "/v1/chat/completions", prompt: "a b c",
		stats: &naiveStats{TTFT: newFixedHist(), ITL: newFixedHist()}}
	for range 3 {
		c.do(context.Background())
	}
	if c.stats.Requests != 3 || c.stats.Tokens != 3*64 {
		t.Fatalf("requests %d, tokens %d", c.stats.Requests, c.stats.Tokens)
	}
	s, err := scrape(context.Background(), url+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Hists[endpointEvents]; h == nil || h.Count != 3*64 {
		t.Errorf("%s: %+v, want a count of 192 (one per token event)", endpointEvents, h)
	}
	if h := s.Hists[endpointRequests]; h == nil || h.Count != 3 {
		t.Errorf("%s: %+v, want a count of 3", endpointRequests, h)
	}
}

// The subcommand, run as the benchmark runs it (a process of its own),
// stops on SIGTERM and on -duration alike: exit 0 and one summary line.
func TestNaiveClientSubcommandExitsCleanly(t *testing.T) {
	url, _ := naiveEndpoint(t)
	for _, tc := range []struct {
		name     string
		duration string
		signal   bool
	}{{"SIGTERM", "1m", true}, {"duration", "800ms", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], naiveCommand, "-url", url, "-model", "bench", "-rate", "40",
				"-arrival", "constant", "-seed", "3", "-duration", tc.duration)
			cmd.Env = append(os.Environ(), naiveHelperEnv+"=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if tc.signal {
				time.Sleep(800 * time.Millisecond)
				cmd.Process.Signal(syscall.SIGTERM)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, stderr.String())
				}
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running 20 s later:\n%s", stderr.String())
			}
			counts, ok := parseNaiveSummary(stderr.String())
			if !ok || strings.Count(stderr.String(), naiveCommand+": requests=") != 1 {
				t.Fatalf("want one summary line, got:\n%s", stderr.String())
			}
			if counts["requests"] < 1 || counts["errors"] != 0 || counts["tokens"] != 64*counts["requests"] {
				t.Errorf("summary %v: want requests, no error, 64 tokens each", counts)
			}
			for _, k := range []string{"ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms"} {
				if v, ok := counts[k]; !ok || !(v > 0) {
					t.Errorf("summary lacks %s (%v)", k, counts)
				}
			}
		})
	}
}

func TestParseNaiveFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-url", "http://x", "-rate", "0"}, {"-url", "http://x", "-arrival", "bursty"},
		{"-url", "http://x", "-output-tokens", "0"}, {"-url", "http://x", "-duration", "0s"}} {
		if _, err := parseNaiveFlags(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err := parseNaiveFlags([]string{"-url", "http://127.0.0.1:9/", "-rate", "300", "-seed", "2", "-arrival", "constant"})
	if err != nil || o.url != "http://127.0.0.1:9" || o.rate != 300 || o.seed != 2 || !o.includeUsage || o.outputTokens != 64 {
		t.Errorf("parsed %+v, %v", o, err)
	}
}

func TestFixedHistQuantiles(t *testing.T) {
	h := newFixedHist()
	if !math.IsNaN(h.Quantile(0.5)) {
		t.Error("empty histogram: want NaN")
	}
	for i := 1; i <= 1000; i++ {
		h.Observe(float64(i) * 1e-4) // 0.1 ms … 100 ms
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 0.05}, {0.99, 0.099}} {
		if got := h.Quantile(c.q); got < c.want || got > c.want*1.021 {
			t.Errorf("p%g = %g, want the 2%% bucket above %g", c.q*100, got, c.want)
		}
	}
	h.Observe(1e4)
	if !math.IsInf(h.Quantile(1), 1) {
		t.Error("a value above the last bound: want +Inf at the top")
	}
}

// classic is a histogram of n observations, as a scrape of a counter-like
// family would give it.
func classic(n uint64) *Hist { return &Hist{Bounds: []float64{1}, Cum: []uint64{n}, Count: n} }

func TestMeasureNaiveFromEndpointAndProc(t *testing.T) {
	t0 := time.Unix(1000, 0)
	edge := func(at time.Duration, events, ended uint64, cpu, server float64) naiveEdge {
		return naiveEdge{
			endpoint: &Snapshot{At: t0.Add(at), Hists: map[string]*Hist{endpointEvents: classic(events), endpointRequests: classic(ended)}},
			client:   groupUsage{CPUSeconds: cpu, RSSBytes: 20 << 20, Procs: 1},
			server:   groupUsage{CPUSeconds: server},
		}
	}
	o, _ := parseFlags(nil)
	r, err := measureNaive(edge(0, 6400, 100, 1, 5), edge(2*time.Second, 6400+64000, 1100, 3, 6), 500, 0, o)
	if err != nil {
		t.Fatal(err)
	}
	// 2 CPU seconds for 64,000 tokens; 1,000 requests in 2 s.
	if r.CPUPer1kTokensMs != 31.25 || r.OutputTokens != 64000 || r.ClientCores != 1 || r.AchievedRate != 500 || r.RateRatio != 1 ||
		r.EndpointCores != 0.5 || r.ClientRSSBytes != 20<<20 || r.Seed != 1 || !math.IsNaN(float64(r.ClientErrors)) {
		t.Errorf("%+v", r)
	}
}

// fakeNaive is a naive run with a given CPU per 1,000 tokens.
func fakeNaive(rate float64, rep int, cpu float64) NaiveResult {
	return NaiveResult{RequestedRate: rate, Repeat: rep, Seed: rep + 1, AchievedRate: Num(rate), CPUPer1kTokensMs: Num(cpu)}
}

// The CPU table comes first: per rate, every (mode, source) median, the
// naive median and the ratios of the medians, kernel's when it was run.
func TestCPUSideBySideRendersRatios(t *testing.T) {
	o, err := parseFlags([]string{"-rates", "100,300", "-modes", "0,2", "-repeat", "2"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{}
	cpu := map[int]map[string]float64{0: {"kernel": 20, "user": 22}, 2: {"kernel": 26, "user": 30}}
	for _, rate := range o.rates {
		scale := 100 / rate // 300 req/s costs a third
		for r := 0; r < 2; r++ {
			for _, mode := range o.modes {
				for _, src := range o.timestamps {
					run := fakeRun(src, rate, r, 0.0002, 0.0001)
					run.Workers = mode
					// Two repeats at ±1 ms: the median is the figure.
					run.CPUPer1kTokensMs = Num(cpu[mode][src]*scale + float64(2*r-1))
					rep.Runs = append(rep.Runs, run)
				}
			}
			rep.Naive = append(rep.Naive, fakeNaive(rate, r, 25*scale+float64(2*r-1)))
		}
	}
	rep.Summarize(o)
	if len(rep.CPUSideBySide) != 2 {
		t.Fatalf("CPU side by side: %d rates, want 2", len(rep.CPUSideBySide))
	}
	c := rep.CPUSideBySide[0]
	if c.Rate != 100 || c.RatioSource != "kernel" || len(c.Cells) != 4 || c.NaiveRuns != 2 || c.NaiveCPUPer1kTokensMs != 25 {
		t.Fatalf("at 100 req/s: %+v", c)
	}
	if math.Abs(float64(c.InProcessOverNaive)-0.8) > 1e-12 || len(c.WorkersOverInProcess) != 1 ||
		c.WorkersOverInProcess[0].Workers != 2 || math.Abs(float64(c.WorkersOverInProcess[0].Ratio)-1.3) > 1e-12 {
		t.Errorf("ratios at 100 req/s: in-process/naive %v, workers %+v; want 0.8 and 2: 1.3", c.InProcessOverNaive, c.WorkersOverInProcess)
	}
	md := rep.Markdown(o)
	for _, want := range []string{
		"| req/s | in-process kernel | in-process user | workers=2 kernel | workers=2 user | naive (runs) | in-process (kernel) / naive | workers=2 (kernel) / in-process (kernel) |",
		"| 100 | 20.0 | 22.0 | 26.0 | 30.0 | 25.0 (2) | 0.80 | 1.30 |",
		"| 300 | 6.7 | 7.3 | 8.7 | 10.0 | 8.3 (2) | 0.80 | 1.30 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	first, ladder := strings.Index(md, "### Client CPU per 1,000 tokens, side by side"), strings.Index(md, "### in-process")
	if first < 0 || ladder < 0 || first > ladder {
		t.Errorf("the CPU table must come first (at %d, the first mode at %d)", first, ladder)
	}

	// Without kernel runs the first source stands in; without naive runs
	// or an in-process mode the ratios are undefined, not zero.
	o, _ = parseFlags([]string{"-rates", "100", "-modes", "2", "-repeat", "1", "-timestamps", "user,auto"})
	rep = &Report{}
	for _, src := range o.timestamps {
		run := fakeRun(src, 100, 0, 0.0002, 0.0001)
		run.Workers = 2
		rep.Runs = append(rep.Runs, run)
	}
	rep.Summarize(o)
	c = rep.CPUSideBySide[0]
	if c.RatioSource != "user" || !math.IsNaN(float64(c.InProcessOverNaive)) || !math.IsNaN(float64(c.WorkersOverInProcess[0].Ratio)) {
		t.Errorf("no kernel, no naive, no in-process: %+v", c)
	}
	if md := rep.Markdown(o); !strings.Contains(md, "| 100 | 20.0 | 20.0 | – | – | – |") || !strings.Contains(md, "workers=2 (user) / in-process (user)") {
		t.Errorf("markdown:\n%s", md)
	}
}

// A naive client that cannot start, or that exits before its window
// closes, fails the run as a daemon would, and leaves no child tracked.
func TestNaiveRunFailsOnStartAndEarlyExit(t *testing.T) {
	o, err := parseFlags([]string{"-warmup", "100ms", "-duration", "100ms"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ self, want string }{
		{"/nonexistent/accuracy", "starting naive"},
		{"/bin/false", "naive client exited during the run"},
	} {
		b := &bench{o: o, dir: t.TempDir(), self: tc.self}
		if _, err := b.naiveRun(context.Background(), nil, "127.0.0.1:9", 100, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.self, err, tc.want)
		}
		procs.Lock()
		n := len(procs.live)
		procs.Unlock()
		if n != 0 {
			t.Errorf("%s: %d children still tracked", tc.self, n)
		}
	}
}
