package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestEarlySIGHUPDoesNotKill: a SIGHUP sent as soon as the daemon runs (a
// reload request racing its start) must not kill it. The first few
// milliseconds of any Go program are the runtime's and its packages'
// initialisation, before main: no program can catch a signal there. The test
// starts counting when the process writes its first log line, which the
// daemon writes once its signal handlers are in place, and from then sends
// SIGHUP immediately and every 2 ms for 100 ms, during start-up.
func TestEarlySIGHUPDoesNotKill(t *testing.T) {
	addr := freeAddr(t)
	p := start(t, binary, "--web.listen-address="+addr)
	deadline := time.Now().Add(10 * time.Second)
	for p.output.String() == "" {
		select {
		case <-p.done:
			t.Fatalf("exited before its first log line: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no log line within 10s")
		}
		time.Sleep(50 * time.Microsecond)
	}
	for began := time.Now(); time.Since(began) < 100*time.Millisecond; time.Sleep(2 * time.Millisecond) {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP %s after the first log line: %v (exited: %v)", time.Since(began), err, p.cmd.ProcessState)
		}
	}
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	// The signals that came during start-up make one reload once the first
	// configuration runs.
	waitLog(t, p, "configuration unchanged", 10*time.Second)
	select {
	case <-p.done:
		t.Fatalf("the daemon died: %v", p.cmd.ProcessState)
	default:
	}
}

// waitLog waits until the process' output contains s.
func waitLog(t *testing.T, p *process, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.output.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q within %s", s, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countingEndpoint counts every HTTP request it receives and answers 500.
func countingEndpoint(t *testing.T) (addr string, requests *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests = new(atomic.Int64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.Copy(io.Discard, r.Body)
		http.Error(w, "counted", http.StatusInternalServerError)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), requests
}

// TestPortClashFailsBeforeAnyLoad: the listener is bound before the load
// starts, so a daemon whose port is taken exits at once, non-zero, naming
// the address, and the endpoint it would probe never hears from it.
func TestPortClashFailsBeforeAnyLoad(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	endpoint, requests := countingEndpoint(t)
	cfg := writeFile(t, t.TempDir(), "llmprobe.yml", fmt.Sprintf(reloadConfig, endpoint, "s", "s"))
	for _, workers := range []string{"0", "2"} {
		began := time.Now()
		p := start(t, binary, "--config.file="+cfg, "--web.listen-address="+taken.Addr().String(), "--workers="+workers)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("--workers=%s: still running 10s after start on a taken port", workers)
		}
		if took := time.Since(began); took > 3*time.Second {
			t.Errorf("--workers=%s: took %s to fail on a taken port", workers, took)
		}
		if code := p.cmd.ProcessState.ExitCode(); code == 0 {
			t.Errorf("--workers=%s: exit code 0 on a taken port", workers)
		}
		if out := p.output.String(); !strings.Contains(out, taken.Addr().String()) || !strings.Contains(out, "address already in use") {
			t.Errorf("--workers=%s: the log does not name the address and the reason:\n%s", workers, out)
		}
	}
	time.Sleep(300 * time.Millisecond) // a straggling worker would have sent by now
	if n := requests.Load(); n != 0 {
		t.Errorf("the endpoint received %d requests from a daemon that could not listen", n)
	}
}

func post(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestLifecycleAndPprofAreOffByDefault follows Prometheus: without
// --web.enable-lifecycle, POST /-/reload and /-/quit answer 403 (SIGHUP
// still reloads); without --web.enable-pprof, there are no profiles and the
// landing page does not link them.
func TestLifecycleAndPprofAreOffByDefault(t *testing.T) {
	addr := freeAddr(t)
	p := start(t, binary, "--web.listen-address="+addr, "--workers=0")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	for _, path := range []string{"/-/reload", "/-/quit"} {
		if status, body := post(t, "http://"+addr+path); status != http.StatusForbidden || !strings.Contains(body, "Lifecycle API is not enabled.") {
			t.Errorf("POST %s without --web.enable-lifecycle: HTTP %d %q, want 403 Lifecycle API is not enabled.", path, status, body)
		}
		if status, _ := get(t, "http://"+addr+path); status != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: HTTP %d, want 405", path, status)
		}
	}
	if status, _ := get(t, "http://"+addr+"/debug/pprof/heap"); status != http.StatusNotFound {
		t.Errorf("/debug/pprof/heap without --web.enable-pprof: HTTP %d, want 404", status)
	}
	if _, landing := get(t, "http://"+addr+"/"); strings.Contains(landing, "debug/pprof") {
		t.Errorf("the landing page links profiles that are not served:\n%s", landing)
	}
	if strings.Contains(p.output.String(), "configuration unchanged") {
		t.Errorf("a refused POST reloaded:\n%s", p.output.String())
	}
	// SIGHUP still reloads.
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "configuration unchanged", 10*time.Second)
}

func TestLifecycleAndPprofWhenEnabled(t *testing.T) {
	addr := freeAddr(t)
	p := start(t, binary, "--web.listen-address="+addr, "--workers=0", "--web.enable-lifecycle", "--web.enable-pprof")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	if status, _ := get(t, "http://"+addr+"/debug/pprof/heap"); status != http.StatusOK {
		t.Errorf("/debug/pprof/heap with --web.enable-pprof: HTTP %d", status)
	}
	if _, landing := get(t, "http://"+addr+"/"); !strings.Contains(landing, "debug/pprof/heap") {
		t.Errorf("the landing page does not link the profiles:\n%s", landing)
	}
	if status, body := post(t, "http://"+addr+"/-/reload"); status != http.StatusOK {
		t.Errorf("POST /-/reload: HTTP %d %q", status, body)
	}
	if status, body := post(t, "http://"+addr+"/-/quit"); status != http.StatusOK {
		t.Errorf("POST /-/quit: HTTP %d %q", status, body)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after POST /-/quit")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after POST /-/quit, want 0", code)
	}
}

// TestConfigCheckAgreesWithStartUp: what start-up rejects, --config.check
// rejects too, with the same message naming the field.
func TestConfigCheckAgreesWithStartUp(t *testing.T) {
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage.pem", "not a certificate\n")
	cases := []struct {
		name, tls string
		want      []string
	}{
		{"missing ca_file", "ca_file: missing.pem", []string{`target "reference"`, "targets[0].http_client_config.tls_config.ca_file", "missing.pem", "no such file"}},
		{"ca_file without a certificate", "ca_file: " + garbage, []string{`target "reference"`, "targets[0].http_client_config.tls_config"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(`
targets:
  - name: reference
    url: https://127.0.0.1:1
    model: m
    http_client_config:
      tls_config:
        %s
scenarios:
  - name: s
    load: {mode: open, rate: 1}
probes:
  - targets: [reference]
    scenarios: [s]
`, c.tls))
			for _, workers := range []string{"0", "2"} {
				out, err := exec.Command(binary, "--config.check", "--config.file="+cfg, "--workers="+workers).CombinedOutput()
				if err == nil {
					t.Errorf("--config.check --workers=%s passed:\n%s", workers, out)
				}
				for _, w := range c.want {
					if !strings.Contains(string(out), w) {
						t.Errorf("--config.check --workers=%s does not say %q:\n%s", workers, w, out)
					}
				}
				p := start(t, binary, "--config.file="+cfg, "--web.listen-address="+freeAddr(t), "--workers="+workers)
				select {
				case <-p.done:
				case <-time.After(10 * time.Second):
					t.Fatalf("start-up --workers=%s accepted what --config.check rejects", workers)
				}
				for _, w := range c.want {
					if !strings.Contains(p.output.String(), strings.ReplaceAll(w, `"`, `\"`)) {
						t.Errorf("start-up --workers=%s does not say %q:\n%s", workers, w, p.output.String())
					}
				}
			}
		})
	}
}

// children returns the PIDs of pid's child processes.
func children(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var kids []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at its end.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, child)
		}
	}
	return kids
}

const warmupConfig = `
targets:
  - name: reference
    url: http://%s
    model: llmprobe-reference
scenarios:
  - name: s
    load: {mode: open, rate: %d, warmup: 3s}
    workload:
      input_tokens: {value: 8}
      output_tokens: {value: 4}
probes:
  - targets: [reference]
    scenarios: [s]
`

// TestUnchangedReloadIsANoOp: reloading an unchanged file (20 times, fast)
// restarts no worker and no warm-up: requests keep reaching the latency
// histograms. A changed file still restarts the load.
func TestUnchangedReloadIsANoOp(t *testing.T) {
	simAddr := freeAddr(t)
	start(t, binary, "simulate", "--model=llmprobe-reference", "--listen-address="+simAddr, "--ttft=5ms", "--itl=1ms")
	waitHTTP(t, "http://"+simAddr+"/v1/models", 10*time.Second)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(warmupConfig, simAddr, 20))
	addr := freeAddr(t)
	p := start(t, binary, "--config.file="+cfg, "--web.listen-address="+addr, "--workers=2", "--web.enable-lifecycle")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	ttft := `llmprobe_time_to_first_token_seconds_count{scenario="s",target="reference"}`
	waitMetric(t, addr, ttft, positive, 15*time.Second) // warm-up over
	before := children(t, p.cmd.Process.Pid)
	if len(before) != 2 {
		t.Fatalf("%d worker processes, want 2: %v", len(before), before)
	}

	for i := range 20 {
		if i%4 == 3 {
			p.cmd.Process.Signal(syscall.SIGHUP)
			continue
		}
		if status, body := post(t, "http://"+addr+"/-/reload"); status != http.StatusOK {
			t.Fatalf("reload %d: HTTP %d %q", i, status, body)
		}
	}
	_, body := get(t, "http://"+addr+"/metrics")
	count, _ := metricValue(body, ttft)
	// Within the 3s warm-up a restarted load would keep out of the
	// histogram, requests keep reaching it.
	waitMetric(t, addr, ttft, func(v string) bool { return v != count }, 1500*time.Millisecond)
	if after := children(t, p.cmd.Process.Pid); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("worker processes changed across unchanged reloads: %v -> %v", before, after)
	}
	if n := strings.Count(p.output.String(), "configuration unchanged"); n < 15 {
		t.Errorf("%d reloads logged \"configuration unchanged\", want at least 15:\n%s", n, p.output.String())
	}
	if strings.Count(p.output.String(), "load started") != 1 {
		t.Errorf("the load was started again:\n%s", p.output.String())
	}
	if v, _ := metricValue(body, "llmprobe_config_last_reload_successful"); v != "1" {
		t.Errorf("llmprobe_config_last_reload_successful = %s after unchanged reloads", v)
	}

	// Rewriting the same bytes (a new mtime, same settings) is no change
	// either; a changed rate is.
	writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(warmupConfig, simAddr, 20)+"# a comment\n")
	if status, _ := post(t, "http://"+addr+"/-/reload"); status != http.StatusOK {
		t.Fatalf("reload of a commented file: HTTP %d", status)
	}
	if after := children(t, p.cmd.Process.Pid); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a comment restarted the workers: %v -> %v", before, after)
	}
	writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(warmupConfig, simAddr, 30))
	if status, _ := post(t, "http://"+addr+"/-/reload"); status != http.StatusOK {
		t.Fatalf("reload of a changed file: HTTP %d", status)
	}
	waitMetric(t, addr, `llmprobe_configured_rate_requests_per_second{scenario="s",target="reference"}`, func(v string) bool { return v == "30" }, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := children(t, p.cmd.Process.Pid)
		changed := len(after) == 2
		for _, pid := range after {
			for _, old := range before {
				changed = changed && pid != old
			}
		}
		if changed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a changed file did not restart the workers: %v -> %v", before, after)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// badConfig has four problems, in three sections.
const badConfig = `
targets:
  - name: reference
    url: ftp://127.0.0.1:1
scenarios: []
`

var badConfigFields = []string{"targets[0].url", "targets[0].model", "scenarios:", "probes:"}

// onePerLine checks that each of fields is reported on a line of its own,
// and that no line carries a literal "\n" (several problems in one logfmt
// value).
func onePerLine(t *testing.T, what, output string, fields []string) {
	t.Helper()
	lines := strings.Split(output, "\n")
	for _, line := range lines {
		if strings.Contains(line, `\n`) {
			t.Errorf("%s: a line holds several problems:\n%s", what, line)
		}
	}
	for _, f := range fields {
		n := 0
		for _, line := range lines {
			if strings.Contains(line, f) {
				n++
				for _, other := range fields {
					if other != f && strings.Contains(line, other) {
						t.Errorf("%s: %q and %q share a line:\n%s", what, f, other, line)
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no line reports %q:\n%s", what, f, output)
		}
	}
}

// TestConfigErrorsOnePerLine: --config.check, a failed start-up and a failed
// reload report every problem of a configuration on its own line.
func TestConfigErrorsOnePerLine(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yml", badConfig)
	out, err := exec.Command(binary, "--config.check", "--config.file="+bad).CombinedOutput()
	if err == nil {
		t.Fatalf("--config.check passed a bad file:\n%s", out)
	}
	onePerLine(t, "--config.check", string(out), badConfigFields)
	if !strings.Contains(string(out), "configuration is invalid (4 problems)") {
		t.Errorf("--config.check does not count the problems:\n%s", out)
	}

	p := start(t, binary, "--config.file="+bad, "--web.listen-address="+freeAddr(t))
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("start-up accepted a bad file")
	}
	if p.cmd.ProcessState.ExitCode() == 0 {
		t.Error("start-up with a bad file exited 0")
	}
	onePerLine(t, "start-up", p.output.String(), badConfigFields)

	simAddr := freeAddr(t)
	start(t, binary, "simulate", "--model=llmprobe-reference", "--listen-address="+simAddr)
	waitHTTP(t, "http://"+simAddr+"/v1/models", 10*time.Second)
	cfg := writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(reloadConfig, simAddr, "s", "s"))
	addr := freeAddr(t)
	p = start(t, binary, "--config.file="+cfg, "--web.listen-address="+addr, "--workers=0")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	writeFile(t, dir, "llmprobe.yml", badConfig)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, addr, "llmprobe_config_last_reload_successful", func(v string) bool { return v == "0" }, 5*time.Second)
	waitLog(t, p, "probes:", 5*time.Second)
	onePerLine(t, "reload", p.output.String(), badConfigFields)
}
