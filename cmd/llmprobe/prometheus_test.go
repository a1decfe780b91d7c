package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestRealPrometheusScrape runs the product as a user would: the reference
// endpoint as its own process with a known TTFT, llmprobe probing it, and a
// real Prometheus (native histograms on) scraping llmprobe. The TTFT quantile
// Prometheus computes from what it scraped must agree with the endpoint's
// configured TTFT.
func TestRealPrometheusScrape(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: ./test.sh installs Debian's package (apt-get install prometheus)")
	}
	const ttft = 120 * time.Millisecond
	dir := t.TempDir()

	simAddr := freeAddr(t)
	start(t, binary, "simulate", "--model=llmprobe-reference", "--listen-address="+simAddr, "--ttft="+ttft.String(), "--itl=5ms", "--seed=7")
	waitHTTP(t, "http://"+simAddr+"/v1/models", 10*time.Second)

	cfg := writeFile(t, dir, "llmprobe.yml", fmt.Sprintf(`
targets:
  - name: reference
    url: http://%s
    model: llmprobe-reference
scenarios:
  - name: steady
    load: {mode: open, arrival: poisson, rate: 8}
    workload:
      input_tokens: {distribution: fixed, value: 32}
      output_tokens: {distribution: fixed, value: 16}
probes:
  - targets: [reference]
    scenarios: [steady]
`, simAddr))
	probeAddr := freeAddr(t)
	start(t, binary, "--config.file="+cfg, "--web.listen-address="+probeAddr)
	waitHTTP(t, "http://"+probeAddr+"/-/ready", 10*time.Second)

	promCfg := writeFile(t, dir, "prometheus.yml", fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: llmprobe
    static_configs:
      - targets: ['%s']
`, probeAddr))
	promAddr := freeAddr(t)
	start(t, promBin, "--config.file="+promCfg, "--storage.tsdb.path="+dir+"/data",
		"--web.listen-address="+promAddr, "--enable-feature=native-histograms")
	waitHTTP(t, "http://"+promAddr+"/-/ready", 30*time.Second)

	// Wait for enough scraped requests, then ask Prometheus for the median.
	quantile := `histogram_quantile(0.5, sum(rate(llmprobe_time_to_first_token_seconds{target="reference",scenario="steady"}[30s])))`
	deadline := time.Now().Add(60 * time.Second)
	var got float64
	for {
		if v, ok := promQuery(t, promAddr, `sum(llmprobe_requests_total{outcome="success"})`); ok && v >= 60 {
			if got, ok = promQuery(t, promAddr, quantile); ok && !math.IsNaN(got) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never had 60 successful requests and a TTFT quantile within 60s")
		}
		time.Sleep(time.Second)
	}
	t.Logf("Prometheus TTFT median from native buckets: %.4fs (configured %s)", got, ttft)
	// Native buckets of factor ~1.09 bound the interpolation error near 9%.
	if rel := math.Abs(got-ttft.Seconds()) / ttft.Seconds(); rel > 0.1 {
		t.Errorf("Prometheus' TTFT median = %.4fs, configured %.4fs (off by %.1f%%)", got, ttft.Seconds(), rel*100)
	}
	if up, ok := promQuery(t, promAddr, `up{job="llmprobe"}`); !ok || up != 1 {
		t.Errorf("up = %v (present %v), want 1", up, ok)
	}
}

// promQuery runs an instant query and returns its single scalar result.
func promQuery(t *testing.T, addr, query string) (float64, bool) {
	t.Helper()
	status, body := get(t, "http://"+addr+"/api/v1/query?query="+url.QueryEscape(query))
	if status != 200 {
		t.Fatalf("query %s: HTTP %d: %s", query, status, body)
	}
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]interface{} `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("query %s: %v", query, err)
	}
	if len(resp.Data.Result) != 1 {
		return 0, false
	}
	s, _ := resp.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
