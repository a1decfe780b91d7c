package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSafeConfigReload(t *testing.T) {
	reg := prometheus.NewRegistry()
	sc := NewSafeConfig(reg)
	if sc.Get() != nil {
		t.Fatal("config before first load")
	}
	path := filepath.Join(t.TempDir(), "llmprobe.yml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	reload := func() error {
		_, err := sc.ReloadApply(func() (*Config, error) { return LoadFile(path) }, nil, nil)
		return err
	}
	write(minimal(""))
	if err := reload(); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	good := sc.Get()
	if good == nil || good.Targets[0].Name != "vllm" {
		t.Fatalf("config after reload = %+v", good)
	}
	if v := testutil.ToFloat64(sc.reloadSuccess); v != 1 {
		t.Errorf("last_reload_successful = %v after success, want 1", v)
	}
	stamp := testutil.ToFloat64(sc.reloadSeconds)
	if stamp <= 0 {
		t.Errorf("success timestamp = %v, want > 0", stamp)
	}

	write("targets: [")
	if err := reload(); err == nil {
		t.Fatal("bad reload returned no error")
	}
	if sc.Get() != good {
		t.Error("a failed reload replaced the running config")
	}
	if v := testutil.ToFloat64(sc.reloadSuccess); v != 0 {
		t.Errorf("last_reload_successful = %v after failure, want 0", v)
	}
	if v := testutil.ToFloat64(sc.reloadSeconds); v != stamp {
		t.Errorf("success timestamp moved on failure: %v -> %v", stamp, v)
	}
	write(minimal("api: openai-completions"))
	if _, err := sc.ReloadApply(func() (*Config, error) { return LoadFile(path) }, func(*Config) error { return errors.New("refused") }, nil); err == nil || sc.Get() != good {
		t.Errorf("a reload whose load failed to start: err %v, config kept %v", err, sc.Get() == good)
	}

	// Recovery: a fixed file loads again.
	write(minimal("api: openai-completions"))
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if sc.Get().Targets[0].API != APIOpenAICompletions || testutil.ToFloat64(sc.reloadSuccess) != 1 {
		t.Error("recovered reload not applied")
	}

	// Both gauges are on the given registry under their documented names.
	n, err := testutil.GatherAndCount(reg, "llmprobe_config_last_reload_successful", "llmprobe_config_last_reload_success_timestamp_seconds")
	if err != nil || n != 2 {
		t.Errorf("registered series = %d (%v), want 2", n, err)
	}
}
