package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium renders pages for the status test: Debian's package.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: ./test.sh installs Debian's package (apt-get install chromium)")
	return ""
}

// headless runs chromium headless on url with the extra arguments and
// returns its standard output.
func headless(t *testing.T, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}, args...)
	if os.Geteuid() == 0 {
		all = append(all, "--no-sandbox") // chromium refuses to run as root with its sandbox
	}
	cmd := exec.CommandContext(ctx, chromium(t), append(all, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// The status page, rendered by a real browser from a daemon with worker
// processes, shows each probe with its figures, the failures of the
// failing one with their error text, each worker's saturation and the
// reload state.
func TestStatusPageInHeadlessChromium(t *testing.T) {
	url := referenceEndpoint(t, nil)
	dir := t.TempDir()
	cfgFile := writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(`
targets:
  - {name: sim, url: %q, model: m}
  - {name: wrong-model, url: %[1]q, model: absent}
scenarios:
  - name: chat
    load: {mode: open, rate: 10, max_in_flight: 32}
    workload: {input_tokens: {value: 16}, output_tokens: {value: 8}}
probes: [{targets: [sim, wrong-model], scenarios: [chat]}]
`, url))
	addr := freeAddr(t)
	start(t, binary, "--config.file="+cfgFile, "--workers=2", "--web.listen-address="+addr)
	waitHTTP(t, "http://"+addr+"/-/ready", 30*time.Second)
	waitMetric(t, addr, `llmprobe_requests_total{outcome="success",scenario="chat",target="sim"}`, func(v string) bool { return positive(v) && v != "1" && v != "2" }, 30*time.Second)
	waitMetric(t, addr, `llmprobe_requests_total{outcome="http_4xx",scenario="chat",target="wrong-model"}`, positive, 30*time.Second)

	dom := headless(t, "http://"+addr+"/", "--dump-dom")
	row := func(target string) string {
		m := regexp.MustCompile(`(?s)<tr class="probe" data-target="` + regexp.QuoteMeta(target) + `" data-scenario="chat">(.*?)</tr>`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("the rendered page has no row for probe %s × chat:\n%s", target, dom)
		}
		return m[1]
	}
	cell := func(row, class string) string {
		m := regexp.MustCompile(`<td class="` + class + `">([^<]*)</td>`).FindStringSubmatch(row)
		if m == nil {
			t.Fatalf("no %s cell in %s", class, row)
		}
		return m[1]
	}
	duration := regexp.MustCompile(`^[0-9.]+(ms|µs|s)$`)
	sim := row("sim")
	for _, class := range []string{"ttft-p50", "ttft-p99", "tpot-p50", "e2e-p99"} {
		if v := cell(sim, class); !duration.MatchString(v) {
			t.Errorf("sim %s: %q is not a duration", class, v)
		}
	}
	if !regexp.MustCompile(`<span class="outcome" data-outcome="success">success [1-9][0-9]*</span>`).MatchString(sim) {
		t.Errorf("sim's successes are not shown: %s", sim)
	}
	if v := cell(sim, "inflight"); !regexp.MustCompile(`^[0-9]+ / 32$`).MatchString(v) {
		t.Errorf("sim in flight %q", v)
	}
	bad := row("wrong-model")
	if !regexp.MustCompile(`data-outcome="http_4xx">http_4xx [1-9]`).MatchString(bad) || cell(bad, "ttft-p50") != "-" {
		t.Errorf("the failing probe's row: %s", bad)
	}
	failures := regexp.MustCompile(`(?s)<table class="failures" data-target="wrong-model" data-scenario="chat">(.*?)</table>`).FindStringSubmatch(dom)
	if failures == nil || !strings.Contains(failures[1], "The model `absent` does not exist.") || !strings.Contains(failures[1], "<td>404</td>") {
		t.Fatalf("the failing probe's failures are not listed with status and error text:\n%s", dom)
	}
	if n := strings.Count(failures[1], `<tr class="failure">`); n < 1 || n > 20 {
		t.Errorf("%d failures listed, want 1 to 20", n)
	}
	if n := strings.Count(dom, `<tr class="worker">`); n != 2 {
		t.Errorf("%d worker rows, want 2", n)
	}
	// Kernel stamps are the default on Linux: every worker's latest window
	// shows its read lag (or "-" for a window without a text event).
	for _, m := range regexp.MustCompile(`<td class="readlag">([^<]*)</td>`).FindAllStringSubmatch(dom, -1) {
		if !regexp.MustCompile(`^(-|[0-9.]+(ms|µs|s) \([0-9]+\))$`).MatchString(m[1]) {
			t.Errorf("worker read lag cell %q", m[1])
		}
	}
	if !regexp.MustCompile(`<td class="readlag">[0-9.]+(ms|µs|s) \([0-9]+\)</td>`).MatchString(dom) {
		t.Errorf("no worker shows a read lag p99")
	}
	if !strings.Contains(dom, "last reload successful") || !strings.Contains(dom, cfgFile) {
		t.Errorf("the reload state is not shown")
	}
	if !strings.Contains(dom, `href="/metrics"`) {
		t.Errorf("the landing page's links are gone")
	}
	if shot := os.Getenv("LLMPROBE_STATUS_SCREENSHOT"); shot != "" {
		// Refreshes the README's screenshot: go test -run StatusPage with
		// this set to the file.
		abs, _ := filepath.Abs(shot)
		headless(t, "http://"+addr+"/", "--screenshot="+abs, "--window-size=1400,1100", "--hide-scrollbars")
	}
}
