package prober_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/simulator"
)

// TestFaultMatrixEveryAPI sends every fault the reference endpoint can
// inject, in every API it speaks, streamed and not, and checks the outcome
// each must yield: one classification for all four wire protocols.
func TestFaultMatrixEveryAPI(t *testing.T) {
	cfg := simulator.DefaultConfig()
	cfg.Model = "m"
	cfg.TTFT, cfg.ITL = model.Duration(2*time.Millisecond), model.Duration(time.Millisecond)
	cfg.Faults.StallDuration = model.Duration(5 * time.Second)
	cfg.Faults.DripInterval = model.Duration(50 * time.Microsecond)
	url := serve(t, cfg)

	type want struct{ stream, plain prober.Outcome }
	faults := map[string]want{
		"none":         {prober.OutcomeSuccess, prober.OutcomeSuccess},
		"rate_limit":   {prober.OutcomeHTTP429, prober.OutcomeHTTP429},
		"server_error": {prober.OutcomeHTTP5xx, prober.OutcomeHTTP5xx},
		"unavailable":  {prober.OutcomeHTTP5xx, prober.OutcomeHTTP5xx},
		// A reply written whole is reset before its headers: nothing came back.
		"reset":        {prober.OutcomeProtocolError, prober.OutcomeConnectError},
		"stall":        {prober.OutcomeTimeout, prober.OutcomeTimeout},
		"truncate":     {prober.OutcomeTruncated, prober.OutcomeTruncated},
		"malformed":    {prober.OutcomeProtocolError, prober.OutcomeProtocolError},
		"oversized":    {prober.OutcomeProtocolError, prober.OutcomeSuccess},
		"drip":         {prober.OutcomeSuccess, prober.OutcomeSuccess},
		"stream_error": {prober.OutcomeProtocolError, prober.OutcomeHTTP5xx},
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, api := range config.APIs {
		t.Run(string(api), func(t *testing.T) {
			t.Parallel()
			for fault, w := range faults {
				target := &config.Target{Name: "ref", URL: url, API: api, Model: "m", HTTPClientConfig: config.DefaultTarget.HTTPClientConfig,
					Headers: map[string]string{simulator.FaultHeader: fault}}
				c, err := prober.NewClient(target, logger)
				if err != nil {
					t.Fatal(err)
				}
				for _, stream := range []bool{true, false} {
					// The stall outlasts the timeout; a dripped reply (a byte
					// per pause, several kB in the typed APIs) must not.
					timeout := 2 * time.Second
					if fault == "drip" {
						timeout = 30 * time.Second
					}
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					var res prober.Result
					c.Do(ctx, prober.Request{Prompt: "a b c", MaxTokens: 8, Stream: stream}, &res)
					cancel()
					wantOutcome := w.plain
					if stream {
						wantOutcome = w.stream
					}
					if res.Outcome != wantOutcome {
						t.Errorf("%s stream=%v: outcome %v (status %d, %q), want %v", fault, stream, res.Outcome, res.Status, res.Detail, wantOutcome)
						continue
					}
					if res.Outcome == prober.OutcomeSuccess {
						if !res.GroundTruth || res.OutputTokens != 8 || res.InputTokens != 3 || res.UsageMismatch {
							t.Errorf("%s stream=%v: ground truth %v, tokens in/out %d/%d, mismatch %v", fault, stream, res.GroundTruth, res.InputTokens, res.OutputTokens, res.UsageMismatch)
						}
						// Events one read delivered together count as one
						// chunk of their tokens: 8 tokens either way.
						var gapTokens int32
						for _, g := range res.Gaps {
							gapTokens += g.Tokens
						}
						if stream && (len(res.EmitLags) != 8 || len(res.Gaps) == 0 || gapTokens > 7 || res.CountedTokens != 8 || res.TTFT+res.SendSpan < res.ServerTTFT) {
							t.Errorf("%s: %d emit lags, %d gaps over %d tokens, %d counted, TTFT %v (+send span %v) vs the endpoint's %v",
								fault, len(res.EmitLags), len(res.Gaps), gapTokens, res.CountedTokens, res.TTFT, res.SendSpan, res.ServerTTFT)
						}
					}
					if res.Outcome != prober.OutcomeSuccess && res.Outcome != prober.OutcomeTimeout && res.Detail == "" {
						t.Errorf("%s stream=%v: %v without a detail", fault, stream, res.Outcome)
					}
					if fault == "rate_limit" && (res.Status != http.StatusTooManyRequests || res.RetryAfter <= 0) {
						t.Errorf("rate_limit: status %d, Retry-After %v", res.Status, res.RetryAfter)
					}
				}
				c.Close()
			}
		})
	}
}
