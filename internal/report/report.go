// Package report turns the records of a one-shot run (`llmprobe bench`, a
// step of `llmprobe sweep`) into a report: exact quantiles from every record,
// the books, goodput per SLO objective and the client-saturation verdict;
// and writes it as a terminal table, JSON (schema in README.md) or CSV.
package report

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
)

// Schema names the JSON layout; bump it on any change that is not an added
// field.
const Schema = "llmprobe.report/v1"

// Verdict texts.
const (
	Trustworthy = "measurement trustworthy"
)

// Report is one run.
type Report struct {
	Schema          string     `json:"schema"`
	Started         time.Time  `json:"started"`
	DurationSeconds float64    `json:"duration_seconds"` // measured, after the warm-up
	WarmupSeconds   float64    `json:"warmup_seconds"`   // the longest warm-up of the probes
	Workers         int        `json:"workers"`          // worker processes; 0: in the command's own process
	Probes          []Probe    `json:"probes"`
	Saturation      Saturation `json:"saturation"`
	Trustworthy     bool       `json:"trustworthy"`
	Verdict         string     `json:"verdict"`
}

// Probe is one target × scenario.
type Probe struct {
	Target        string  `json:"target"`
	Scenario      string  `json:"scenario"`
	Mode          string  `json:"mode"`                  // open or closed
	RequestedRate float64 `json:"requested_rate"`        // req/s, open loop (0 in closed loop)
	Concurrency   int     `json:"concurrency,omitempty"` // closed loop
	MaxInFlight   int     `json:"max_in_flight"`
	// AchievedRate is the requests that ended after the warm-up, of any
	// outcome, per second of the measured duration.
	AchievedRate float64 `json:"achieved_rate"`
	// Requests after the warm-up by outcome (every outcome listed, zeros
	// included); WarmupRequests those of the warm-up, any outcome.
	Requests       map[string]uint64 `json:"requests"`
	WarmupRequests uint64            `json:"warmup_requests"`
	// The books of the whole run, warm-up included, as the workers kept
	// them: Scheduled = Sent + Dropped + BackedOff.
	Scheduled uint64 `json:"scheduled"`
	Sent      uint64 `json:"sent"`
	Dropped   uint64 `json:"dropped"`
	BackedOff uint64 `json:"backed_off"`
	// Latencies of successful requests after the warm-up, seconds, as the
	// llmprobe_* histograms define them.
	TTFT  Quantiles `json:"ttft"`
	ITL   Quantiles `json:"itl"`
	TPOT  Quantiles `json:"tpot"`
	NTPOT Quantiles `json:"ntpot"`
	E2E   Quantiles `json:"e2e"`
	TTFB  Quantiles `json:"ttfb"`
	// ScheduleDelay of every request sent after the warm-up.
	ScheduleDelay Quantiles `json:"schedule_delay"`
	// GroundTruthTTFTBias is measured TTFT − the endpoint's stamped TTFT,
	// where the endpoint stamps it (the reference endpoint does).
	GroundTruthTTFTBias *Quantiles `json:"ground_truth_ttft_bias,omitempty"`
	// ClientReadLag is, per text event stamped by the kernel, when the
	// reading goroutine got the bytes minus when they arrived: the delay a
	// user-space client would have added. Absent without kernel stamps.
	ClientReadLag         *Quantiles `json:"client_read_lag,omitempty"`
	OutputTokensPerSecond float64    `json:"output_tokens_per_second"`
	Goodput               []Goodput  `json:"goodput"`
	// SaturatedRequests were measured while their worker was saturated.
	SaturatedRequests uint64 `json:"saturated_requests"`
}

// Goodput is one SLO objective: requests judged (after the warm-up, not
// those llmprobe canceled) and those that succeeded within every threshold.
type Goodput struct {
	Objective string  `json:"objective"`
	Requests  uint64  `json:"requests"`
	Good      uint64  `json:"good"`
	Ratio     float64 `json:"ratio"` // good / requests; 0 when none judged
}

// Saturation is the client's verdict on itself over the run.
type Saturation struct {
	Saturated bool               `json:"saturated"` // some worker was saturated in some window
	Workers   []WorkerSaturation `json:"workers"`
}

// WorkerSaturation is one worker's windows (worker.Options.SampleInterval
// each) and why the bad ones were bad.
type WorkerSaturation struct {
	Worker           int `json:"worker"`
	Windows          int `json:"windows"`
	BadWindows       int `json:"bad_windows"`       // over a threshold
	SaturatedWindows int `json:"saturated_windows"` // the debounced verdict was "saturated"
	// Reasons counts bad windows by signal: late_sends, cpu,
	// go_scheduler_latency, record_backlog, read_lag.
	Reasons map[string]int `json:"reasons"`
	// Examples: the latest reason of each signal, as the worker words it.
	Examples []string `json:"examples"`
	// FirstSaturatedSeconds is when the verdict first turned, from the
	// run's start; absent when it never did.
	FirstSaturatedSeconds *float64 `json:"first_saturated_seconds,omitempty"`
}

// Run says how the collected run went.
type Run struct {
	Started  time.Time
	Warmup   time.Duration // the longest of the probes
	Duration time.Duration // measured, after Warmup
	Workers  int
}

// Build makes the report of everything c collected.
func (c *Collector) Build(run Run) *Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Report{Schema: Schema, Started: run.Started.UTC(), DurationSeconds: run.Duration.Seconds(),
		WarmupSeconds: run.Warmup.Seconds(), Workers: run.Workers, Probes: []Probe{}}
	secs := run.Duration.Seconds()
	for _, p := range c.probes {
		out := Probe{Target: p.target, Scenario: p.scenario, Requests: map[string]uint64{}, WarmupRequests: p.warmup,
			SaturatedRequests: p.saturatedObs, Goodput: []Goodput{}}
		l := p.sc.Load
		out.Mode, out.MaxInFlight = string(l.Mode), l.MaxInFlight
		if l.Mode == config.LoadClosed {
			out.Concurrency, out.MaxInFlight = l.Concurrency, l.Concurrency
		} else {
			out.RequestedRate = l.Rate
		}
		var ended uint64
		for o := prober.Outcome(0); o < prober.NumOutcomes; o++ {
			out.Requests[o.String()] = p.outcomes[o]
			ended += p.outcomes[o]
		}
		for _, ids := range p.books {
			for _, pc := range ids {
				out.Scheduled += pc.Scheduled
				out.Sent += pc.Sent
				out.Dropped += pc.Dropped
				out.BackedOff += pc.BackedOff
			}
		}
		out.TTFT, out.ITL, out.TPOT = Summarize(p.ttft), Summarize(p.itl), Summarize(p.tpot)
		out.NTPOT, out.E2E, out.TTFB = Summarize(p.ntpot), Summarize(p.e2e), Summarize(p.ttfb)
		out.ScheduleDelay = Summarize(p.delay)
		if len(p.bias) > 0 {
			b := Summarize(p.bias)
			out.GroundTruthTTFTBias = &b
		}
		if len(p.readLag) > 0 {
			l := Summarize(p.readLag)
			out.ClientReadLag = &l
		}
		if secs > 0 {
			out.AchievedRate = float64(ended) / secs
			out.OutputTokensPerSecond = float64(p.outputTokens) / secs
		}
		for i, s := range p.sc.SLOs {
			g := Goodput{Objective: s.Name, Requests: p.slo[i].total, Good: p.slo[i].good}
			if g.Requests > 0 {
				g.Ratio = float64(g.Good) / float64(g.Requests)
			}
			out.Goodput = append(out.Goodput, g)
		}
		r.Probes = append(r.Probes, out)
	}
	ids := make([]int, 0, len(c.workers))
	for id := range c.workers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	r.Saturation.Workers = []WorkerSaturation{}
	for _, id := range ids {
		w := c.workers[id]
		ws := WorkerSaturation{Worker: id, Windows: w.windows, BadWindows: w.badWindows, SaturatedWindows: w.saturatedWindows,
			Reasons: w.reasons, Examples: []string{}}
		for _, k := range slices.Sorted(maps.Keys(w.example)) {
			ws.Examples = append(ws.Examples, w.example[k])
		}
		if !w.firstSaturated.IsZero() {
			s := w.firstSaturated.Sub(run.Started).Seconds()
			ws.FirstSaturatedSeconds = &s
		}
		r.Saturation.Saturated = r.Saturation.Saturated || w.saturatedWindows > 0
		r.Saturation.Workers = append(r.Saturation.Workers, ws)
	}
	r.Trustworthy = !r.Saturation.Saturated
	r.Verdict = r.verdict()
	return r
}

// verdict is the one line under the figures.
func (r *Report) verdict() string {
	if !r.Saturation.Saturated {
		return Trustworthy
	}
	var rate float64
	for _, p := range r.Probes {
		rate += p.RequestedRate
	}
	var why []string
	readLagOnly, readLag := true, false
	for _, w := range r.Saturation.Workers {
		if w.SaturatedWindows > 0 {
			why = append(why, fmt.Sprintf("worker %d %d of %d windows: %s", w.Worker, w.SaturatedWindows, w.Windows, strings.Join(w.Examples, "; ")))
		}
		for k := range w.Reasons {
			readLagOnly = readLagOnly && k == ReasonReadLag
			readLag = readLag || k == ReasonReadLag
		}
	}
	at := "its load"
	if rate > 0 {
		at = fmt.Sprintf("%s req/s", FormatFloat(rate))
	}
	if readLagOnly && readLag {
		// Read lag is measured only on kernel-stamped events, whose times
		// leave it out: what it still reaches is events read together.
		return fmt.Sprintf("client saturated at %s (%s): figures above include client delay only in the ITL of events one late read delivered together; the kernel's arrival stamps keep its read lag out of TTFT and E2E", at, strings.Join(why, ", "))
	}
	return fmt.Sprintf("client saturated at %s (%s): figures above include client delay", at, strings.Join(why, ", "))
}

// NoSuccess lists the probes that had no successful request after the
// warm-up: the run measured nothing of them.
func (r *Report) NoSuccess() []string {
	var out []string
	for _, p := range r.Probes {
		if p.Requests[prober.OutcomeSuccess.String()] == 0 {
			out = append(out, p.Target+"/"+p.Scenario)
		}
	}
	return out
}
