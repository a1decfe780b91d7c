package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The shipped examples load as they are (credentials files are read per
// request, not at load, so the absent /etc/llmprobe/api-key is fine).
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../../deploy/examples/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d examples, want at least 6", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := LoadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Probes()) == 0 {
				t.Error("no probes")
			}
			if _, err := c.Redacted(); err != nil {
				t.Errorf("Redacted: %v", err)
			}
		})
	}
}

// Each example says at its top what it was checked against and names the
// stream fixtures (internal/prober/testdata/streams) that cover its server's format;
// those must exist, so an example cannot point at a format nobody tests.
func TestExamplesNameTheirFixtures(t *testing.T) {
	files, err := filepath.Glob("../../deploy/examples/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vllm", "sglang", "llamacpp", "tgi", "ollama", "openai-saas"} {
		found := false
		for _, f := range files {
			found = found || filepath.Base(f) == want+".yml"
		}
		if !found {
			t.Errorf("no deploy/examples/%s.yml", want)
		}
	}
	fixture := regexp.MustCompile(`[a-z0-9-]+\.sse`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var header strings.Builder
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "#") {
				break
			}
			header.WriteString(line + "\n")
		}
		h := header.String()
		if !strings.Contains(h, "Checked against") || !strings.Contains(h, "internal/prober/testdata/streams/") {
			t.Errorf("%s: the header comment should say what it was checked against and name its internal/prober/testdata/streams fixtures", f)
		}
		names := fixture.FindAllString(h, -1)
		if len(names) == 0 {
			t.Errorf("%s: names no .sse fixture", f)
		}
		for _, n := range names {
			if _, err := os.Stat(filepath.Join("..", "prober", "testdata", "streams", n)); err != nil {
				t.Errorf("%s: names fixture %s: %v", f, n, err)
			}
		}
	}
}
