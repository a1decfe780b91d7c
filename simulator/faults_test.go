package simulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func faultHeader(kind string) map[string]string { return map[string]string{FaultHeader: kind} }

func TestHTTPFaults(t *testing.T) {
	cfg := fastConfig()
	cfg.Faults.RetryAfter = ms(1500)
	_, ts := newTestServer(t, cfg)
	for _, tc := range []struct {
		kind       string
		status     int
		retryAfter string
	}{
		{"rate_limit", 429, "2"}, {"429", 429, "2"},
		{"server_error", 500, ""}, {"500", 500, ""},
		{"unavailable", 503, "2"}, {"503", 503, "2"},
	} {
		for _, stream := range []bool{true, false} {
			body := chatBody(3, "")
			if !stream {
				body = `{"messages":[{"role":"user","content":"a"}],"max_tokens":3}`
			}
			resp := post(t, ts.URL+"/v1/chat/completions", body, faultHeader(tc.kind))
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct{ Error struct{ Code int } }
			if resp.StatusCode != tc.status || json.Unmarshal(b, &e) != nil || e.Error.Code != tc.status {
				t.Errorf("%s: status %d body %s, want %d and an error object", tc.kind, resp.StatusCode, b, tc.status)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("%s: Retry-After %q, want %q", tc.kind, got, tc.retryAfter)
			}
		}
	}
	resp := post(t, ts.URL+"/v1/chat/completions", chatBody(3, ""), faultHeader("meteor"))
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown fault kind: status %d, want 400", resp.StatusCode)
	}
}

func TestResetFault(t *testing.T) {
	_, ts := newTestServer(t, fastConfig())
	resp := post(t, ts.URL+"/v1/chat/completions", chatBody(8, ""), faultHeader("reset"))
	evs, err := readSSE(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("reset stream ended cleanly after %d events", len(evs))
	}
	// Role chunk + after_events (2) text events, then the reset.
	if len(evs) != 3 {
		t.Errorf("got %d events before the reset, want 3", len(evs))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("want a connection reset, got %v", err)
	}

	// Non-streamed: no response at all.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/completions", strings.NewReader(`{"prompt":"a","max_tokens":2}`))
	req.Header.Set(FaultHeader, "reset")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("non-streamed reset returned status %d", resp.StatusCode)
	}
}

func TestResetIsTCPReset(t *testing.T) {
	// A raw connection sees RST (ECONNRESET), not an orderly FIN: through
	// httptest's plain conns and through Serve's stamped ones alike.
	_, ts := newTestServer(t, fastConfig())
	t.Run("plain", func(t *testing.T) { checkReset(t, ts.Listener.Addr().String()) })
	_, addr := newServedServer(t, fastConfig(), nil)
	t.Run("stamped", func(t *testing.T) { checkReset(t, addr) })
}

func checkReset(t *testing.T, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := chatBody(8, "")
	req := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + FaultHeader + ": reset\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("want ECONNRESET, got %v", err)
	}
}

func TestTruncateFault(t *testing.T) {
	_, ts := newTestServer(t, fastConfig())
	resp := post(t, ts.URL+"/v1/chat/completions", chatBody(8, `,"stream_options":{"include_usage":true}`), faultHeader("truncate"))
	evs, err := readSSE(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("truncated stream must close cleanly, got %v", err)
	}
	if len(evs) != 3 {
		t.Errorf("got %d events, want role + 2 text events", len(evs))
	}
	for _, ev := range evs {
		if string(ev.data) == "[DONE]" || bytes.Contains(ev.data, []byte(`"usage"`)) || bytes.Contains(ev.data, []byte(`"finish_reason":"length"`)) {
			t.Errorf("truncated stream carries an end marker: %s", ev.data)
		}
	}

	// Non-streamed: fewer bytes than Content-Length.
	resp = post(t, ts.URL+"/v1/completions", `{"prompt":"a","max_tokens":2}`, faultHeader("truncate"))
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("non-streamed truncate: want unexpected EOF, got %v", err)
	}
}

func TestStallFault(t *testing.T) {
	cfg := fastConfig()
	cfg.Faults.StallDuration = ms(250)
	_, ts := newTestServer(t, cfg)
	resp := post(t, ts.URL+"/v1/chat/completions", chatBody(6, ""), faultHeader("stall"))
	evs, err := readSSE(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	sum := checkStream(t, evs, apiChat, false) // the stream completes
	// The endpoint's own emit stamps, not the receive times, and still a
	// margin: the stall delays event 2's scheduled emit by 250 ms, but on a
	// busy machine event 1 may itself go out late (by 0.2 ms seen beside a
	// CPU hog, by more now and then), and the gap between the actual emits
	// is short by that much. The stall is still the one long silence.
	var longest time.Duration
	at := -1
	for i := 1; i < len(sum.textEvents); i++ {
		g := time.Duration(sum.chunks[sum.textEvents[i]].EmitNs - sum.chunks[sum.textEvents[i-1]].EmitNs)
		if g > longest {
			longest, at = g, i
		}
	}
	if longest < 200*time.Millisecond || at != 2 {
		t.Errorf("longest silence between emits %v before text event %d, want about 250ms (≥200ms) before event 2", longest, at)
	}
}

func TestMalformedFault(t *testing.T) {
	_, ts := newTestServer(t, fastConfig())
	resp := post(t, ts.URL+"/v1/chat/completions", chatBody(5, ""), faultHeader("malformed"))
	evs, err := readSSE(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, ev := range evs {
		if string(ev.data) != "[DONE]" && !json.Valid(ev.data) {
			bad++
		}
	}
	if bad != 1 {
		t.Errorf("want exactly one malformed event, got %d", bad)
	}
	resp = post(t, ts.URL+"/v1/completions", `{"prompt":"a","max_tokens":2}`, faultHeader("malformed"))
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || json.Valid(b) || resp.StatusCode != 200 {
		t.Errorf("non-streamed malformed: status %d err %v valid %v", resp.StatusCode, err, json.Valid(b))
	}
}

func TestOversizedFault(t *testing.T) {
	cfg := fastConfig()
	_, ts := newTestServer(t, cfg)
	resp := post(t, ts.URL+"/v1/chat/completions", chatBody(5, ""), faultHeader("oversized"))
	defer resp.Body.Close()
	// The default bufio.Scanner limit (64 KiB) is what breaks naive clients.
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
	}
	if !errors.Is(sc.Err(), bufio.ErrTooLong) {
		t.Errorf("a 64 KiB line scanner should choke, got %v", sc.Err())
	}

	resp2 := post(t, ts.URL+"/v1/chat/completions", chatBody(5, ""), faultHeader("oversized"))
	defer resp2.Body.Close()
	br := bufio.NewReader(resp2.Body)
	var longest int
	var events []sseEvent
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			break
		}
		longest = max(longest, len(line))
		if bytes.HasPrefix(line, []byte("data: ")) {
			events = append(events, sseEvent{data: bytes.TrimSpace(line[6:])})
		}
	}
	if longest < cfg.Faults.OversizedBytes-1024 || longest > cfg.Faults.OversizedBytes+1024 {
		t.Errorf("longest line %d bytes, want ≈ %d", longest, cfg.Faults.OversizedBytes)
	}
	// Still valid JSON and a conforming stream, tokens unchanged.
	for i := range events {
		events[i].data = append([]byte(nil), events[i].data...)
	}
	if sum := checkStream(t, events, apiChat, false); sum.tokens != 5 {
		t.Errorf("oversized stream carries %d tokens, want 5", sum.tokens)
	}
}

func TestDripFault(t *testing.T) {
	cfg := fastConfig()
	cfg.Faults.DripInterval = ms(0.05)
	_, ts := newTestServer(t, cfg)
	// Small: each byte waits for a timer (≈1ms when the process is idle).
	resp := post(t, ts.URL+"/v1/completions", `{"prompt":"a","stream":true,"max_tokens":1}`, faultHeader("drip"))
	defer resp.Body.Close()
	// Reads return a byte or a few at a time: count reads.
	var reads, total int
	buf := make([]byte, 64<<10)
	var data []byte
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			reads++
			total += n
			data = append(data, buf[:n]...)
		}
		if err != nil {
			break
		}
	}
	if reads < total/4 {
		t.Errorf("%d bytes came in %d reads: not dripped", total, reads)
	}
	evs, err := readSSE(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	checkStream(t, evs, apiCompletions, false)
}

func TestFaultProbabilities(t *testing.T) {
	f := Faults{RateLimit: 0.1, Reset: 0.2, Drip: 0.05}
	m := newLatencyModel(&Config{Seed: 3, Faults: f})
	counts := map[faultKind]int{}
	const n = 20000
	for seq := uint64(1); seq <= n; seq++ {
		counts[m.pickFault(m.rng(seq))]++
	}
	for k, want := range map[faultKind]float64{faultNone: 0.65, faultRateLimit: 0.1, faultReset: 0.2, faultDrip: 0.05, faultStall: 0} {
		got := float64(counts[k]) / n
		if got < want-0.015 || got > want+0.015 {
			t.Errorf("%s: frequency %.3f, want %.2f", k, got, want)
		}
	}
}

func TestFaultHeaderNoneOverridesProbabilities(t *testing.T) {
	cfg := fastConfig()
	cfg.Faults.ServerError = 1
	_, ts := newTestServer(t, cfg)
	resp := post(t, ts.URL+"/v1/completions", `{"prompt":"a","max_tokens":1}`, faultHeader("none"))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("none: status %d", resp.StatusCode)
	}
	resp = post(t, ts.URL+"/v1/completions", `{"prompt":"a","max_tokens":1}`, nil)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("server_error probability 1: status %d", resp.StatusCode)
	}
}
