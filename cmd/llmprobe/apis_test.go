package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// TestEveryAPIEndToEnd runs the binary as a user would, one target per API
// against one reference endpoint process, in worker mode (records cross the
// pipe): every API's requests succeed, with usage that agrees and the
// endpoint's ground-truth stamps read, and nothing fails.
func TestEveryAPIEndToEnd(t *testing.T) {
	simAddr := freeAddr(t)
	start(t, binary, "simulate", "--model=ref", "--listen-address="+simAddr, "--ttft=20ms", "--itl=2ms", "--seed=3")
	waitHTTP(t, "http://"+simAddr+"/v1/models", 10*time.Second)

	var targets, names []string
	for _, api := range config.APIs {
		name := strings.ReplaceAll(string(api), "-", "_")
		names = append(names, name)
		targets = append(targets, fmt.Sprintf("  - {name: %s, url: \"http://%s\", api: %s, model: ref}", name, simAddr, api))
	}
	cfg := writeFile(t, t.TempDir(), "llmprobe.yml", fmt.Sprintf(`
targets:
%s
scenarios:
  - name: s
    load: {mode: open, rate: 10}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 8}}
probes:
  - targets: [%s]
    scenarios: [s]
`, strings.Join(targets, "\n"), strings.Join(names, ", ")))
	addr := freeAddr(t)
	start(t, binary, "--config.file="+cfg, "--web.listen-address="+addr, "--workers=2")
	waitHTTP(t, "http://"+addr+"/-/ready", 10*time.Second)

	atLeast := func(n float64) func(string) bool {
		return func(v string) bool { f, err := strconv.ParseFloat(v, 64); return err == nil && f >= n }
	}
	for _, name := range names {
		body := waitMetric(t, addr, fmt.Sprintf(`llmprobe_requests_total{outcome="success",scenario="s",target="%s"}`, name), atLeast(10), 60*time.Second)
		for _, bad := range []string{"protocol_error", "truncated", "http_4xx", "http_5xx", "connect_error", "timeout"} {
			if v, _ := metricValue(body, fmt.Sprintf(`llmprobe_requests_total{outcome="%s",scenario="s",target="%s"}`, bad, name)); v != "0" {
				t.Errorf("%s: %s = %s", name, bad, v)
			}
		}
		if v, _ := metricValue(body, fmt.Sprintf(`llmprobe_usage_mismatches_total{scenario="s",target="%s"}`, name)); v != "0" {
			t.Errorf("%s: usage mismatches %s", name, v)
		}
		// The endpoint's stamps were read: TTFT bias observed for every
		// successful request after the warm-up.
		if v, ok := metricValue(body, fmt.Sprintf(`llmprobe_ground_truth_ttft_bias_seconds_count{scenario="s",target="%s"}`, name)); !ok || !positive(v) {
			t.Errorf("%s: ground-truth TTFT bias count %q", name, v)
		}
	}
}
