package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The Ollama test: a real engine (Ollama, built from its Go module by
// tools/ollama/build.sh) serving a tiny random-weight model (written by
// tools/ollama/mkgguf), probed by the daemon as a user would, over chat and
// completions, streamed and not, open and closed loop. The model cannot end
// a reply early, so every request must bring exactly the tokens asked for.

const (
	ollamaModel  = "llmprobe-tiny"
	ollamaTokens = 16 // output tokens asked of every request
	ollamaWords  = 24 // input words of every synthetic prompt
)

// ollamaTemplate renders a prompt (or a chat's one user message) as it is:
// no chat markup, no stop sequences that could hold text back.
const ollamaModelfile = `
FROM ./tiny.gguf
TEMPLATE """{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}"""
PARAMETER num_thread 1
PARAMETER num_ctx 2048
`

func TestOllama(t *testing.T) {
	ollama := os.Getenv("LLMPROBE_OLLAMA")
	if ollama == "" {
		t.Fatal("LLMPROBE_OLLAMA is not set: run ./test.sh, which builds Ollama (tools/ollama/build.sh) and sets it")
	}
	if _, err := os.Stat(ollama); err != nil {
		t.Fatalf("LLMPROBE_OLLAMA=%s: %v (tools/ollama/build.sh builds it)", ollama, err)
	}
	dir := t.TempDir()

	// The model, written fresh (deterministic: the same bytes every run).
	mk := exec.Command("go", "run", "./mkgguf", "-o", filepath.Join(dir, "tiny.gguf"))
	mk.Dir = filepath.Join("..", "..", "tools", "ollama")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("writing the tiny GGUF (tools/ollama/mkgguf): %v\n%s", err, out)
	}
	writeFile(t, dir, "Modelfile", ollamaModelfile)

	// Ollama on loopback, with everything it keeps under dir.
	ollamaAddr := freeAddr(t)
	t.Setenv("HOME", dir) // its key pair (~/.ollama) too
	t.Setenv("OLLAMA_HOST", ollamaAddr)
	t.Setenv("OLLAMA_MODELS", filepath.Join(dir, "models"))
	t.Setenv("OLLAMA_KEEP_ALIVE", "-1") // never unload mid-test
	t.Setenv("OLLAMA_NUM_PARALLEL", "2")
	t.Setenv("OLLAMA_MAX_LOADED_MODELS", "1")
	t.Setenv("OLLAMA_NOPRUNE", "1")
	t.Setenv("OLLAMA_NO_CLOUD", "1") // nothing leaves the machine
	srv := start(t, ollama, "serve")
	t.Cleanup(func() { stopOllama(t, srv, dir) })
	waitHTTP(t, "http://"+ollamaAddr+"/api/version", 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	create := exec.CommandContext(ctx, ollama, "create", ollamaModel, "-f", filepath.Join(dir, "Modelfile"))
	create.Dir = dir
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("ollama create: %v\n%s", err, out)
	}

	// Load the model before anything is measured.
	load := ollamaGenerate(t, ollamaAddr, 3*ollamaWords)
	t.Logf("Ollama's first request (loads the model): total %.1f ms, load %.1f ms", ms(load.total), ms(load.load))

	// Phase 1, the timing comparison: streamed chat, closed loop of one, so
	// that each request has Ollama to itself and Ollama's request log
	// lists them in the order llmprobe sent them.
	cfg := writeFile(t, dir, "timing.yml", fmt.Sprintf(`
targets:
  - name: ollama-chat
    url: http://%s
    model: %s
    http_client_config: {enable_http2: false}
scenarios:
  - name: timing
    load: {mode: closed, concurrency: 1}
    workload:
      input_tokens: {value: %d}
      output_tokens: {value: %d}
    timeout: 30s
probes:
  - targets: [ollama-chat]
    scenarios: [timing]
`, ollamaAddr, ollamaModel, ollamaWords, ollamaTokens))
	ginBefore := len(ginLines(srv.output.String(), "/v1/chat/completions"))
	probe := startProbe(t, cfg)
	timing := []probeKey{{"ollama-chat", "timing"}}
	fams := waitSuccesses(t, probe.addr, timing, 100, 90*time.Second)
	probe.stop()
	checkProbe(t, fams, timing)

	k := timing[0]
	n := histCount(fams, "llmprobe_request_duration_seconds", k)
	e2e := histSum(fams, "llmprobe_request_duration_seconds", k)
	ttft := histSum(fams, "llmprobe_time_to_first_token_seconds", k)
	tpot := histSum(fams, "llmprobe_time_per_output_token_seconds", k)
	inTokens := counter(fams, "llmprobe_input_tokens_total", k, "")
	gin := ginLines(srv.output.String(), "/v1/chat/completions")[ginBefore:]
	if uint64(len(gin)) < n {
		t.Fatalf("Ollama logged %d chat requests, llmprobe recorded %d", len(gin), n)
	}
	var ginSum time.Duration
	for _, d := range gin[:n] {
		ginSum += d
	}
	nf := float64(n)
	// Ollama's own figures for requests of the same shape, on its native
	// API: as many prompt tokens as the probe's prompts came to.
	native := ollamaNative(t, ollamaAddr, 20, int(math.Round(inTokens/nf)))
	t.Logf("llmprobe, %d streamed chat requests of %d tokens (prompt %.1f tokens per Ollama's usage): TTFT %.2f ms, e2e %.2f ms, TPOT %.3f ms (means)",
		n, ollamaTokens, inTokens/nf, ms(ttft/nf), ms(e2e/nf), ms(tpot/nf))
	t.Logf("Ollama's request log, the same requests: %.2f ms (mean handler time)", ms(ginSum.Seconds()/nf))
	t.Logf("Ollama's own figures, %d native /api/generate requests (prompt %.1f tokens, %.1f generated): total %.2f ms, load %.3f ms, prompt eval %.2f ms, eval %.2f ms, eval per token after the first %.3f ms (means)",
		native.n, native.promptTokens, native.evalTokens, ms(native.total), ms(native.load), ms(native.promptEval), ms(native.eval), ms(native.tpot))

	// The same requests, two clocks: llmprobe's e2e runs from its socket
	// write to the last byte it read, Ollama's handler time from after it
	// parsed the request to its last write, so llmprobe's can only be longer
	// (1 ms each of slack for the clocks' granularity). And llmprobe adds
	// no more than loopback and its own reading: a few ms on a busy box.
	if slack := time.Duration(n) * time.Millisecond; time.Duration(e2e*float64(time.Second)) < ginSum-slack {
		t.Errorf("llmprobe's e2e total %.1f ms is shorter than Ollama's handler time for the same %d requests, %.1f ms",
			ms(e2e), n, ms(ginSum.Seconds()))
	}
	if over := e2e/nf - ginSum.Seconds()/nf; over > 0.025 {
		t.Errorf("llmprobe's mean e2e exceeds Ollama's handler time for the same requests by %.1f ms (want at most 25 ms)", ms(over))
	}
	// Against Ollama's own accounting of other requests of the same shape:
	// TTFT holds at least the prompt's evaluation (it produced the first
	// token); TPOT is the decode time per token plus what streaming adds,
	// within a generous factor on two shared cores.
	if ttft/nf < 0.5*native.promptEval {
		t.Errorf("llmprobe's mean TTFT %.2f ms is under half of Ollama's own prompt evaluation, %.2f ms", ms(ttft/nf), ms(native.promptEval))
	}
	if ttft/nf > 5*(native.total-native.eval)+0.05 {
		t.Errorf("llmprobe's mean TTFT %.2f ms is far above Ollama's own time to its first token, %.2f ms", ms(ttft/nf), ms(native.total-native.eval))
	}
	if m := tpot / nf; m < 0.5*native.tpot || m > 5*native.tpot+0.005 {
		t.Errorf("llmprobe's mean TPOT %.3f ms is not within [0.5×, 5× + 5 ms] of Ollama's own decode time per token, %.3f ms", ms(m), ms(native.tpot))
	}
	if e2e/nf < 0.5*native.total {
		t.Errorf("llmprobe's mean e2e %.2f ms is under half of Ollama's own total for the same shape, %.2f ms", ms(e2e/nf), ms(native.total))
	}

	// Phase 2, every shape at once: both APIs, streamed and not, open loop
	// and closed loops of one and two.
	cfg = writeFile(t, dir, "shapes.yml", fmt.Sprintf(`
targets:
  - name: ollama-chat
    url: http://%[1]s
    model: %[2]s
    http_client_config: {enable_http2: false}
  - name: ollama-completions
    url: http://%[1]s
    api: openai-completions
    model: %[2]s
    http_client_config: {enable_http2: false}
scenarios:
  - name: stream-open
    load: {mode: open, rate: 4, max_in_flight: 8}
    workload: {input_tokens: {value: %[3]d}, output_tokens: {value: %[4]d}}
    timeout: 30s
  - name: plain-open
    stream: false
    load: {mode: open, rate: 4, max_in_flight: 8}
    workload: {input_tokens: {value: %[3]d}, output_tokens: {value: %[4]d}}
    timeout: 30s
  - name: stream-closed2
    load: {mode: closed, concurrency: 2}
    workload: {input_tokens: {value: %[3]d}, output_tokens: {value: %[4]d}}
    timeout: 30s
  - name: plain-closed1
    stream: false
    load: {mode: closed, concurrency: 1}
    workload: {input_tokens: {value: %[3]d}, output_tokens: {value: %[4]d}}
    timeout: 30s
probes:
  - targets: [ollama-chat]
    scenarios: [stream-open, plain-open]
  - targets: [ollama-completions]
    scenarios: [stream-closed2, plain-closed1]
`, ollamaAddr, ollamaModel, ollamaWords, ollamaTokens))
	probe = startProbe(t, cfg)
	shapes := []probeKey{
		{"ollama-chat", "stream-open"}, {"ollama-chat", "plain-open"},
		{"ollama-completions", "stream-closed2"}, {"ollama-completions", "plain-closed1"},
	}
	fams = waitSuccesses(t, probe.addr, shapes, 20, 120*time.Second)
	probe.stop()
	checkProbe(t, fams, shapes)
	for _, k := range shapes {
		n := float64(histCount(fams, "llmprobe_request_duration_seconds", k))
		line := fmt.Sprintf("%s/%s: %.0f requests, e2e %.2f ms", k.target, k.scenario, n,
			ms(histSum(fams, "llmprobe_request_duration_seconds", k)/n))
		if c := histCount(fams, "llmprobe_time_to_first_token_seconds", k); c > 0 {
			line += fmt.Sprintf(", TTFT %.2f ms, TPOT %.3f ms",
				ms(histSum(fams, "llmprobe_time_to_first_token_seconds", k)/float64(c)),
				ms(histSum(fams, "llmprobe_time_per_output_token_seconds", k)/float64(c)))
		}
		t.Logf("%s (means)", line)
	}
}

// probeKey is one (target, scenario) pair.
type probeKey struct{ target, scenario string }

type probeProcess struct {
	*process
	addr string
}

// startProbe runs the daemon with one worker process on cfg.
func startProbe(t *testing.T, cfg string) *probeProcess {
	t.Helper()
	addr := freeAddr(t)
	p := start(t, binary, "--config.file="+cfg, "--web.listen-address="+addr, "--workers=1")
	waitHTTP(t, "http://"+addr+"/-/ready", 15*time.Second)
	return &probeProcess{process: p, addr: addr}
}

// stop ends the daemon: its figures were scraped already.
func (p *probeProcess) stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// waitSuccesses scrapes addr until every key has at least want successful
// requests, checking on every scrape that no worker says it is saturated.
func waitSuccesses(t *testing.T, addr string, keys []probeKey, want float64, within time.Duration) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		fams := scrape(t, addr)
		for _, m := range family(fams, "llmprobe_client_saturated") {
			if m.GetGauge().GetValue() != 0 {
				t.Errorf("llmprobe_client_saturated{%s} = %v", labelString(m), m.GetGauge().GetValue())
			}
		}
		done := true
		for _, k := range keys {
			if counter(fams, "llmprobe_requests_total", k, "success") < want {
				done = false
			}
		}
		if done {
			return fams
		}
		if time.Now().After(deadline) {
			for _, k := range keys {
				t.Logf("%s/%s: %v successful requests", k.target, k.scenario, counter(fams, "llmprobe_requests_total", k, "success"))
			}
			t.Fatalf("not every scenario had %v successful requests within %s", want, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkProbe asserts what must hold of every key after a run against
// Ollama: every request a success, usage agreeing with the stream, exactly
// the tokens asked for, nothing measured while saturated.
func checkProbe(t *testing.T, fams map[string]*dto.MetricFamily, keys []probeKey) {
	t.Helper()
	for _, k := range keys {
		name := k.target + "/" + k.scenario
		for _, m := range family(fams, "llmprobe_requests_total") {
			if !labelsMatch(m, k) {
				continue
			}
			outcome := labelValue(m, "outcome")
			if v := m.GetCounter().GetValue(); outcome != "success" && v != 0 {
				hint := ""
				if outcome == "connect_error" {
					hint = " (Ollama closing idle keep-alive connections? see the prober's connection retries)"
				}
				t.Errorf("%s: %v requests ended %s%s", name, v, outcome, hint)
			}
		}
		if v := counter(fams, "llmprobe_usage_mismatches_total", k, ""); v != 0 {
			t.Errorf("%s: llmprobe_usage_mismatches_total = %v, want 0", name, v)
		}
		if v := counter(fams, "llmprobe_saturated_observations_total", k, ""); v != 0 {
			t.Errorf("%s: llmprobe_saturated_observations_total = %v, want 0", name, v)
		}
		if v := counter(fams, "llmprobe_requests_dropped_total", k, ""); v != 0 {
			t.Errorf("%s: llmprobe_requests_dropped_total = %v, want 0", name, v)
		}
		// Every request brought exactly ollamaTokens: none above (the
		// bucket at ollamaTokens holds them all) and the mean on it.
		h := histogram(fams, "llmprobe_request_output_tokens", k)
		if h == nil || h.GetSampleCount() == 0 {
			t.Errorf("%s: no llmprobe_request_output_tokens observations", name)
			continue
		}
		var atMost uint64
		found := false
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == ollamaTokens {
				atMost, found = b.GetCumulativeCount(), true
			}
		}
		if !found {
			t.Fatalf("llmprobe_request_output_tokens has no bucket at %d", ollamaTokens)
		}
		if atMost != h.GetSampleCount() || h.GetSampleSum() != ollamaTokens*float64(h.GetSampleCount()) {
			t.Errorf("%s: output tokens per request: %d requests summing %v, %d of them ≤ %d; want all exactly %d",
				name, h.GetSampleCount(), h.GetSampleSum(), atMost, ollamaTokens, ollamaTokens)
		}
	}
}

// nativeFigures are Ollama's own figures (seconds), of one request on its
// native API or the means over several.
type nativeFigures struct {
	n                                   int
	promptTokens, evalTokens            float64
	total, load, promptEval, eval, tpot float64
}

// ollamaNative sends n non-streamed /api/generate requests of promptTokens
// prompt tokens and ollamaTokens out, one at a time, and averages what
// Ollama reports of them.
func ollamaNative(t *testing.T, addr string, n, promptTokens int) nativeFigures {
	t.Helper()
	var f nativeFigures
	for range n {
		r := ollamaGenerate(t, addr, promptTokens)
		f.n++
		f.promptTokens += r.promptTokens
		f.evalTokens += r.evalTokens
		f.total += r.total
		f.load += r.load
		f.promptEval += r.promptEval
		f.eval += r.eval
		f.tpot += r.tpot
	}
	for _, p := range []*float64{&f.promptTokens, &f.evalTokens, &f.total, &f.load, &f.promptEval, &f.eval, &f.tpot} {
		*p /= float64(f.n)
	}
	return f
}

var nativeRNG = rand.New(rand.NewPCG(1, 2))

// ollamaGenerate sends one non-streamed /api/generate request of
// promptTokens prompt tokens (a BOS and random syllables, one token each
// with its leading space; a fresh prompt each time, so nothing comes from
// Ollama's prompt cache) for ollamaTokens, and returns what Ollama reports.
func ollamaGenerate(t *testing.T, addr string, promptTokens int) nativeFigures {
	t.Helper()
	var syllables []string
	for _, c := range "bdfgklmnprstvz" {
		for _, v := range "aeiou" {
			syllables = append(syllables, string(c)+string(v))
		}
	}
	words := make([]string, max(promptTokens-1, 1))
	for j := range words {
		words[j] = syllables[nativeRNG.IntN(len(syllables))]
	}
	body, _ := json.Marshal(map[string]any{
		"model": ollamaModel, "prompt": strings.Join(words, " "), "stream": false,
		"options": map[string]any{"num_predict": ollamaTokens},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/generate", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("/api/generate: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/generate: HTTP %d: %s", resp.StatusCode, raw)
	}
	var r struct {
		TotalDuration      int64  `json:"total_duration"`
		LoadDuration       int64  `json:"load_duration"`
		PromptEvalCount    int    `json:"prompt_eval_count"`
		PromptEvalDuration int64  `json:"prompt_eval_duration"`
		EvalCount          int    `json:"eval_count"`
		EvalDuration       int64  `json:"eval_duration"`
		DoneReason         string `json:"done_reason"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("/api/generate: %v: %s", err, raw)
	}
	if r.EvalCount != ollamaTokens {
		t.Fatalf("/api/generate brought %d tokens (done_reason %q), asked %d: the tiny model must never stop early", r.EvalCount, r.DoneReason, ollamaTokens)
	}
	return nativeFigures{
		n:            1,
		promptTokens: float64(r.PromptEvalCount),
		evalTokens:   float64(r.EvalCount),
		total:        float64(r.TotalDuration) / 1e9,
		load:         float64(r.LoadDuration) / 1e9,
		promptEval:   float64(r.PromptEvalDuration) / 1e9,
		eval:         float64(r.EvalDuration) / 1e9,
		// eval_duration spans the decodes after the one that ended the
		// prompt's evaluation (which produced the first token).
		tpot: float64(r.EvalDuration) / 1e9 / float64(r.EvalCount-1),
	}
}

// stopOllama ends `ollama serve` as a user would (SIGTERM: it stops its
// model runner, a child process of its own), then kills what is left: a
// runner whose server died first would outlive the test.
func stopOllama(t *testing.T, srv *process, dir string) {
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.done:
	case <-time.After(10 * time.Second):
		t.Errorf("ollama serve did not exit within 10s of SIGTERM")
		srv.cmd.Process.Kill()
		<-srv.done
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("\x00runner\x00")) || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			t.Errorf("an Ollama runner (pid %d) outlived ollama serve: killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ginLine is one line of Ollama's request log, e.g.
// [GIN] 2025/01/02 - 15:04:05 | 200 |    12.3456ms |       127.0.0.1 | POST     "/v1/chat/completions"
var ginLine = regexp.MustCompile(`^\[GIN\] [^|]*\|\s*(\d+)\s*\|\s*(\S+)\s*\|[^|]*\|\s*(\S+)\s+"([^"]*)"`)

// ginLines returns the handler times Ollama logged for POSTs to path, in
// the order they finished.
func ginLines(log, path string) []time.Duration {
	var ds []time.Duration
	for _, line := range strings.Split(log, "\n") {
		m := ginLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || m[3] != "POST" || m[4] != path {
			continue
		}
		if d, err := time.ParseDuration(m[2]); err == nil {
			ds = append(ds, d)
		}
	}
	return ds
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := get(t, "http://"+addr+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

func family(fams map[string]*dto.MetricFamily, name string) []*dto.Metric {
	if f := fams[name]; f != nil {
		return f.GetMetric()
	}
	return nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func labelsMatch(m *dto.Metric, k probeKey) bool {
	return labelValue(m, "target") == k.target && labelValue(m, "scenario") == k.scenario
}

func labelString(m *dto.Metric) string {
	var s []string
	for _, l := range m.GetLabel() {
		s = append(s, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return strings.Join(s, ",")
}

// counter returns the value of name for k (and outcome, when not empty); 0
// when there is no such series.
func counter(fams map[string]*dto.MetricFamily, name string, k probeKey, outcome string) float64 {
	for _, m := range family(fams, name) {
		if labelsMatch(m, k) && (outcome == "" || labelValue(m, "outcome") == outcome) {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func histogram(fams map[string]*dto.MetricFamily, name string, k probeKey) *dto.Histogram {
	for _, m := range family(fams, name) {
		if labelsMatch(m, k) {
			return m.GetHistogram()
		}
	}
	return nil
}

func histCount(fams map[string]*dto.MetricFamily, name string, k probeKey) uint64 {
	return histogram(fams, name, k).GetSampleCount()
}

func histSum(fams map[string]*dto.MetricFamily, name string, k probeKey) float64 {
	return histogram(fams, name, k).GetSampleSum()
}

func ms(seconds float64) float64 {
	if math.IsNaN(seconds) {
		return seconds
	}
	return seconds * 1000
}
