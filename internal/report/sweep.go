package report

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// SweepSchema names the sweep JSON layout.
const SweepSchema = "llmprobe.sweep/v1"

// Sweep is a ladder of rates (or concurrencies) for one scenario.
type Sweep struct {
	Schema   string `json:"schema"`
	Scenario string `json:"scenario"`
	// Unit is what the ladder climbs: "req/s" (open loop) or
	// "concurrency" (closed loop).
	Unit string `json:"unit"`
	// GoodputTarget is the share of requests that must meet every
	// threshold of every objective at the knee.
	GoodputTarget float64 `json:"goodput_target"`
	Steps         []Step  `json:"steps"`
	// Knee is the highest step value at which every SLO objective held at
	// GoodputTarget with the client not saturated; absent when none did.
	Knee *float64 `json:"knee,omitempty"`
	// KneeNote says what bounds the knee (a saturated client above it
	// means the engine's limit was not measured there).
	KneeNote string `json:"knee_note"`
	// StoppedEarly: goodput had collapsed (below target) for two steps in
	// a row, so the higher steps were not run.
	StoppedEarly bool `json:"stopped_early"`
}

// Step is one rung: its value and its full report.
type Step struct {
	Value float64 `json:"value"`
	// Goodput is the lowest ratio over the scenario's objectives (the
	// success ratio when it has none), over its probes.
	Goodput float64 `json:"goodput"`
	// TTFTP99 is the highest TTFT p99 over the scenario's probes, seconds.
	TTFTP99 float64 `json:"ttft_p99"`
	// Holds: Goodput ≥ the target.
	Holds bool `json:"holds"`
	// ClientSaturated: the figures include client delay; such a step is
	// never taken for the engine's limit.
	ClientSaturated bool    `json:"client_saturated"`
	Report          *Report `json:"report"`
}

// NewStep summarises one step's report.
func NewStep(value float64, r *Report, target float64) Step {
	s := Step{Value: value, Report: r, Goodput: math.Inf(1), ClientSaturated: r.Saturation.Saturated}
	for _, p := range r.Probes {
		s.TTFTP99 = math.Max(s.TTFTP99, p.TTFT.P99)
		if len(p.Goodput) == 0 {
			var all uint64
			for _, n := range p.Requests {
				all += n
			}
			ratio := 0.0
			if all > 0 {
				ratio = float64(p.Requests["success"]) / float64(all)
			}
			s.Goodput = math.Min(s.Goodput, ratio)
		}
		for _, g := range p.Goodput {
			s.Goodput = math.Min(s.Goodput, g.Ratio)
		}
	}
	if math.IsInf(s.Goodput, 1) {
		s.Goodput = 0
	}
	s.Holds = s.Goodput >= target
	return s
}

// Collapsed reports whether the last two steps both missed the target:
// the ladder stops climbing.
func (s *Sweep) Collapsed() bool {
	n := len(s.Steps)
	return n >= 2 && !s.Steps[n-1].Holds && !s.Steps[n-2].Holds
}

// Finish sets the knee.
func (s *Sweep) Finish() {
	s.Knee, s.KneeNote = nil, ""
	var saturatedAt []string
	for _, st := range s.Steps {
		if st.ClientSaturated {
			saturatedAt = append(saturatedAt, FormatFloat(st.Value))
			continue
		}
		if st.Holds && (s.Knee == nil || st.Value > *s.Knee) {
			v := st.Value
			s.Knee = &v
		}
	}
	switch {
	case s.Knee == nil && len(saturatedAt) > 0:
		s.KneeNote = fmt.Sprintf("no knee: no unsaturated step held the SLOs (client saturated at %s %s)", strings.Join(saturatedAt, ", "), s.Unit)
	case s.Knee == nil:
		s.KneeNote = "no knee: the SLOs did not hold at any step"
	case len(saturatedAt) > 0:
		s.KneeNote = fmt.Sprintf("knee at %s %s; the client saturated at %s %s, so the engine's limit above that was not measured", FormatFloat(*s.Knee), s.Unit, strings.Join(saturatedAt, ", "), s.Unit)
	default:
		s.KneeNote = fmt.Sprintf("knee at %s %s", FormatFloat(*s.Knee), s.Unit)
	}
}

// WriteChart draws TTFT p99 and goodput against the step value as text
// bars, one line per step.
func WriteChart(w io.Writer, s *Sweep) error {
	const width = 30
	var maxTTFT float64
	for _, st := range s.Steps {
		maxTTFT = math.Max(maxTTFT, st.TTFTP99)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "%s\tTTFT p99\t\tgoodput\t(target %s)\t\n", s.Unit, FormatFloat(s.GoodputTarget))
	for _, st := range s.Steps {
		t := 0
		if maxTTFT > 0 {
			t = int(math.Round(st.TTFTP99 / maxTTFT * width))
		}
		g := int(math.Round(math.Max(0, math.Min(1, st.Goodput)) * width))
		mark := ""
		switch {
		case st.ClientSaturated:
			mark = "client saturated: not the engine's limit"
		case !st.Holds:
			mark = "SLO missed"
		}
		if s.Knee != nil && st.Value == *s.Knee && !st.ClientSaturated {
			mark = "← knee"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%s\t%s\n", FormatFloat(st.Value), Dur(st.TTFTP99), bar(t, width), st.Goodput, bar(g, width), mark)
	}
	tw.Flush()
	_, err := fmt.Fprintln(w, s.KneeNote)
	return err
}

func bar(n, width int) string {
	return strings.Repeat("█", n) + strings.Repeat("·", width-n)
}

// WriteSweepCSV writes every step's probes as report CSV rows, the step
// value first.
func WriteSweepCSV(w io.Writer, s *Sweep) error {
	rows := [][]string{append([]string{"step_value", "step_holds", "step_client_saturated"}, CSVHeader()...)}
	for _, st := range s.Steps {
		for _, row := range CSVRows(st.Report) {
			rows = append(rows, append([]string{FormatFloat(st.Value), fmt.Sprint(st.Holds), fmt.Sprint(st.ClientSaturated)}, row...))
		}
	}
	return writeCSVRows(w, rows)
}
