package config

import (
	"path/filepath"
	"testing"
)

// The shipped examples load as they are (credentials files are read per
// request, not at load, so the absent /etc/llmprobe/api-key is fine).
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../deploy/examples/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d examples, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := LoadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Pairs()) == 0 {
				t.Error("no probed pairs")
			}
			if _, err := c.Redacted(); err != nil {
				t.Errorf("Redacted: %v", err)
			}
		})
	}
}
