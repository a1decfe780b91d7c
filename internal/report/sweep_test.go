package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func step(v, goodput float64, saturated bool) Step {
	r := &Report{Probes: []Probe{{TTFT: Quantiles{P99: v / 1000}, Goodput: []Goodput{{Objective: "o", Ratio: goodput, Requests: 100}}}}}
	r.Saturation.Saturated = saturated
	return NewStep(v, r, 0.99)
}

// The knee is the highest step that held with the client unsaturated; a
// saturated step never is, however good its goodput looked.
func TestKneeNeverASaturatedStep(t *testing.T) {
	s := &Sweep{Unit: "req/s", GoodputTarget: 0.99, Steps: []Step{step(1, 1, false), step(2, 0.995, false), step(4, 1, true), step(8, 0.5, false)}}
	s.Finish()
	if s.Knee == nil || *s.Knee != 2 {
		t.Fatalf("knee %v, want 2", s.Knee)
	}
	if !strings.Contains(s.KneeNote, "client saturated at 4") {
		t.Errorf("knee note %q does not say where the client saturated", s.KneeNote)
	}
	var out bytes.Buffer
	if err := WriteChart(&out, s); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[2], "← knee") || !strings.Contains(lines[3], "client saturated: not the engine's limit") || !strings.Contains(lines[4], "SLO missed") {
		t.Errorf("chart does not mark the knee, the saturated and the failing step:\n%s", out.String())
	}
}

func TestCollapsedAfterTwoMissedSteps(t *testing.T) {
	s := &Sweep{GoodputTarget: 0.99, Steps: []Step{step(1, 1, false), step(2, 0.5, false)}}
	if s.Collapsed() {
		t.Error("one missed step counted as a collapse")
	}
	s.Steps = append(s.Steps, step(4, 0.2, false))
	if !s.Collapsed() {
		t.Error("two missed steps in a row not counted as a collapse")
	}
	s.Finish()
	if s.Knee == nil || *s.Knee != 1 {
		t.Errorf("knee %v, want 1", s.Knee)
	}
}

func TestNoKnee(t *testing.T) {
	s := &Sweep{Unit: "req/s", GoodputTarget: 0.99, Steps: []Step{step(1, 0.5, false), step(2, 1, true)}}
	s.Finish()
	if s.Knee != nil || !strings.HasPrefix(s.KneeNote, "no knee") {
		t.Errorf("knee %v (%q), want none", s.Knee, s.KneeNote)
	}
}

// The plot is a well-formed SVG or PNG naming its axes.
func TestWritePlot(t *testing.T) {
	s := &Sweep{Scenario: "chat", Unit: "req/s", GoodputTarget: 0.99, Steps: []Step{step(1, 1, false), step(2, 0.995, false), step(4, 1, true)}}
	dir := t.TempDir()
	svg := filepath.Join(dir, "s.svg")
	if err := WritePlot(svg, s); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(svg)
	for _, want := range []string{"<svg", "TTFT p99 (ms)", "goodput", "client saturated"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the SVG has no %q", want)
		}
	}
	png := filepath.Join(dir, "s.png")
	if err := WritePlot(png, s); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(png); !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Error("not a PNG")
	}
	if err := WritePlot(filepath.Join(dir, "s.gif"), s); err == nil {
		t.Error("a .gif plot was accepted")
	}
}
