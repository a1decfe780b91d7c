package prober_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/simulator"
)

// TestAccuracyAgainstGroundTruth measures the reference endpoint, which
// stamps every event with its emit time and its own TTFT, and checks the
// prober's timings against those stamps at light load. What it asserts holds
// on a busy machine: causality at every request (nothing is received before
// it was emitted, and TTFT from our send is never shorter than the
// endpoint's from its arrival: a clock read too late at the send or too
// early at the receive breaks it), and a best case within 2 ms (a systematic
// error, such as a clock read after parsing or before dialing, shows at every
// request). How close the typical and tail figures are is measured by the
// accuracy benchmark (bench/accuracy), under controlled conditions.
func TestAccuracyAgainstGroundTruth(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := simulator.DefaultConfig()
	cfg.Model = "m"
	cfg.TTFT = model.Duration(30 * time.Millisecond)
	cfg.ITL = model.Duration(5 * time.Millisecond)
	url := serve(t, cfg)

	for _, api := range config.APIs {
		t.Run(string(api), func(t *testing.T) {
			target := &config.Target{Name: "ref", URL: url, API: api, Model: "m", HTTPClientConfig: config.DefaultTarget.HTTPClientConfig}
			c, err := prober.NewClient(target, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var ttftErr, itlErr []time.Duration
			var res prober.Result
			// Light load: one request at a time; the first only opens the
			// keep-alive connection (dialing is not the endpoint's TTFT).
			for i := -1; i < 40; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c.Do(ctx, prober.Request{Prompt: "measure me please", MaxTokens: 16, Stream: true}, &res)
				cancel()
				if i < 0 {
					continue
				}
				if res.Outcome != prober.OutcomeSuccess || !res.GroundTruth || res.ServerTTFT < 0 {
					t.Fatalf("request %d: outcome %s, ground truth %v, server TTFT %v", i, res.Outcome, res.GroundTruth, res.ServerTTFT)
				}
				// Events one read delivered together are one chunk of
				// their tokens (Coalesced counts them): 16 one-token events
				// make at most 15 gaps.
				gapTokens := 0
				for _, g := range res.Gaps {
					gapTokens += int(g.Tokens)
				}
				if len(res.EmitLags) != 16 || res.CountedTokens != 16 || gapTokens > 15 || len(res.Gaps) > 15 ||
					res.Coalesced == 0 && len(res.Gaps) != 15 {
					t.Fatalf("request %d: %d emit lags, %d counted, %d gaps of %d tokens, %d coalesced, for 16 tokens",
						i, len(res.EmitLags), res.CountedTokens, len(res.Gaps), gapTokens, res.Coalesced)
				}
				// TTFT counts from our send, the endpoint's from its
				// arrival (its handler's start, once it has the headers):
				// the difference is transit and our reading, and never
				// negative once the headers' lead over the send instant
				// (the write of the body's last byte) is added back.
				if res.TTFT+res.SendSpan < res.ServerTTFT {
					t.Errorf("request %d: TTFT %v (+ send span %v) shorter than the endpoint's own %v", i, res.TTFT, res.SendSpan, res.ServerTTFT)
				}
				ttftErr = append(ttftErr, abs(res.TTFT-res.ServerTTFT))
				// Receive minus emit, both wall clocks of this machine: never
				// negative beyond the clocks' granularity.
				for j, lag := range res.EmitLags {
					if lag < -100*time.Microsecond {
						t.Errorf("request %d: event %d received %v before it was emitted", i, j, -lag)
					}
				}
				// Between consecutive events, measured minus true gap is
				// the change in receive lag between them.
				for j := range len(res.EmitLags) - 1 {
					itlErr = append(itlErr, abs(res.EmitLags[j+1]-res.EmitLags[j]))
				}
			}
			for _, c := range []struct {
				name string
				errs []time.Duration
			}{{"TTFT", ttftErr}, {"ITL", itlErr}} {
				if best := quantile(c.errs, 0); best > 2*time.Millisecond {
					t.Errorf("%s error %v even at best: a systematic error (p50 %v)", c.name, best, quantile(c.errs, 0.5))
				}
			}
			t.Logf("%s: TTFT error p50 %v max %v; ITL error p50 %v max %v", api, quantile(ttftErr, 0.5), maxOf(ttftErr), quantile(itlErr, 0.5), maxOf(itlErr))
		})
	}
}

// serve starts the reference endpoint on loopback and returns its URL.
func serve(t *testing.T, cfg simulator.Config) string {
	t.Helper()
	addr, stop, err := simulator.Serve(context.Background(), "127.0.0.1:0", cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return "http://" + addr
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

// A server that sends k tokens per event (speculative decoding) and usage in
// every chunk: each gap is spread over exactly the tokens its chunk brought.
// Without per-chunk usage the counts cannot be known (10 tokens in 4 chunks)
// and the mismatch is flagged instead.
func TestContinuousUsageSpreadsMultiTokenChunks(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := simulator.DefaultConfig()
	cfg.Model, cfg.TokensPerEvent = "m", 3
	cfg.TTFT, cfg.ITL = model.Duration(5*time.Millisecond), model.Duration(time.Millisecond)
	url := serve(t, cfg)
	for _, continuous := range []bool{true, false} {
		target := &config.Target{Name: "ref", URL: url, API: config.APIOpenAIChat, Model: "m",
			HTTPClientConfig: config.DefaultTarget.HTTPClientConfig, ContinuousUsageStats: continuous}
		c, err := prober.NewClient(target, logger)
		if err != nil {
			t.Fatal(err)
		}
		var res prober.Result
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.Do(ctx, prober.Request{Prompt: "a b c", MaxTokens: 10, Stream: true}, &res)
		cancel()
		c.Close()
		var tokens []int32
		for _, g := range res.Gaps {
			tokens = append(tokens, g.Tokens)
		}
		if res.Outcome != prober.OutcomeSuccess || res.OutputTokens != 10 {
			t.Fatalf("continuous=%v: outcome %s, %d output tokens", continuous, res.Outcome, res.OutputTokens)
		}
		switch {
		case continuous && (fmt.Sprint(tokens) != "[3 3 3]" || res.UsageMismatch):
			t.Errorf("with continuous usage: gap tokens %v, mismatch %v; want [3 3 3], false", tokens, res.UsageMismatch)
		case !continuous && !res.UsageMismatch:
			t.Errorf("without per-chunk usage, 10 tokens in 4 chunks must be flagged as a mismatch (gap tokens %v)", tokens)
		}
	}
}
