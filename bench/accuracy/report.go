package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Num is a figure that may be undefined (NaN: nothing observed); it is
// written to JSON as null then.
type Num float64

func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = Num(f)
	return err
}

// Quant summarizes a histogram window, in seconds.
type Quant struct {
	P50 Num `json:"p50"`
	P99 Num `json:"p99"`
	Max Num `json:"max"`
}

func quant(h *Hist) Quant {
	return Quant{P50: Num(h.Quantile(0.5)), P99: Num(h.Quantile(0.99)), Max: Num(h.Max())}
}

// RunResult is one run's figures, all taken within that run's window.
type RunResult struct {
	Workers       int     `json:"workers"`
	RequestedRate float64 `json:"requested_rate"`
	Repeat        int     `json:"repeat"`
	Seed          int     `json:"seed"`
	Timestamps    string  `json:"timestamps"` // the target's event-time source: kernel, user or auto

	WindowSeconds Num `json:"window_seconds"`
	Completed     Num `json:"completed"` // requests that ended in the window, any outcome
	Errors        Num `json:"errors"`    // of which not successful
	Dropped       Num `json:"dropped"`   // arrivals dropped at the in-flight cap
	AchievedRate  Num `json:"achieved_rate"`
	RateRatio     Num `json:"achieved_over_requested"`
	RateTolerance Num `json:"rate_tolerance"` // allowed |ratio−1|: the tolerance plus 2σ of a Poisson count

	TTFTBias      Quant `json:"ttft_bias_seconds"` // measured TTFT − the endpoint's stamped TTFT
	EmitLag       Quant `json:"emit_lag_seconds"`  // receive − emit wall time, per text event
	ScheduleDelay Quant `json:"schedule_delay_seconds"`
	TTFT          Quant `json:"ttft_seconds"`
	ITL           Quant `json:"itl_seconds"`
	MeanE2E       Num   `json:"mean_e2e_seconds"`

	// ReadLag is, per text event with a kernel stamp, the user-space read
	// time minus the kernel's: what user-space stamps would have added.
	// ReadLagEvents counts them, so a kernel run shows it got its stamps
	// (and a user run shows 0).
	ReadLag       Quant `json:"read_lag_seconds"`
	ReadLagEvents Num   `json:"read_lag_events"`
	Coalesced     Num   `json:"coalesced_events"` // text events one read delivered with another
	// RequestLegMean is mean TTFT bias − mean emit lag: from the send stamp
	// to the endpoint's arrival stamp, that is loopback transit plus the
	// endpoint's own lateness in reading the request. An estimate: the emit
	// lag's mean is over every text event, not the first alone.
	TTFTBiasMean   Num `json:"ttft_bias_mean_seconds"`
	EmitLagMean    Num `json:"emit_lag_mean_seconds"`
	RequestLegMean Num `json:"request_leg_mean_seconds"`

	ClientCPUSeconds Num   `json:"client_cpu_seconds"`
	ClientCores      Num   `json:"client_cores"` // CPU seconds per second of window
	OutputTokens     Num   `json:"output_tokens"`
	CPUPer1kTokensMs Num   `json:"cpu_ms_per_1k_tokens"`
	ClientRSSBytes   int64 `json:"client_rss_bytes"`
	ClientProcesses  int   `json:"client_processes"`
	MeanInFlight     Num   `json:"mean_in_flight"` // Little's law: achieved rate × mean e2e
	RSSPerStreamKiB  Num   `json:"rss_per_in_flight_kib"`

	Saturated         bool `json:"saturated"`
	SaturatedRequests Num  `json:"saturated_requests"`

	EndpointLateness Quant `json:"endpoint_emit_lateness_seconds"`
	EndpointCores    Num   `json:"endpoint_cores"`
	// EndpointEvents counts the text events the endpoint emitted in the
	// window (its lateness histogram's count): the naive client's token
	// count, here beside the daemon's own for a cross-check.
	EndpointEvents Num `json:"endpoint_text_events"`
}

// endpointEvents is the metric a naive run's tokens come from: the
// simulator observes its emit lateness once per scheduled (text) event,
// after the write, and its default is one token per event.
const endpointEvents = "llmprobe_simulator_emit_lateness_seconds"

// endpointRequests counts the streams the endpoint ended, as vLLM's
// end-to-end latency: observed once per completed request.
const endpointRequests = "vllm:e2e_request_latency_seconds"

// measure turns the two edges of a run's window into its figures.
func measure(a, z window, workers int, rate float64, rep int, timestamps string, o *options) (RunResult, error) {
	r := RunResult{Workers: workers, RequestedRate: rate, Repeat: rep, Seed: rep + 1, Timestamps: timestamps}
	win := z.daemon.At.Sub(a.daemon.At).Seconds()
	if win <= 0 {
		return r, fmt.Errorf("empty window")
	}
	delta := func(name string) float64 { return z.daemon.Sum[name] - a.daemon.Sum[name] }
	r.WindowSeconds = Num(win)
	completed := delta("llmprobe_requests_total")
	success := z.daemon.ByOutcome["llmprobe_requests_total"]["success"] - a.daemon.ByOutcome["llmprobe_requests_total"]["success"]
	r.Completed, r.Errors, r.Dropped = Num(completed), Num(completed-success), Num(delta("llmprobe_requests_dropped_total"))
	r.AchievedRate = Num(completed / win)
	r.RateRatio = Num(completed / win / rate)
	r.RateTolerance = Num(rateTolerance(o.rateTol, o.arrival, rate, win))

	hists := map[string]*Quant{
		"llmprobe_ground_truth_ttft_bias_seconds": &r.TTFTBias,
		"llmprobe_ground_truth_emit_lag_seconds":  &r.EmitLag,
		"llmprobe_schedule_delay_seconds":         &r.ScheduleDelay,
		"llmprobe_time_to_first_token_seconds":    &r.TTFT,
		"llmprobe_inter_token_latency_seconds":    &r.ITL,
		"llmprobe_client_read_lag_seconds":        &r.ReadLag,
	}
	means := map[string]*Num{
		"llmprobe_ground_truth_ttft_bias_seconds": &r.TTFTBiasMean,
		"llmprobe_ground_truth_emit_lag_seconds":  &r.EmitLagMean,
	}
	for name, q := range hists {
		h, err := histDelta(a.daemon, z.daemon, name)
		if err != nil {
			return r, err
		}
		*q = quant(h)
		if m := means[name]; m != nil {
			*m = Num(h.Mean())
		}
		if name == "llmprobe_client_read_lag_seconds" {
			r.ReadLagEvents = Num(h.Count)
		}
	}
	r.RequestLegMean = r.TTFTBiasMean - r.EmitLagMean
	r.Coalesced = Num(delta("llmprobe_coalesced_events_total"))
	e2e, err := histDelta(a.daemon, z.daemon, "llmprobe_request_duration_seconds")
	if err != nil {
		return r, err
	}
	r.MeanE2E = Num(e2e.Mean())
	lateness, err := histDelta(a.endpoint, z.endpoint, "llmprobe_simulator_emit_lateness_seconds")
	if err != nil {
		return r, err
	}
	r.EndpointLateness = quant(lateness)
	r.EndpointCores = Num((z.server.CPUSeconds - a.server.CPUSeconds) / win)
	r.EndpointEvents = Num(lateness.Count)

	cpu := z.client.CPUSeconds - a.client.CPUSeconds
	tokens := delta("llmprobe_output_tokens_total")
	r.ClientCPUSeconds, r.ClientCores, r.OutputTokens = Num(cpu), Num(cpu/win), Num(tokens)
	r.CPUPer1kTokensMs = Num(math.NaN())
	if tokens > 0 {
		r.CPUPer1kTokensMs = Num(cpu / tokens * 1000 * 1000)
	}
	r.ClientRSSBytes, r.ClientProcesses = z.client.RSSBytes, z.client.Procs
	r.MeanInFlight = Num(completed / win * e2e.Mean())
	r.RSSPerStreamKiB = Num(float64(r.ClientRSSBytes) / float64(r.MeanInFlight) / 1024)

	r.SaturatedRequests = Num(delta("llmprobe_saturated_observations_total"))
	r.Saturated = z.daemon.Max["llmprobe_client_saturated"] > 0 || r.SaturatedRequests > 0
	return r, nil
}

// NaiveResult is one run of the naive client (naive.go), within its window.
// It serves no metrics: the tokens are the endpoint's text events in the
// window and the completed requests the endpoint's ended streams, so no
// scrape of the client adds to its CPU; CPU and RSS are its process
// group's, from /proc as for the daemon.
type NaiveResult struct {
	RequestedRate float64 `json:"requested_rate"`
	Repeat        int     `json:"repeat"`
	Seed          int     `json:"seed"`

	WindowSeconds Num `json:"window_seconds"`
	Completed     Num `json:"completed"` // streams the endpoint ended in the window
	AchievedRate  Num `json:"achieved_rate"`
	RateRatio     Num `json:"achieved_over_requested"`

	ClientCPUSeconds Num   `json:"client_cpu_seconds"`
	ClientCores      Num   `json:"client_cores"`
	OutputTokens     Num   `json:"output_tokens"` // the endpoint's text events in the window
	CPUPer1kTokensMs Num   `json:"cpu_ms_per_1k_tokens"`
	ClientRSSBytes   int64 `json:"client_rss_bytes"`
	ClientProcesses  int   `json:"client_processes"`

	EndpointLateness Quant `json:"endpoint_emit_lateness_seconds"`
	EndpointCores    Num   `json:"endpoint_cores"`

	// The client's own summary line at exit, over its whole run (warm-up
	// included, streams cut at the end excluded); null when it printed none.
	ClientRequests Num `json:"client_requests"`
	ClientErrors   Num `json:"client_errors"`
	ClientTokens   Num `json:"client_tokens"`
}

// measureNaive turns the two edges of a naive run's window into its figures.
func measureNaive(a, z naiveEdge, rate float64, rep int, o *options) (NaiveResult, error) {
	nan := Num(math.NaN())
	r := NaiveResult{RequestedRate: rate, Repeat: rep, Seed: rep + 1, ClientRequests: nan, ClientErrors: nan, ClientTokens: nan}
	win := z.endpoint.At.Sub(a.endpoint.At).Seconds()
	if win <= 0 {
		return r, fmt.Errorf("empty window")
	}
	r.WindowSeconds = Num(win)
	events, err := histDelta(a.endpoint, z.endpoint, endpointEvents)
	if err != nil {
		return r, err
	}
	ended, err := histDelta(a.endpoint, z.endpoint, endpointRequests)
	if err != nil {
		return r, err
	}
	tokens, completed := float64(events.Count), float64(ended.Count)
	r.Completed, r.AchievedRate, r.RateRatio = Num(completed), Num(completed/win), Num(completed/win/rate)
	cpu := z.client.CPUSeconds - a.client.CPUSeconds
	r.ClientCPUSeconds, r.ClientCores, r.OutputTokens = Num(cpu), Num(cpu/win), Num(tokens)
	r.CPUPer1kTokensMs = nan
	if tokens > 0 {
		r.CPUPer1kTokensMs = Num(cpu / tokens * 1000 * 1000)
	}
	r.ClientRSSBytes, r.ClientProcesses = z.client.RSSBytes, z.client.Procs
	r.EndpointLateness = quant(events)
	r.EndpointCores = Num((z.server.CPUSeconds - a.server.CPUSeconds) / win)
	return r, nil
}

// rateTolerance is how far achieved/requested may stray from 1 and still
// count as keeping the rate. A Poisson count over a window of rate·window
// expected arrivals has a relative standard deviation of 1/√(rate·window)
// (1.3% at 700 req/s over 8 s), so a 1% tolerance alone would fail a client
// that sent every arrival on time; 2σ of that noise is added for Poisson.
func rateTolerance(tol float64, arrival string, rate, window float64) float64 {
	if arrival != "poisson" {
		return tol
	}
	return tol + 2/math.Sqrt(rate*window)
}

// Row is one (mode, rate): the median of its runs.
type Row struct {
	Workers       int       `json:"workers"`
	Timestamps    string    `json:"timestamps"`
	Rate          float64   `json:"requested_rate"`
	Runs          int       `json:"runs"`
	Median        RunResult `json:"median"`
	SaturatedRuns int       `json:"saturated_runs"`
	Clean         bool      `json:"clean"`
}

// ModeSummary is the ladder of one mode with one timestamp source and its
// highest clean rate.
type ModeSummary struct {
	Workers    int    `json:"workers"`
	Timestamps string `json:"timestamps"`
	Rows       []Row  `json:"rows"`
	// HighestCleanRate is the highest rate at which this and every lower
	// rate was clean; 0 when the lowest was not.
	HighestCleanRate float64 `json:"highest_clean_rate"`
}

// Comparison is one (mode, rate) measured with each timestamp source.
type Comparison struct {
	Workers int             `json:"workers"`
	Rate    float64         `json:"requested_rate"`
	Sources []SourceFigures `json:"sources"`
}

// SourceFigures is what distinguishes the sources, from one median row.
type SourceFigures struct {
	Timestamps       string `json:"timestamps"`
	Runs             int    `json:"runs"`
	AchievedRate     Num    `json:"achieved_rate"`
	TTFTBias         Quant  `json:"ttft_bias_seconds"`
	EmitLag          Quant  `json:"emit_lag_seconds"`
	ReadLag          Quant  `json:"read_lag_seconds"`
	ReadLagEvents    Num    `json:"read_lag_events"`
	RequestLegMean   Num    `json:"request_leg_mean_seconds"`
	CPUPer1kTokensMs Num    `json:"cpu_ms_per_1k_tokens"`
	EndpointLateness Quant  `json:"endpoint_emit_lateness_seconds"`
	EndpointCores    Num    `json:"endpoint_cores"`
}

// CPUComparison is one rate's client CPU per 1,000 tokens: every llmprobe
// (mode, source) ladder's median, the naive client's median, and the ratios
// issue 11 sets targets for, taken between those medians (the runs differ,
// so there is no within-run ratio to take).
type CPUComparison struct {
	Rate  float64   `json:"requested_rate"`
	Cells []CPUCell `json:"llmprobe"`
	// Naive is the naive client's median; NaiveRuns how many runs it is of.
	NaiveRuns             int `json:"naive_runs"`
	NaiveCPUPer1kTokensMs Num `json:"naive_cpu_ms_per_1k_tokens"`
	NaiveAchievedRate     Num `json:"naive_achieved_rate"`
	// RatioSource is the timestamp source the ratios are taken with:
	// kernel, or the first of -timestamps when kernel was not run.
	RatioSource string `json:"ratio_timestamps"`
	// InProcessOverNaive is in-process ÷ naive (target ≤ 1).
	InProcessOverNaive Num `json:"in_process_over_naive"`
	// WorkersOverInProcess is, per N > 0, workers=N ÷ in-process (target ≤ 1.2).
	WorkersOverInProcess []WorkersRatio `json:"workers_over_in_process"`
}

// CPUCell is one llmprobe ladder's median CPU per 1,000 tokens at a rate.
type CPUCell struct {
	Workers          int    `json:"workers"`
	Timestamps       string `json:"timestamps"`
	Runs             int    `json:"runs"`
	CPUPer1kTokensMs Num    `json:"cpu_ms_per_1k_tokens"`
}

type WorkersRatio struct {
	Workers int `json:"workers"`
	Ratio   Num `json:"over_in_process"`
}

func sourceFigures(row Row) SourceFigures {
	r := row.Median
	return SourceFigures{Timestamps: row.Timestamps, Runs: row.Runs, AchievedRate: r.AchievedRate,
		TTFTBias: r.TTFTBias, EmitLag: r.EmitLag, ReadLag: r.ReadLag, ReadLagEvents: r.ReadLagEvents,
		RequestLegMean: r.RequestLegMean, CPUPer1kTokensMs: r.CPUPer1kTokensMs,
		EndpointLateness: r.EndpointLateness, EndpointCores: r.EndpointCores}
}

// Report is the JSON output.
type Report struct {
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Machine  Machine        `json:"machine"`
	Options  map[string]any `json:"options"`
	Modes    []ModeSummary  `json:"modes"`
	// SideBySide pairs, per mode and rate, the sources' median rows in the
	// order of -timestamps: the comparison the runs were made for.
	SideBySide []Comparison `json:"side_by_side"`
	// CPUSideBySide is, per rate, llmprobe's CPU per 1,000 tokens in every
	// mode and source beside the naive client's.
	CPUSideBySide []CPUComparison `json:"cpu_side_by_side"`
	RSS           []RSSResult     `json:"rss"`
	Runs          []RunResult     `json:"runs"`
	// Naive is every naive-client run (-naive), raw.
	Naive []NaiveResult `json:"naive"`
}

func optionsJSON(o *options) map[string]any {
	return map[string]any{
		"rates": o.rates, "modes": o.modes, "duration": o.duration.String(), "warmup": o.warmup.String(),
		"repeat": o.repeat, "server_cpus": o.serverCPUs, "client_cpus": o.clientCPUs,
		"ttft": o.ttft.String(), "itl": o.itl.String(), "output_tokens": o.outTokens, "input_tokens": o.inTokens,
		"arrival": o.arrival, "api": o.api, "bias_limit": o.biasLimit.String(), "rate_tolerance": o.rateTol,
		"rss_streams": o.rssStreams, "rss_itl": o.rssITL.String(), "rss_tokens": o.rssTokens,
		"timestamps": o.timestamps, "naive": o.naive,
	}
}

// clean: the measurement is within the bias limit and the client kept the
// schedule (rate within tolerance, nothing dropped, nothing failed).
func (r *RunResult) clean(biasLimit time.Duration) bool {
	return float64(r.TTFTBias.P99) < biasLimit.Seconds() &&
		math.Abs(float64(r.RateRatio)-1) <= float64(r.RateTolerance) &&
		r.Dropped == 0 && r.Errors == 0
}

// Summarize groups runs by mode, timestamp source and rate into median
// rows, and pairs the sources' rows per mode and rate.
func (rep *Report) Summarize(o *options) {
	rep.Modes, rep.SideBySide = nil, nil
	for _, mode := range o.modes {
		for _, src := range o.timestamps {
			rep.Modes = append(rep.Modes, rep.ladder(o, mode, src))
		}
		for _, rate := range o.rates {
			c := Comparison{Workers: mode, Rate: rate}
			for _, ms := range rep.Modes {
				if ms.Workers != mode {
					continue
				}
				for _, row := range ms.Rows {
					if row.Rate == rate {
						c.Sources = append(c.Sources, sourceFigures(row))
					}
				}
			}
			if len(c.Sources) > 0 {
				rep.SideBySide = append(rep.SideBySide, c)
			}
		}
	}
	rep.CPUSideBySide = rep.cpuSideBySide(o)
}

// ratioSource is the source the CPU ratios are taken with: kernel when it
// was run, else the first of -timestamps.
func ratioSource(o *options) string {
	if slices.Contains(o.timestamps, "kernel") {
		return "kernel"
	}
	return o.timestamps[0]
}

// cpuSideBySide builds, per rate, the CPU comparison from the ladders'
// median rows (Summarize has built rep.Modes) and the naive runs.
func (rep *Report) cpuSideBySide(o *options) []CPUComparison {
	var out []CPUComparison
	src := ratioSource(o)
	for _, rate := range o.rates {
		nan := Num(math.NaN())
		c := CPUComparison{Rate: rate, RatioSource: src, NaiveCPUPer1kTokensMs: nan, NaiveAchievedRate: nan, InProcessOverNaive: nan}
		byMode := map[int]Num{} // the ratio source's median per mode
		for _, ms := range rep.Modes {
			for _, row := range ms.Rows {
				if row.Rate != rate {
					continue
				}
				c.Cells = append(c.Cells, CPUCell{Workers: ms.Workers, Timestamps: ms.Timestamps, Runs: row.Runs, CPUPer1kTokensMs: row.Median.CPUPer1kTokensMs})
				if ms.Timestamps == src {
					byMode[ms.Workers] = row.Median.CPUPer1kTokensMs
				}
			}
		}
		var cpu, achieved []float64
		for _, r := range rep.Naive {
			if r.RequestedRate == rate {
				cpu, achieved = append(cpu, float64(r.CPUPer1kTokensMs)), append(achieved, float64(r.AchievedRate))
			}
		}
		if c.NaiveRuns = len(cpu); c.NaiveRuns > 0 {
			c.NaiveCPUPer1kTokensMs, c.NaiveAchievedRate = Num(median(cpu)), Num(median(achieved))
		}
		if len(c.Cells) == 0 && c.NaiveRuns == 0 {
			continue
		}
		inProc, ok := byMode[0]
		if !ok {
			inProc = nan
		}
		c.InProcessOverNaive = inProc / c.NaiveCPUPer1kTokensMs
		for _, mode := range o.modes {
			if mode > 0 {
				w, ok := byMode[mode]
				if !ok {
					w = nan
				}
				c.WorkersOverInProcess = append(c.WorkersOverInProcess, WorkersRatio{Workers: mode, Ratio: w / inProc})
			}
		}
		out = append(out, c)
	}
	return out
}

func (rep *Report) ladder(o *options, mode int, src string) ModeSummary {
	ms := ModeSummary{Workers: mode, Timestamps: src}
	for _, rate := range o.rates {
		var runs []RunResult
		for _, r := range rep.Runs {
			if r.Workers == mode && r.RequestedRate == rate && r.Timestamps == src {
				runs = append(runs, r)
			}
		}
		if len(runs) == 0 {
			continue
		}
		row := Row{Workers: mode, Timestamps: src, Rate: rate, Runs: len(runs), Median: medianRun(runs)}
		for _, r := range runs {
			if r.Saturated {
				row.SaturatedRuns++
			}
		}
		row.Clean = row.Median.clean(o.biasLimit)
		ms.Rows = append(ms.Rows, row)
	}
	ms.HighestCleanRate = highestCleanRate(ms.Rows)
	return ms
}

// highestCleanRate is the highest rate such that it and every lower rate
// are clean: the rate up to which the measurement can be trusted.
func highestCleanRate(rows []Row) float64 {
	sorted := append([]Row(nil), rows...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Rate < sorted[j].Rate })
	best := 0.0
	for _, r := range sorted {
		if !r.Clean {
			break
		}
		best = r.Rate
	}
	return best
}

// median of the defined values; NaN when none is.
func median(vs []float64) float64 {
	var d []float64
	for _, v := range vs {
		if !math.IsNaN(v) {
			d = append(d, v)
		}
	}
	if len(d) == 0 {
		return math.NaN()
	}
	sort.Float64s(d)
	if n := len(d); n%2 == 1 {
		return d[n/2]
	} else {
		return (d[n/2-1] + d[n/2]) / 2
	}
}

// medianRun takes, figure by figure, the median over runs; each figure's
// ratios were formed within one run first. Saturated is true if any run
// saturated.
func medianRun(runs []RunResult) RunResult {
	out := runs[0]
	out.Repeat, out.Seed = -1, 0
	quants := func(r *RunResult) []*Quant {
		return []*Quant{&r.TTFTBias, &r.EmitLag, &r.ScheduleDelay, &r.TTFT, &r.ITL, &r.EndpointLateness, &r.ReadLag}
	}
	nums := func(r *RunResult) []*Num {
		ns := []*Num{&r.WindowSeconds, &r.Completed, &r.Errors, &r.Dropped, &r.AchievedRate, &r.RateRatio, &r.RateTolerance,
			&r.MeanE2E, &r.ClientCPUSeconds, &r.ClientCores, &r.OutputTokens, &r.CPUPer1kTokensMs, &r.MeanInFlight,
			&r.RSSPerStreamKiB, &r.SaturatedRequests, &r.EndpointCores,
			&r.ReadLagEvents, &r.Coalesced, &r.TTFTBiasMean, &r.EmitLagMean, &r.RequestLegMean, &r.EndpointEvents}
		for _, q := range quants(r) {
			ns = append(ns, &q.P50, &q.P99, &q.Max)
		}
		return ns
	}
	outNums := nums(&out)
	vals := make([]float64, len(runs))
	for i := range outNums {
		for j := range runs {
			vals[j] = float64(*nums(&runs[j])[i])
		}
		*outNums[i] = Num(median(vals))
	}
	rss := make([]float64, len(runs))
	for j := range runs {
		rss[j] = float64(runs[j].ClientRSSBytes)
		out.Saturated = out.Saturated || runs[j].Saturated
	}
	out.ClientRSSBytes = int64(median(rss))
	return out
}

// ms formats seconds as milliseconds.
func ms(s Num) string {
	if math.IsNaN(float64(s)) {
		return "–"
	}
	return strconv.FormatFloat(float64(s)*1000, 'f', 3, 64)
}

func f1(n Num) string {
	if math.IsNaN(float64(n)) {
		return "–"
	}
	return strconv.FormatFloat(float64(n), 'f', 1, 64)
}

// f2 formats a ratio.
func f2(n Num) string {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return "–"
	}
	return strconv.FormatFloat(float64(n), 'f', 2, 64)
}

func shortModeName(w int) string {
	if w == 0 {
		return "in-process"
	}
	return fmt.Sprintf("workers=%d", w)
}

// cpuMarkdown is the first table: per rate, the median CPU ms per 1,000
// tokens of every llmprobe (mode, source) and of the naive client, and the
// ratios issue 11 sets targets for.
func (rep *Report) cpuMarkdown(b *strings.Builder, o *options) {
	cs := rep.CPUSideBySide
	if len(cs) == 0 {
		return
	}
	type col struct {
		workers int
		src     string
	}
	var cols []col
	for _, ms := range rep.Modes {
		if len(ms.Rows) > 0 {
			cols = append(cols, col{ms.Workers, ms.Timestamps})
		}
	}
	src := cs[0].RatioSource
	b.WriteString("### Client CPU per 1,000 tokens, side by side\n\n")
	fmt.Fprintf(b, "Median CPU ms per 1,000 streamed tokens (client process group, /proc), llmprobe in each mode and source and the naive Go client "+
		"(bench/README.md), per rate and repeat back to back against the same endpoint with the same seed. Ratios are of the medians, with %s timestamps; "+
		"issue 11's targets: in-process / naive ≤ 1, workers / in-process ≤ 1.2, and the goal of ≤ 15 ms per 1,000 tokens.\n\n", src)
	b.WriteString("| req/s |")
	align := "|---:|"
	for _, c := range cols {
		fmt.Fprintf(b, " %s %s |", shortModeName(c.workers), c.src)
		align += "---:|"
	}
	fmt.Fprintf(b, " naive (runs) | in-process (%s) / naive |", src)
	align += "---:|---:|"
	var workerModes []int
	for _, m := range o.modes {
		if m > 0 {
			workerModes = append(workerModes, m)
			fmt.Fprintf(b, " workers=%d (%s) / in-process (%s) |", m, src, src)
			align += "---:|"
		}
	}
	b.WriteString("\n" + align + "\n")
	for _, c := range cs {
		fmt.Fprintf(b, "| %g |", c.Rate)
		for _, col := range cols {
			cell := "–"
			for _, x := range c.Cells {
				if x.Workers == col.workers && x.Timestamps == col.src {
					cell = f1(x.CPUPer1kTokensMs)
				}
			}
			fmt.Fprintf(b, " %s |", cell)
		}
		naive := "–"
		if c.NaiveRuns > 0 {
			naive = fmt.Sprintf("%s (%d)", f1(c.NaiveCPUPer1kTokensMs), c.NaiveRuns)
		}
		fmt.Fprintf(b, " %s | %s |", naive, f2(c.InProcessOverNaive))
		for _, m := range workerModes {
			ratio := Num(math.NaN())
			for _, w := range c.WorkersOverInProcess {
				if w.Workers == m {
					ratio = w.Ratio
				}
			}
			fmt.Fprintf(b, " %s |", f2(ratio))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func modeName(w int) string {
	if w == 0 {
		return "in-process (`--workers=0`)"
	}
	return fmt.Sprintf("%d worker processes (`--workers=%d`)", w, w)
}

// joined formats each source's figure, in source order, joined by " / ".
func joined(srcs []SourceFigures, f func(SourceFigures) string) string {
	parts := make([]string, len(srcs))
	for i, s := range srcs {
		parts[i] = f(s)
	}
	return strings.Join(parts, " / ")
}

// sideBySideMarkdown is the comparison table of one mode: every cell holds
// each source's figure in the order of -timestamps.
func (rep *Report) sideBySideMarkdown(b *strings.Builder, workers int) {
	var cs []Comparison
	for _, c := range rep.SideBySide {
		if c.Workers == workers {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return
	}
	order := joined(cs[0].Sources, func(s SourceFigures) string { return s.Timestamps })
	fmt.Fprintf(b, "Side by side, each cell %s (same endpoint, same seed, back to back):\n\n", order)
	b.WriteString("| req/s | achieved req/s | TTFT bias p50 ms | TTFT bias p99 ms | emit lag p50 ms | emit lag p99 ms | read lag p50 / p99 ms (kernel-stamped events) | request leg mean ms | CPU ms / 1k tok | endpoint lateness p99 ms |\n")
	b.WriteString("|---:|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cs {
		fmt.Fprintf(b, "| %g | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Rate,
			joined(c.Sources, func(s SourceFigures) string { return f1(s.AchievedRate) }),
			joined(c.Sources, func(s SourceFigures) string { return ms(s.TTFTBias.P50) }),
			joined(c.Sources, func(s SourceFigures) string { return ms(s.TTFTBias.P99) }),
			joined(c.Sources, func(s SourceFigures) string { return ms(s.EmitLag.P50) }),
			joined(c.Sources, func(s SourceFigures) string { return ms(s.EmitLag.P99) }),
			joined(c.Sources, func(s SourceFigures) string {
				if s.ReadLagEvents == 0 || math.IsNaN(float64(s.ReadLagEvents)) {
					return "none"
				}
				return fmt.Sprintf("%s, %s (%.0f)", ms(s.ReadLag.P50), ms(s.ReadLag.P99), float64(s.ReadLagEvents))
			}),
			joined(c.Sources, func(s SourceFigures) string { return ms(s.RequestLegMean) }),
			joined(c.Sources, func(s SourceFigures) string { return f1(s.CPUPer1kTokensMs) }),
			joined(c.Sources, func(s SourceFigures) string { return ms(s.EndpointLateness.P99) }))
	}
	b.WriteString("\nRead lag: user-space read time minus the kernel's receive stamp, per text event that had one (count in brackets); " +
		"with user stamps it is what the figures silently include. Request leg: mean TTFT bias minus mean emit lag, the send stamp to " +
		"the endpoint's arrival stamp: loopback transit plus the endpoint's own lateness in reading the request.\n\n")
}

// Markdown renders the summary tables.
func (rep *Report) Markdown(o *options) string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "## llmprobe measurement accuracy\n\n")
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), kernel %s, %s; load average at start %q, at end %q.\n", m.CPUs, m.Model, m.Kernel, m.GoVersion, m.LoadAvgStart, m.LoadAvgEnd)
	pin := func(s string) string {
		if s == "" {
			return "not pinned"
		}
		return "CPUs " + s
	}
	fmt.Fprintf(&b, "Endpoint: TTFT %s, ITL %s, %d output tokens, %s arrivals; endpoint %s, llmprobe %s. Window %s after %s warm-up, median of %d runs.\n\n",
		o.ttft, o.itl, o.outTokens, o.arrival, pin(o.serverCPUs), pin(o.clientCPUs), o.duration, o.warmup, o.repeat)
	rep.cpuMarkdown(&b, o)
	for i, mode := range rep.Modes {
		if i == 0 || rep.Modes[i-1].Workers != mode.Workers {
			fmt.Fprintf(&b, "### %s\n\n", modeName(mode.Workers))
			rep.sideBySideMarkdown(&b, mode.Workers)
		}
		fmt.Fprintf(&b, "#### %s timestamps\n\n", mode.Timestamps)
		b.WriteString("| req/s | achieved/req (tol) | TTFT bias p50 / p99 / max ms | emit lag p50 / p99 / max ms | sched delay p50 / p99 ms | TTFT p99 / ITL p99 ms | CPU ms / 1k tok | client cores | RSS KiB / in-flight | saturated | endpoint lateness p99 ms (cores) | clean |\n")
		b.WriteString("|---:|---|---|---|---|---|---:|---:|---:|---|---|---|\n")
		for _, row := range mode.Rows {
			r := row.Median
			clean := "no"
			if row.Clean {
				clean = "yes"
			}
			sat := "no"
			if row.SaturatedRuns > 0 {
				sat = fmt.Sprintf("%d/%d runs", row.SaturatedRuns, row.Runs)
			}
			fmt.Fprintf(&b, "| %g | %.3f (±%.3f) | %s / %s / %s | %s / %s / %s | %s / %s | %s / %s | %s | %.2f | %s | %s | %s (%.2f) | %s |\n",
				row.Rate, float64(r.RateRatio), float64(r.RateTolerance),
				ms(r.TTFTBias.P50), ms(r.TTFTBias.P99), ms(r.TTFTBias.Max),
				ms(r.EmitLag.P50), ms(r.EmitLag.P99), ms(r.EmitLag.Max),
				ms(r.ScheduleDelay.P50), ms(r.ScheduleDelay.P99), ms(r.TTFT.P99), ms(r.ITL.P99),
				f1(r.CPUPer1kTokensMs), float64(r.ClientCores), f1(r.RSSPerStreamKiB), sat,
				ms(r.EndpointLateness.P99), float64(r.EndpointCores), clean)
		}
		fmt.Fprintf(&b, "\nHighest clean rate: **%g req/s** (it and every lower rate: TTFT-bias p99 < %s, achieved/requested within tolerance, no drop, no error).\n\n",
			mode.HighestCleanRate, o.biasLimit)
	}
	if len(rep.RSS) > 0 {
		fmt.Fprintf(&b, "### Memory per in-flight stream (closed loop, ITL %s, %d tokens)\n\n", o.rssITL, o.rssTokens)
		b.WriteString("| workers | streams in flight | RSS MiB | baseline streams | baseline RSS MiB | KiB per stream |\n|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range rep.RSS {
			fmt.Fprintf(&b, "| %d | %.0f | %.1f | %.0f | %.1f | %s |\n", r.Workers, float64(r.InFlight), float64(r.RSSBytes)/(1<<20),
				float64(r.BaselineInFlt), float64(r.BaselineRSS)/(1<<20), f1(r.PerStreamKiB))
		}
		b.WriteString("\n")
	}
	return b.String()
}
