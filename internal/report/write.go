package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmprobe/llmprobe/internal/prober"
)

// WriteJSON writes r as indented JSON (schema: README.md).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteTable writes r for a terminal: per probe its load, books, latency
// quantiles, throughput and goodput, then the saturation verdict.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, p := range r.Probes {
		load := fmt.Sprintf("open loop, %s req/s requested", FormatFloat(p.RequestedRate))
		if p.Mode == "closed" {
			load = fmt.Sprintf("closed loop, concurrency %d", p.Concurrency)
		}
		fmt.Fprintf(w, "%s × %s: %s, %s req/s achieved over %s (after %s warm-up)\n", p.Target, p.Scenario, load,
			FormatFloat(p.AchievedRate), seconds(r.DurationSeconds), seconds(r.WarmupSeconds))
		fmt.Fprintf(w, "  requests: %s; warm-up %d; sent %d, dropped %d, backed off %d\n", outcomes(p.Requests), p.WarmupRequests, p.Sent, p.Dropped, p.BackedOff)
		fmt.Fprintln(tw, "\tp50\tp90\tp99\tmean\tcount\t")
		rows := []struct {
			name string
			q    Quantiles
		}{{"TTFT", p.TTFT}, {"ITL", p.ITL}, {"TPOT", p.TPOT}, {"NTPOT", p.NTPOT}, {"e2e", p.E2E}, {"schedule delay", p.ScheduleDelay}}
		if p.GroundTruthTTFTBias != nil {
			rows = append(rows, struct {
				name string
				q    Quantiles
			}{"TTFT bias (vs endpoint)", *p.GroundTruthTTFTBias})
		}
		if p.ClientReadLag != nil {
			rows = append(rows, struct {
				name string
				q    Quantiles
			}{"client read lag", *p.ClientReadLag})
		}
		for _, row := range rows {
			if row.q.Count == 0 {
				fmt.Fprintf(tw, "  %s\t-\t-\t-\t-\t0\t\n", row.name)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t\n", row.name, Dur(row.q.P50), Dur(row.q.P90), Dur(row.q.P99), Dur(row.q.Mean), row.q.Count)
		}
		tw.Flush()
		fmt.Fprintf(w, "  output tokens/s: %s\n", FormatFloat(p.OutputTokensPerSecond))
		for _, g := range p.Goodput {
			fmt.Fprintf(w, "  goodput %s: %.4f (%d of %d)\n", g.Objective, g.Ratio, g.Good, g.Requests)
		}
		if p.SaturatedRequests > 0 {
			fmt.Fprintf(w, "  measured while saturated: %d requests\n", p.SaturatedRequests)
		}
	}
	for _, ws := range r.Saturation.Workers {
		state := "not saturated"
		if ws.SaturatedWindows > 0 {
			state = fmt.Sprintf("SATURATED in %d windows", ws.SaturatedWindows)
		}
		fmt.Fprintf(w, "client worker %d: %s (%d of %d windows over a threshold)", ws.Worker, state, ws.BadWindows, ws.Windows)
		if len(ws.Examples) > 0 {
			fmt.Fprintf(w, "; %s", strings.Join(ws.Examples, "; "))
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "verdict: %s\n", r.Verdict)
	return err
}

// CSVHeader is the first row of WriteCSV.
func CSVHeader() []string {
	h := []string{"target", "scenario", "mode", "requested_rate", "concurrency", "achieved_rate", "duration_seconds"}
	for o := prober.Outcome(0); o < prober.NumOutcomes; o++ {
		h = append(h, "requests_"+o.String())
	}
	h = append(h, "warmup_requests", "sent", "dropped", "backed_off")
	for _, q := range []string{"ttft", "itl", "tpot", "ntpot", "e2e", "schedule_delay", "ground_truth_ttft_bias", "client_read_lag"} {
		h = append(h, q+"_p50_seconds", q+"_p90_seconds", q+"_p99_seconds", q+"_mean_seconds", q+"_count")
	}
	return append(h, "output_tokens_per_second", "goodput", "saturated_requests", "client_saturated")
}

// CSVRows are r's rows (one per probe), columns as CSVHeader; goodput is
// objective=ratio pairs joined by ';'.
func CSVRows(r *Report) [][]string {
	var rows [][]string
	for _, p := range r.Probes {
		row := []string{p.Target, p.Scenario, p.Mode, num(p.RequestedRate), strconv.Itoa(p.Concurrency), num(p.AchievedRate), num(r.DurationSeconds)}
		for o := prober.Outcome(0); o < prober.NumOutcomes; o++ {
			row = append(row, strconv.FormatUint(p.Requests[o.String()], 10))
		}
		row = append(row, strconv.FormatUint(p.WarmupRequests, 10), strconv.FormatUint(p.Sent, 10), strconv.FormatUint(p.Dropped, 10), strconv.FormatUint(p.BackedOff, 10))
		bias, readLag := Quantiles{}, Quantiles{}
		if p.GroundTruthTTFTBias != nil {
			bias = *p.GroundTruthTTFTBias
		}
		if p.ClientReadLag != nil {
			readLag = *p.ClientReadLag
		}
		for _, q := range []Quantiles{p.TTFT, p.ITL, p.TPOT, p.NTPOT, p.E2E, p.ScheduleDelay, bias, readLag} {
			row = append(row, num(q.P50), num(q.P90), num(q.P99), num(q.Mean), strconv.Itoa(q.Count))
		}
		var good []string
		for _, g := range p.Goodput {
			good = append(good, g.Objective+"="+num(g.Ratio))
		}
		rows = append(rows, append(row, num(p.OutputTokensPerSecond), strings.Join(good, ";"), strconv.FormatUint(p.SaturatedRequests, 10), strconv.FormatBool(r.Saturation.Saturated)))
	}
	return rows
}

// WriteCSV writes r as CSV with a header row.
func WriteCSV(w io.Writer, r *Report) error {
	return writeCSVRows(w, append([][]string{CSVHeader()}, CSVRows(r)...))
}

func writeCSVRows(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	return cw.WriteAll(rows)
}

func outcomes(m map[string]uint64) string {
	var parts []string
	for o := prober.Outcome(0); o < prober.NumOutcomes; o++ {
		if n := m[o.String()]; n > 0 || o == prober.OutcomeSuccess {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
	}
	return strings.Join(parts, ", ")
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// FormatFloat is v with at most 3 decimals, trailing zeros cut.
func FormatFloat(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

func seconds(s float64) string { return Dur(s) }

// Dur writes seconds as a duration rounded to 3 significant digits.
func Dur(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d == 0 {
		return "0s"
	}
	neg := d < 0
	if neg {
		d = -d
	}
	var out string
	switch {
	case d >= time.Second:
		out = strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	case d >= time.Millisecond:
		out = strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms"
	default:
		out = strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) + "µs"
	}
	if neg {
		return "-" + out
	}
	return out
}
