package load_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// At info level, the first failure of each outcome is logged with the
// server's own message and the probe's config; repeats are summarised, not
// logged one by one.
func TestFailuresAreLoggedWithTheServersMessage(t *testing.T) {
	const apiKey = "sk-live-0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"code":400,"message":"request (2128 tokens) exceeds the available context size (2048 tokens); key %s","type":"exceed_context_size_error"}}`, r.Header.Get("X-Api-Key"))
	}))
	defer srv.Close()
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets:
  - {name: other, url: "http://127.0.0.1:1", model: m}
  - {name: small, url: %q, model: tiny, http_client_config: {http_headers: {X-Api-Key: {secrets: [%s]}}}}
scenarios:
  - name: long
    load: {mode: open, arrival: constant, rate: 50}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [small], scenarios: [long]}]
`, srv.URL, apiKey)), "")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	s := &sink{}
	r, err := load.New(cfg, load.Options{Workers: 1, Drain: time.Second}, s, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	runFor := 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	r.Run(ctx)
	r.Close()
	n := len(s.all())
	out := logs.String()
	t.Log(out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if n < 5 || len(lines) != 2 {
		t.Fatalf("%d failed requests gave %d log lines, want 2 (the first in full, then one summary)", n, len(lines))
	}
	first, summary := lines[0], lines[1]
	for _, want := range []string{
		"level=INFO", `outcome=http_4xx`, "status=400",
		`error="request (2128 tokens) exceeds the available context size (2048 tokens); key <redacted>"`,
		"target=small", "scenario=long",
		`config="targets[1] (api openai-chat, url ` + srv.URL + `, model tiny) × scenarios[0] (stream true, timeout 1m)"`,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first failure's line lacks %s:\n%s", want, first)
		}
	}
	if want := fmt.Sprintf("http_4xx=%d", n-1); !strings.Contains(summary, "level=INFO") || !strings.Contains(summary, want) || !strings.Contains(summary, "latest_error=") {
		t.Errorf("summary lacks %s:\n%s", want, summary)
	}
	if strings.Contains(out, apiKey) {
		t.Errorf("the API key the server echoed reached the log")
	}
}
