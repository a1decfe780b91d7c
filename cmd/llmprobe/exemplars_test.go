package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestExemplarsReachPrometheus: a real Prometheus with exemplar storage
// scrapes the daemon on its embedded default and holds, for the TTFT
// histogram, exemplars whose trace_id is a W3C trace id, which a trace back
// end can be asked for.
func TestExemplarsReachPrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: ./test.sh installs Debian's package (apt-get install prometheus)")
	}
	dir := t.TempDir()
	probeAddr := freeAddr(t)
	start(t, binary, "--web.listen-address="+probeAddr)
	waitHTTP(t, "http://"+probeAddr+"/-/ready", 10*time.Second)

	promCfg := writeFile(t, dir, "prometheus.yml", fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: llmprobe
    static_configs:
      - targets: ['%s']
`, probeAddr))
	promAddr := freeAddr(t)
	start(t, promBin, "--config.file="+promCfg, "--storage.tsdb.path="+dir+"/data",
		"--web.listen-address="+promAddr, "--enable-feature=exemplar-storage")
	waitHTTP(t, "http://"+promAddr+"/-/ready", 30*time.Second)

	traceID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ids := queryExemplars(t, promAddr, `llmprobe_time_to_first_token_seconds_bucket{target="reference"}`)
		good := 0
		for _, id := range ids {
			if traceID.MatchString(id) && id != "00000000000000000000000000000000" {
				good++
			}
		}
		if good > 0 && good == len(ids) {
			t.Logf("%d TTFT exemplars in Prometheus, e.g. trace_id %s", good, ids[0])
			return
		}
		if len(ids) > good {
			t.Fatalf("exemplar trace ids %v are not all W3C trace ids", ids)
		}
		if time.Now().After(deadline) {
			t.Fatal("no TTFT exemplar in Prometheus within 60s (the default config's warm-up is 10s)")
		}
		time.Sleep(time.Second)
	}
}

// queryExemplars returns the trace_id of every exemplar Prometheus holds for
// query over the last 10 minutes.
func queryExemplars(t *testing.T, addr, query string) []string {
	t.Helper()
	now := time.Now()
	q := url.Values{"query": {query}, "start": {strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix(), 10)}}
	status, body := get(t, "http://"+addr+"/api/v1/query_exemplars?"+q.Encode())
	if status != 200 {
		t.Fatalf("query_exemplars: HTTP %d: %s", status, body)
	}
	var resp struct {
		Data []struct {
			Exemplars []struct {
				Labels map[string]string `json:"labels"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range resp.Data {
		for _, e := range s.Exemplars {
			ids = append(ids, e.Labels["trace_id"])
		}
	}
	return ids
}
