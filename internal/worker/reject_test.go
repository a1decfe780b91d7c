package worker

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// A reload that fails planning changes nothing on /metrics: the configured
// gauges keep the running configuration's values, and the rejected
// configuration's new probes leave no series behind.
func TestRejectedReloadLeavesMetricsAlone(t *testing.T) {
	ep := newEndpoint(t, 2*time.Millisecond, time.Millisecond)
	for _, workers := range []int{0, 1} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			h := newPool(t, workers, 200*time.Millisecond)
			if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 5}")); err != nil {
				t.Fatal(err)
			}
			bad, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets:
  - {name: ref, url: %q, model: m}
  - name: other
    url: %q
    model: m
    http_client_config: {tls_config: {ca_file: /nonexistent/ca.pem}}
scenarios:
  - name: s
    load: {mode: open, rate: 99}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [ref, other], scenarios: [s]}]
`, ep.URL, ep.URL)), "")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.pool.Apply(bad); err == nil {
				t.Fatal("a configuration with a missing CA file was applied")
			}
			if v := h.value(t, "llmprobe_configured_rate_requests_per_second", map[string]string{"target": "ref", "scenario": "s"}); v != 5 {
				t.Errorf("configured rate %v after the rejected reload, want the running 5", v)
			}
			if v := h.value(t, "llmprobe_worker_configured_rate_requests_per_second", map[string]string{"worker": "0"}); v != 5 {
				t.Errorf("worker configured rate %v after the rejected reload, want the running 5", v)
			}
			for _, name := range []string{"llmprobe_configured_rate_requests_per_second", "llmprobe_requests_total", "llmprobe_max_in_flight"} {
				if v := h.value(t, name, map[string]string{"target": "other"}); !math.IsNaN(v) {
					t.Errorf("%s{target=\"other\"} = %v: the rejected configuration left a series", name, v)
				}
			}
		})
	}
}
