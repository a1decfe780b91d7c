package config

import (
	"strings"
	"testing"
)

// Workers reload the source a config came from; it must be the running one.
func TestSourceIsWhatWasLoaded(t *testing.T) {
	c, err := Default("http://127.0.0.1:4321")
	if err != nil {
		t.Fatal(err)
	}
	data, dir := c.Source()
	if !strings.Contains(string(data), "url: http://127.0.0.1:4321") || dir != "" {
		t.Fatalf("Default's source lacks its URL (dir %q):\n%s", dir, data)
	}
	again, err := LoadBytes(data, dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Targets[0].URL != c.Targets[0].URL || len(again.Probes()) != len(c.Probes()) {
		t.Errorf("reloading the source gave another config")
	}
}

func TestContinuousUsageStatsOption(t *testing.T) {
	c, err := LoadBytes([]byte(`
targets: [{name: v, url: "http://127.0.0.1:8000", model: m, continuous_usage_stats: true}]
scenarios: [{name: s, load: {rate: 1}}]
probes: [{targets: [v], scenarios: [s]}]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Targets[0].ContinuousUsageStats {
		t.Error("continuous_usage_stats: true was not kept")
	}
}
