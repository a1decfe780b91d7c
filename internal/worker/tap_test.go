package worker

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

type fakeTap struct {
	mu      sync.Mutex
	names   map[uint32]string
	records map[string]int
	details map[string]string
	samples map[int]int
}

func (f *fakeTap) Probes(ids []uint32, probes []config.Probe) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, id := range ids {
		f.names[id] = probes[i].Target.Name
	}
}

func (f *fakeTap) Send(record.Send) {}

func (f *fakeTap) Record(r *record.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := f.names[r.Probe]
	f.records[name]++
	if r.Outcome != prober.OutcomeSuccess {
		f.details[name] = r.Detail
	}
}

func (f *fakeTap) Sample(worker int, _ *record.Sample, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples[worker]++
}

// The tap sees every record the metrics count, named by its probe, with a
// failure's detail, and every worker's samples, in process and with worker
// processes alike.
func TestTapSeesWhatTheMetricsSee(t *testing.T) {
	ep := newEndpoint(t, 2*time.Millisecond, time.Millisecond)
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			h := newPool(t, workers, 100*time.Millisecond)
			tap := &fakeTap{names: map[uint32]string{}, records: map[string]int{}, details: map[string]string{}, samples: map[int]int{}}
			h.pool.opts.Tap = tap
			cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: good, url: %q, model: m}, {name: bad, url: %[1]q, model: absent}]
scenarios:
  - name: s
    load: {mode: open, rate: 40}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [good, bad], scenarios: [s]}]
`, ep.URL)), "")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.pool.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1200 * time.Millisecond)
			h.pool.Shutdown()
			tap.mu.Lock()
			defer tap.mu.Unlock()
			for _, target := range []string{"good", "bad"} {
				want := h.value(t, "llmprobe_requests_total", map[string]string{"target": target, "scenario": "s", "outcome": map[string]string{"good": "success", "bad": "http_4xx"}[target]})
				if tap.records[target] == 0 || float64(tap.records[target]) != want {
					t.Errorf("%s: the tap saw %d records, the metrics %v", target, tap.records[target], want)
				}
			}
			if d := tap.details["bad"]; !strings.Contains(d, "does not exist") {
				t.Errorf("the failure's detail reached the tap as %q", d)
			}
			for w := 0; w < max(1, workers); w++ {
				if tap.samples[w] == 0 {
					t.Errorf("no sample of worker %d reached the tap", w)
				}
			}
		})
	}
}
