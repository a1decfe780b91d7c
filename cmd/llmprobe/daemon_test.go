package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metricValue returns the value of the exposition line that starts with
// series (name and labels exactly as exposed), or false.
func metricValue(exposition, series string) (string, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.Fields(rest)[0], true
		}
	}
	return "", false
}

func waitMetric(t *testing.T, addr, series string, ok func(string) bool, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, body := get(t, "http://"+addr+"/metrics")
		if v, found := metricValue(body, series); found && ok(v) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never satisfied the condition within %s", series, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func positive(v string) bool { return v != "0" && !strings.HasPrefix(v, "-") }

func TestDefaultModeProbesTheBuiltInEndpoint(t *testing.T) {
	addr := freeAddr(t)
	p := start(t, binary, "--web.listen-address="+addr, "--web.enable-pprof")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	body := waitMetric(t, addr, `llmprobe_requests_total{outcome="success",scenario="default",target="reference"}`, positive, 20*time.Second)
	if !strings.Contains(body, "llmprobe_build_info{") {
		t.Errorf("no llmprobe_build_info on /metrics")
	}
	if !strings.Contains(p.output.String(), "probing the built-in reference endpoint") {
		t.Errorf("the log does not say where it probes:\n%s", p.output.String())
	}
	status, landing := get(t, "http://"+addr+"/")
	if status != 200 || !strings.Contains(landing, `href="/metrics"`) || !strings.Contains(landing, `href="/config"`) {
		t.Errorf("landing page (HTTP %d) lacks links to /metrics and /config:\n%s", status, landing)
	}
	// With --web.enable-pprof the landing page links the Go profiles: they
	// must be served.
	if status, _ := get(t, "http://"+addr+"/debug/pprof/heap"); status != 200 || !strings.Contains(landing, "debug/pprof/heap") {
		t.Errorf("/debug/pprof/heap: HTTP %d (linked from the landing page: %v)", status, strings.Contains(landing, "debug/pprof/heap"))
	}
}

const reloadConfig = `
targets:
  - name: reference
    url: http://%s
    model: llmprobe-reference
    http_client_config:
      authorization:
        type: Bearer
        credentials: s3cret-token-do-not-leak
scenarios:
  - name: %s
    load: {mode: open, rate: 20}
    workload:
      input_tokens: {value: 8}
      output_tokens: {value: 4}
probes:
  - targets: [reference]
    scenarios: [%s]
`

func TestReloadKeepsTheOldConfigOnErrorAndAppliesAGoodOne(t *testing.T) {
	simAddr := freeAddr(t)
	start(t, binary, "simulate", "--model=llmprobe-reference", "--listen-address="+simAddr, "--ttft=5ms", "--itl=1ms")
	waitHTTP(t, "http://"+simAddr+"/v1/models", 10*time.Second)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(reloadConfig, simAddr, "first", "first"))
	addr := freeAddr(t)
	p := start(t, binary, "--config.file="+cfg, "--web.listen-address="+addr, "--web.enable-lifecycle")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	first := `llmprobe_requests_total{outcome="success",scenario="first",target="reference"}`
	waitMetric(t, addr, first, positive, 10*time.Second)

	// A bad file is rejected: 500 that points at the log (which has the
	// reason; the response, open to anyone who reaches the port, does
	// not), gauge 0, old load goes on.
	writeFile(t, dir, "llmprobe.yml", "targets: [{name: reference, url: ftp://nowhere}]\n")
	resp, err := http.Post("http://"+addr+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || strings.TrimSpace(string(reply)) != "reload failed; see the log" {
		t.Errorf("reload of a bad config: HTTP %d %q, want 500 reload failed; see the log", resp.StatusCode, reply)
	}
	waitLog(t, p, "targets[0].url", 5*time.Second) // the reason is in the log
	body := waitMetric(t, addr, "llmprobe_config_last_reload_successful", func(v string) bool { return v == "0" }, 5*time.Second)
	before, _ := metricValue(body, first)
	waitMetric(t, addr, first, func(v string) bool { return v != before }, 10*time.Second)

	// GET is refused.
	if status, _ := get(t, "http://"+addr+"/-/reload"); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: HTTP %d, want 405", status)
	}

	// A good file by SIGHUP: the new scenario runs, the old one is gone.
	writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(reloadConfig, simAddr, "second", "second"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	body = waitMetric(t, addr, `llmprobe_requests_total{outcome="success",scenario="second",target="reference"}`, positive, 10*time.Second)
	if v, _ := metricValue(body, "llmprobe_config_last_reload_successful"); v != "1" {
		t.Errorf("llmprobe_config_last_reload_successful = %s after a good reload", v)
	}
	if _, ok := metricValue(body, first); ok {
		t.Errorf("the removed scenario's series are still exported")
	}

	// The secret never shows: not on /config, /metrics, nor in the log.
	_, page := get(t, "http://"+addr+"/config")
	if !strings.Contains(page, "second") {
		t.Errorf("/config does not show the running config:\n%s", page)
	}
	for where, text := range map[string]string{"/config": page, "/metrics": body, "log": p.output.String()} {
		if strings.Contains(text, "s3cret-token-do-not-leak") {
			t.Errorf("the bearer token appears in %s", where)
		}
	}
}

func TestSIGTERMDrainsAndExits(t *testing.T) {
	simAddr := freeAddr(t)
	// Slow streams (~1s each) so requests are in flight when SIGTERM comes.
	start(t, binary, "simulate", "--model=llmprobe-reference", "--listen-address="+simAddr, "--ttft=100ms", "--itl=200ms")
	waitHTTP(t, "http://"+simAddr+"/v1/models", 10*time.Second)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(reloadConfig, simAddr, "s", "s"))
	addr := freeAddr(t)
	p := start(t, binary, "--config.file="+cfg, "--web.listen-address="+addr, "--shutdown.drain-timeout=2s")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)
	waitMetric(t, addr, `llmprobe_requests_in_flight{scenario="s",target="reference"}`, positive, 10*time.Second)
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("llmprobe did not exit within 10s of SIGTERM")
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("shutdown took %s with a 2s drain bound", took)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", fmt.Sprintf(reloadConfig, "127.0.0.1:1", "s", "s"))
	out, err := exec.Command(binary, "--config.check", "--config.file="+good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Errorf("--config.check on a good file: %v\n%s", err, out)
	}
	bad := writeFile(t, dir, "bad.yml", "targets: []\nbogus: 1\n")
	out, err = exec.Command(binary, "--config.check", "--config.file="+bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bogus") {
		t.Errorf("--config.check on a bad file: err=%v, output does not name the unknown field:\n%s", err, out)
	}
}
