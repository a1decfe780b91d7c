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
	if again.Targets[0].URL != c.Targets[0].URL || len(again.Pairs()) != len(c.Pairs()) {
		t.Errorf("reloading the source gave another config")
	}
}
