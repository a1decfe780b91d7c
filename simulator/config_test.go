package simulator

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.TTFT != ms(50) || c.PrefillPerToken != 0 || c.ITL != ms(10) || c.MaxConcurrency != 256 ||
		c.TokensPerEvent != 1 || c.DefaultOutputTokens != 64 {
		t.Errorf("defaults differ from the documented ones: %+v", c)
	}
	var f Faults
	f.RetryAfter, f.StallDuration, f.AfterEvents, f.OversizedBytes, f.DripInterval =
		c.Faults.RetryAfter, c.Faults.StallDuration, c.Faults.AfterEvents, c.Faults.OversizedBytes, c.Faults.DripInterval
	if c.Faults != f {
		t.Errorf("default config injects faults: %+v", c.Faults)
	}
}

func TestLoadConfigFile(t *testing.T) {
	c, err := LoadConfigFile("testdata/example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.TTFT != ms(80) || c.ITL != ms(15) || c.ITLJitter.Distribution != JitterLognormal || c.MaxConcurrency != 32 ||
		c.Faults.RateLimit != 0.01 || c.Faults.StallDuration != ms(5000) || newLatencyModel(&c).prefill != 200e3 {
		t.Errorf("file not applied: %+v", c)
	}
	// Unset fields keep their defaults, at the top level and in faults.
	d := DefaultConfig()
	if c.DefaultOutputTokens != d.DefaultOutputTokens || c.Faults.OversizedBytes != d.Faults.OversizedBytes || c.Faults.AfterEvents != d.Faults.AfterEvents {
		t.Errorf("defaults lost: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"ttft: 10ms\nttfx: 1s\n", "ttfx"},
		{"faults:\n  resett: 0.1\n", "resett"},
		{"max_concurrency: 0\n", "max_concurrency"},
		{"tokens_per_event: 0\n", "tokens_per_event"},
		{"itl_jitter: {distribution: cauchy}\n", "cauchy"},
		{"faults: {reset: 0.6, stall: 0.6}\n", "sum to more than 1"},
		{"faults: {drip: 1.5}\n", "drip"},
		{"itl: -1s\n", "not a valid duration"},
		{"model: ''\n", "model"},
		{"prefill_per_token: 1ms\nprefill_tokens_per_second: 1000\n", "not both"},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "c.yml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfigFile(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Errorf("New accepted a zero config")
	}
}

func TestCloseStopsStreams(t *testing.T) {
	cfg := fastConfig()
	cfg.ITL = ms(100)
	cfg.MaxConcurrency = 1
	s, ts := newTestServer(t, cfg)
	done := make(chan error, 2)
	for range 2 { // one streaming, one queued behind it
		go func() {
			resp := post(t, ts.URL+"/v1/chat/completions", chatBody(1000, ""), nil)
			_, err := readSSE(resp.Body)
			resp.Body.Close()
			done <- err
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	s.Close()
	for range 2 {
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not end the streams")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("streams took %v to stop", d)
	}
	resp := post(t, ts.URL+"/v1/completions", `{"prompt":"a"}`, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", resp.StatusCode)
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop, err := Serve(ctx, "127.0.0.1:0", fastConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	evs, err := streamRequest(t, "http://"+addr+"/v1/chat/completions", chatBody(3, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkStream(t, evs, apiChat, false)

	// Cancelling the context stops the server.
	cancel()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v1/models")
		if err != nil {
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still serving after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop() // idempotent
}
