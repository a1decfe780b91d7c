package main

// The naive client: what a plain, single-process Go load client looks like,
// measured beside llmprobe so that "CPU per 1,000 tokens" has a yardstick
// from the same run, the same endpoint and the same machine (issue 11: the
// in-process daemon must cost no more than this, and the worker mode at
// most 1.2× the in-process one).
//
// It is a hidden subcommand of the benchmark's own binary
// (`accuracy naive-client -url … -rate …`), so that the benchmark starts it
// with the same `start` helper as the daemon (its own process group, taskset
// with -client-cpus) and measures its CPU from /proc exactly as the daemon's.
//
// It does this, and only this, on purpose — no tuning beyond what any sane
// client does:
//
//   - net/http: one http.Client over a clone of http.DefaultTransport with
//     MaxIdleConnsPerHost large, so connections are reused (HTTP/1.1
//     keep-alive);
//   - open loop: the intended send times are a Poisson (exponential gaps) or
//     constant sequence drawn from -seed; the scheduling loop sleeps until
//     each one and starts one goroutine per request, with no in-flight cap;
//   - each request is a POST {url}/v1/chat/completions of a json.Marshal'ed
//     {"model", "messages": [{"role": "user", "content": prompt}],
//     "max_tokens", "stream": true, "stream_options": {"include_usage": true}}
//     where the prompt is -input-tokens words. include_usage is what
//     llmprobe asks for too, so both clients are sent the same stream
//     (64 text chunks, one usage chunk, [DONE]); -include-usage=false drops it;
//   - the SSE body is read with bufio.Reader.ReadSlice('\n'); every `data:`
//     line is stamped with time.Now() and json.Unmarshal'ed into a small
//     struct (choices[0].delta.content, usage.completion_tokens) until
//     `data: [DONE]`, then the body is read to EOF so that its connection
//     goes back to the pool. A chunk with non-empty content is a token (the
//     endpoint's first chunk, the role, has empty content and is not);
//   - TTFT (first content chunk minus the send time) and every inter-token
//     gap go into a mutex-protected fixed-bucket histogram; requests, tokens
//     and errors are counted;
//   - on SIGTERM/SIGINT, or when -duration is up (a safety bound), it
//     cancels what is in flight, prints one summary line to stderr and exits 0.
//
// Requests still in flight at the end are abandoned, not counted: the
// summary's tokens are those of completed requests.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// naiveCommand is the hidden subcommand: os.Args[1] of the benchmark binary.
const naiveCommand = "naive-client"

type naiveOptions struct {
	url          string
	model        string
	rate         float64
	seed         uint64
	inputTokens  int
	outputTokens int
	arrival      string
	duration     time.Duration
	includeUsage bool
}

func parseNaiveFlags(args []string) (*naiveOptions, error) {
	o := &naiveOptions{}
	fs := flag.NewFlagSet(naiveCommand, flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "Endpoint base URL (POST {url}/v1/chat/completions).")
	fs.StringVar(&o.model, "model", "bench", "Model name sent in every request.")
	fs.Float64Var(&o.rate, "rate", 100, "Open-loop request rate (req/s).")
	fs.Uint64Var(&o.seed, "seed", 1, "Seed of the arrival schedule.")
	fs.IntVar(&o.inputTokens, "input-tokens", 16, "Words in the prompt.")
	fs.IntVar(&o.outputTokens, "output-tokens", 64, "max_tokens of every request.")
	fs.StringVar(&o.arrival, "arrival", "poisson", "Arrival process: poisson or constant.")
	fs.DurationVar(&o.duration, "duration", time.Minute, "Safety bound: exit (0, with the summary) after this long.")
	fs.BoolVar(&o.includeUsage, "include-usage", true, "Ask for the usage chunk (stream_options.include_usage), as llmprobe does.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case o.url == "":
		return nil, errors.New("-url is required")
	case !(o.rate > 0) || math.IsInf(o.rate, 0):
		return nil, errors.New("-rate must be > 0")
	case o.arrival != "poisson" && o.arrival != "constant":
		return nil, errors.New("-arrival must be poisson or constant")
	case o.inputTokens < 1 || o.outputTokens < 1:
		return nil, errors.New("-input-tokens and -output-tokens must be >= 1")
	case o.duration <= 0:
		return nil, errors.New("-duration must be > 0")
	}
	o.url = strings.TrimSuffix(o.url, "/")
	return o, nil
}

// naiveMain is the subcommand's main; args follow "naive-client". It
// returns the exit status.
func naiveMain(args []string) int {
	o, err := parseNaiveFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, naiveCommand+":", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	st := runNaive(ctx, o)
	fmt.Fprintln(os.Stderr, st.summary())
	return 0
}

// naiveStats is what the client counted, for the summary line.
type naiveStats struct {
	Requests    int64 // completed: [DONE] read
	Errors      int64 // failed before the end (not counting those abandoned at exit)
	Tokens      int64 // content chunks of completed requests
	UsageTokens int64 // usage.completion_tokens of completed requests
	Abandoned   int64 // in flight at exit, cancelled
	TTFT, ITL   *fixedHist
}

func (s *naiveStats) summary() string {
	return fmt.Sprintf("%s: requests=%d errors=%d tokens=%d usage_tokens=%d abandoned=%d ttft_p50_ms=%.3f ttft_p99_ms=%.3f itl_p50_ms=%.3f itl_p99_ms=%.3f",
		naiveCommand, s.Requests, s.Errors, s.Tokens, s.UsageTokens, s.Abandoned,
		s.TTFT.Quantile(0.5)*1000, s.TTFT.Quantile(0.99)*1000, s.ITL.Quantile(0.5)*1000, s.ITL.Quantile(0.99)*1000)
}

// parseNaiveSummary reads the counters back from a log holding the
// summary line (the last one wins).
func parseNaiveSummary(log string) (map[string]float64, bool) {
	i := strings.LastIndex(log, naiveCommand+": requests=")
	if i < 0 {
		return nil, false
	}
	line, _, _ := strings.Cut(log[i+len(naiveCommand)+2:], "\n")
	out := map[string]float64{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		out[k] = x
	}
	return out, true
}

// runNaive sends until ctx ends, then cancels what is in flight and returns
// the counts.
func runNaive(ctx context.Context, o *naiveOptions) *naiveStats {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // no overall limit
	tr.MaxIdleConnsPerHost = 100000
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()

	c := &naiveClient{o: o, client: client, url: o.url + "/v1/chat/completions",
		prompt: strings.TrimSpace(strings.Repeat("word ", o.inputTokens)),
		stats:  &naiveStats{TTFT: newFixedHist(), ITL: newFixedHist()}}

	reqCtx, cancelReqs := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(o.seed, 0x9e3779b97f4a7c15))
	mean := 1 / o.rate
	next := time.Now()
	for {
		gap := mean
		if o.arrival == "poisson" {
			gap = rng.ExpFloat64() * mean
		}
		next = next.Add(time.Duration(gap * float64(time.Second)))
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			cancelReqs()
			wg.Wait()
			return c.stats
		case <-t.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.do(reqCtx)
		}()
	}
}

type naiveClient struct {
	o      *naiveOptions
	client *http.Client
	url    string
	prompt string

	mu    sync.Mutex
	stats *naiveStats
}

type naiveMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type naiveRequest struct {
	Model         string         `json:"model"`
	Messages      []naiveMessage `json:"messages"`
	MaxTokens     int            `json:"max_tokens"`
	Stream        bool           `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
}

type naiveChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
}

var dataPrefix = []byte("data:")

// do sends one request and reads its stream to the end.
func (c *naiveClient) do(ctx context.Context) {
	req := naiveRequest{Model: c.o.model, Messages: []naiveMessage{{Role: "user", Content: c.prompt}},
		MaxTokens: c.o.outputTokens, Stream: true}
	if c.o.includeUsage {
		req.StreamOptions = &struct {
			IncludeUsage bool `json:"include_usage"`
		}{true}
	}
	body, err := json.Marshal(req)
	if err != nil {
		c.fail(ctx)
		return
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		c.fail(ctx)
		return
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")

	sent := time.Now()
	resp, err := c.client.Do(hreq)
	if err != nil {
		c.fail(ctx)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		c.fail(ctx)
		return
	}

	var ttft time.Duration
	var gaps []time.Duration
	var tokens, usage int64
	var prev time.Time
	done := false
	br := bufio.NewReader(resp.Body)
	var long []byte // a line longer than the reader's buffer
	for !done {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if err != nil {
			break
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if !bytes.HasPrefix(line, dataPrefix) {
			continue
		}
		now := time.Now()
		data := bytes.TrimSpace(line[len(dataPrefix):])
		if string(data) == "[DONE]" {
			done = true
			break
		}
		var ch naiveChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			break
		}
		if ch.Usage != nil {
			usage = ch.Usage.CompletionTokens
		}
		if len(ch.Choices) == 0 || ch.Choices[0].Delta.Content == "" {
			continue
		}
		if tokens == 0 {
			ttft = now.Sub(sent)
		} else {
			gaps = append(gaps, now.Sub(prev))
		}
		prev = now
		tokens++
	}
	if !done || tokens == 0 {
		c.fail(ctx)
		return
	}
	// Read to EOF (the chunked body's terminator after [DONE]): a body
	// closed early takes its connection with it instead of returning it to
	// the idle pool.
	io.Copy(io.Discard, br)
	c.mu.Lock()
	c.stats.Requests++
	c.stats.Tokens += tokens
	c.stats.UsageTokens += usage
	c.mu.Unlock()
	c.stats.TTFT.Observe(ttft.Seconds())
	for _, g := range gaps {
		c.stats.ITL.Observe(g.Seconds())
	}
}

// fail counts an error, or an abandoned request when the client is
// shutting down.
func (c *naiveClient) fail(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil {
		c.stats.Abandoned++
	} else {
		c.stats.Errors++
	}
}

// fixedHist is a mutex-protected histogram with fixed logarithmic buckets
// (2% wide, 1 µs to ~100 s): what a plain client keeps for its quantiles.
type fixedHist struct {
	mu     sync.Mutex
	counts []uint64 // counts[i]: values ≤ histBounds[i]; the last one is everything above
	total  uint64
}

var histBounds = func() []float64 {
	var b []float64
	for v := 1e-6; v < 100; v *= 1.02 {
		b = append(b, v)
	}
	return b
}()

func newFixedHist() *fixedHist { return &fixedHist{counts: make([]uint64, len(histBounds)+1)} }

func (h *fixedHist) Observe(v float64) {
	i := sort.SearchFloat64s(histBounds, v)
	h.mu.Lock()
	h.counts[i]++
	h.total++
	h.mu.Unlock()
}

func (h *fixedHist) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// Quantile is the upper bound of the bucket holding rank ⌈q·n⌉; NaN when
// empty, +Inf above the last bound.
func (h *fixedHist) Quantile(q float64) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var cum uint64
	for i, n := range h.counts {
		if cum += n; cum >= rank {
			if i == len(histBounds) {
				return math.Inf(1)
			}
			return histBounds[i]
		}
	}
	return math.Inf(1)
}
