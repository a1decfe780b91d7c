package load_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
)

// Replicas of one configuration draw different arrival sequences (and so
// prompts, from the same random stream); one replica name draws the same
// sequence every time, for reproducible runs.
func TestReplicasDrawTheirOwnSequences(t *testing.T) {
	url := endpoint(t, time.Millisecond)
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: ref, url: %q, model: m}]
scenarios:
  - name: s
    load: {mode: open, arrival: poisson, rate: 100}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 2}}
probes: [{targets: [ref], scenarios: [s]}]
`, url)), "")
	if err != nil {
		t.Fatal(err)
	}
	gaps := func(replica string) []time.Duration {
		s, _ := runSink(t, cfg, load.Options{Workers: 1, Drain: time.Second, Replica: replica}, 300*time.Millisecond, nil)
		var intended []int64
		for _, r := range s.all() {
			intended = append(intended, r.Intended)
		}
		slices.Sort(intended)
		if len(intended) < 8 {
			t.Fatalf("replica %q: %d requests in 300ms at 100/s", replica, len(intended))
		}
		var g []time.Duration
		for i := 1; i < 8; i++ {
			g = append(g, time.Duration(intended[i]-intended[i-1]))
		}
		return g
	}
	a1, a2, b := gaps("pod-a"), gaps("pod-a"), gaps("pod-b")
	if !slices.Equal(a1, a2) {
		t.Errorf("one replica name drew different sequences:\n%v\n%v", a1, a2)
	}
	if slices.Equal(a1, b) {
		t.Errorf("two replicas drew the same sequence: %v", a1)
	}
	if load.ReplicaSalt("") != 0 {
		t.Errorf("no replica name must leave the seeds as they were")
	}
}
