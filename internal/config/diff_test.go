package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Which probes a reload may keep running: those configured exactly as
// before, and none once a file the configuration names has changed.
func TestUnchanged(t *testing.T) {
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.jsonl")
	if err := os.WriteFile(rows, []byte(`{"prompt":"hello","output_tokens":4}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := func(rate string) []byte {
		return []byte(`
targets: [{name: t, url: "http://127.0.0.1:1", model: m}]
scenarios:
  - {name: a, load: {rate: 1}}
  - {name: b, load: {rate: ` + rate + `}, workload: {dataset: {path: rows.jsonl, format: rows}}}
probes: [{targets: [t], scenarios: [a, b]}]
`)
	}
	load := func(rate string) *Config {
		c, err := LoadBytes(yaml(rate), dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	running := load("1")
	if got := Unchanged(running, load("1")); !got[[2]string{"t", "a"}] || !got[[2]string{"t", "b"}] {
		t.Errorf("the same configuration: unchanged %v, want both probes", got)
	}
	if got := Unchanged(running, load("2")); !got[[2]string{"t", "a"}] || got[[2]string{"t", "b"}] {
		t.Errorf("b's rate changed: unchanged %v, want a only", got)
	}
	// The dataset is rewritten: what was planned from it is stale.
	if err := os.WriteFile(rows, []byte(`{"prompt":"hello again","output_tokens":8}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Unchanged(running, load("1")); len(got) != 0 {
		t.Errorf("a named file changed: unchanged %v, want none (the whole load restarts)", got)
	}
	sc := NewSafeConfig(nil)
	if _, err := sc.ReloadApply(func() (*Config, error) { return running, nil }, nil, nil); err != nil {
		t.Fatal(err)
	}
	if applied, err := sc.ReloadApply(func() (*Config, error) { return load("1"), nil }, nil, nil); err != nil || !applied {
		t.Errorf("reload after the dataset changed: applied %v, %v; want applied", applied, err)
	}
	if applied, err := sc.ReloadApply(func() (*Config, error) { return load("1"), nil }, nil, nil); err != nil || applied {
		t.Errorf("reload of the same file again: applied %v, %v; want a no-op", applied, err)
	}
}
