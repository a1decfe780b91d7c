package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The Grafana dashboard, kept as code: dashboards/llmprobe.json is what
// Dashboard returns, and TestGeneratedFiles fails when they differ
// (go test ./deploy/ -run TestGeneratedFiles -update rewrites it).
//
// Every histogram query reads the native histogram where Prometheus stores
// one and falls back to the classic buckets, so the dashboard works on a
// native-only, a classic-only and a both-scraped Prometheus alike.

const rateWindow = "$__rate_interval"

// sel is the selector of llmprobe's per-probe series, narrowed by the
// dashboard's variables, with extra matchers appended.
func sel(extra ...string) string {
	m := append([]string{`job=~"$job"`, `target=~"$target"`, `scenario=~"$scenario"`}, extra...)
	return "{" + strings.Join(m, ", ") + "}"
}

// workerSel selects the per-worker series of the chosen instances.
func workerSel(extra ...string) string {
	m := append([]string{`job=~"$job"`, `instance=~"$instance"`}, extra...)
	return "{" + strings.Join(m, ", ") + "}"
}

const engineSel = `{job=~"$engine_job"}`

// quantile is the q-quantile of histogram name grouped by the labels by
// (comma-separated, may be empty), native first, classic buckets when no
// native histogram is stored. Both sides end with exactly the labels by, so
// "or" keeps one result per group where both are stored.
func quantile(q, by, name, selector, window string) string {
	withLe := "le"
	if by != "" {
		withLe = by + ", le"
	}
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s%s[%s])))\nor\nhistogram_quantile(%s, sum by (%s) (rate(%s_bucket%s[%s])))",
		q, by, name, selector, window, q, withLe, name, selector, window)
}

// mean is the mean of histogram name per group: histogram_sum/count of the
// native histogram, or _sum/_count of the classic one (a native-only
// Prometheus stores no _sum and _count series).
func mean(by, name, selector, window string) string {
	return fmt.Sprintf("histogram_sum(sum by (%[1]s) (rate(%[2]s%[3]s[%[4]s]))) / histogram_count(sum by (%[1]s) (rate(%[2]s%[3]s[%[4]s])))\nor\nsum by (%[1]s) (rate(%[2]s_sum%[3]s[%[4]s])) / sum by (%[1]s) (rate(%[2]s_count%[3]s[%[4]s]))",
		by, name, selector, window)
}

// heatmapQuery is the bucket rates of a histogram over all selected probes:
// the native histogram, else the classic buckets. "or on ()" keeps the
// classic side out as soon as there is a native result (their labels differ:
// le).
func heatmapQuery(name string) string {
	return fmt.Sprintf("sum(rate(%s%s[%s]))\nor on ()\nsum by (le) (rate(%s_bucket%s[%s]))", name, sel(), rateWindow, name, sel(), rateWindow)
}

func rate(name, selector string) string {
	return fmt.Sprintf("rate(%s%s[%s])", name, selector, rateWindow)
}

type query struct {
	expr, legend string
	heatmap      bool
}

type panelSpec struct {
	kind, title, description, unit string
	queries                        []query
	w, h                           int
	// thresholdRefs are the refIds drawn as dashed red threshold lines.
	thresholdRefs []string
	stacked       bool
}

type rowSpec struct {
	title  string
	panels []panelSpec
}

func ts(title, unit, description string, qs ...query) panelSpec {
	return panelSpec{kind: "timeseries", title: title, unit: unit, description: description, queries: qs}
}

func stat(title, unit, description string, qs ...query) panelSpec {
	return panelSpec{kind: "stat", title: title, unit: unit, description: description, queries: qs, w: 4, h: 5}
}

// latencyPanel: p50, p90, p99 and mean of one latency per probe, and the SLO
// thresholds configured on it (quantity "" for none).
func latencyPanel(title, name, quantity, description string) panelSpec {
	p := ts(title, "s", description)
	for _, q := range []string{"0.5", "0.9", "0.99"} {
		p.queries = append(p.queries, query{quantile(q, "target, scenario", name, sel(), rateWindow), "p" + strings.TrimPrefix(q, "0.") + " {{target}}/{{scenario}}", false})
	}
	p.queries[0].legend = "p50 {{target}}/{{scenario}}"
	p.queries = append(p.queries, query{mean("target, scenario", name, sel(), rateWindow), "mean {{target}}/{{scenario}}", false})
	if quantity != "" {
		p.queries = append(p.queries, query{
			fmt.Sprintf("max by (target, scenario, objective) (llmprobe_slo_objective_seconds%s)", sel(`quantity="`+quantity+`"`)),
			"SLO {{objective}} {{target}}/{{scenario}}", false,
		})
		p.thresholdRefs = []string{refID(len(p.queries) - 1)}
	}
	return p
}

func heatmap(title, name, description string) panelSpec {
	return panelSpec{kind: "heatmap", title: title, unit: "s", description: description, queries: []query{{heatmapQuery(name), "{{le}}", true}}}
}

func refID(i int) string { return string(rune('A' + i)) }

// dashboardRows is the dashboard's content, top to bottom.
func dashboardRows() []rowSpec {
	return []rowSpec{
		{"Overview per target", []panelSpec{
			stat("Requests / s", "reqps", "Requests sent per second, every outcome.",
				query{"sum by (target) (" + rate("llmprobe_requests_total", sel()) + ")", "{{target}}", false}),
			stat("Output tokens / s", "none", "Output tokens received per second (server usage, or counted).",
				query{"sum by (target) (" + rate("llmprobe_output_tokens_total", sel()) + ")", "{{target}}", false}),
			stat("Error ratio", "percentunit", "Requests ending in an error outcome (canceled, llmprobe's own doing at shutdown or reload, is neither error nor success).",
				query{"sum by (target) (" + rate("llmprobe_requests_total", sel(`outcome!~"success|canceled"`)) + ") / sum by (target) (" + rate("llmprobe_requests_total", sel(`outcome!="canceled"`)) + ")", "{{target}}", false}),
			stat("TTFT p95", "s", "Time to first token, 95th percentile, scenarios merged.",
				query{quantile("0.95", "target", "llmprobe_time_to_first_token_seconds", sel(), rateWindow), "{{target}}", false}),
			stat("TPOT p95", "s", "Time per output token, 95th percentile, scenarios merged.",
				query{quantile("0.95", "target", "llmprobe_time_per_output_token_seconds", sel(), rateWindow), "{{target}}", false}),
			stat("Targets not answering", "none", "Targets sent requests in the last 5 minutes without one success.",
				query{`count(sum by (target) (rate(llmprobe_requests_total` + sel() + `[5m])) unless sum by (target) (rate(llmprobe_requests_total` + sel(`outcome="success"`) + `[5m]) > 0)) or vector(0)`, "not answering", false}),
			{kind: "stat", title: "Goodput per objective", unit: "percentunit", w: 24, h: 4,
				description: "Share of judged requests that succeeded and met every threshold of the objective.",
				queries:     []query{{"sum by (target, scenario, objective) (" + rate("llmprobe_slo_good_requests_total", sel()) + ") / sum by (target, scenario, objective) (" + rate("llmprobe_slo_requests_total", sel()) + ")", "{{target}}/{{scenario}} {{objective}}", false}}},
		}},
		{"Latency — engine view (from the actual send)", []panelSpec{
			latencyPanel("Time to first token", "llmprobe_time_to_first_token_seconds", "ttft", "From the actual send to the first chunk carrying generated text. Successful streamed requests. Dashed: the SLO thresholds on TTFT."),
			latencyPanel("Inter-token latency", "llmprobe_inter_token_latency_seconds", "", "Gaps between chunks with generated text, one observation per token."),
			latencyPanel("Time per output token", "llmprobe_time_per_output_token_seconds", "tpot", "(e2e − TTFT) / (output tokens − 1). Dashed: the SLO thresholds on TPOT."),
			latencyPanel("Normalized time per output token", "llmprobe_normalized_time_per_output_token_seconds", "ntpot", "e2e / output tokens. Dashed: the SLO thresholds on NTPOT."),
			latencyPanel("End-to-end request duration", "llmprobe_request_duration_seconds", "e2e", "From the actual send to the last byte. Dashed: the SLO thresholds on e2e."),
			latencyPanel("Time to first byte", "llmprobe_time_to_first_byte_seconds", "", "From the actual send to the response headers."),
		}},
		{"Latency distributions (heatmaps)", []panelSpec{
			heatmap("TTFT heatmap", "llmprobe_time_to_first_token_seconds", "Requests per second per TTFT bucket, selected probes merged (native buckets where stored)."),
			heatmap("ITL heatmap", "llmprobe_inter_token_latency_seconds", "Tokens per second per inter-token-latency bucket."),
			heatmap("End-to-end heatmap", "llmprobe_request_duration_seconds", "Requests per second per e2e bucket."),
		}},
		{"Engine view vs user view", []panelSpec{
			ts("TTFT p99: engine vs user", "s", "Engine view from the actual send; user view from the intended send. The gap is the client's own queueing, near zero when healthy.",
				query{quantile("0.99", "target, scenario", "llmprobe_time_to_first_token_seconds", sel(), rateWindow), "engine {{target}}/{{scenario}}", false},
				query{quantile("0.99", "target, scenario", "llmprobe_intended_time_to_first_token_seconds", sel(), rateWindow), "user {{target}}/{{scenario}}", false}),
			ts("End-to-end p99: engine vs user", "s", "As TTFT, for the whole request.",
				query{quantile("0.99", "target, scenario", "llmprobe_request_duration_seconds", sel(), rateWindow), "engine {{target}}/{{scenario}}", false},
				query{quantile("0.99", "target, scenario", "llmprobe_intended_request_duration_seconds", sel(), rateWindow), "user {{target}}/{{scenario}}", false}),
			ts("Schedule delay p50 / p99 (the gap)", "s", "Actual minus intended send time, every sent request after warm-up.",
				query{quantile("0.5", "target, scenario", "llmprobe_schedule_delay_seconds", sel(), rateWindow), "p50 {{target}}/{{scenario}}", false},
				query{quantile("0.99", "target, scenario", "llmprobe_schedule_delay_seconds", sel(), rateWindow), "p99 {{target}}/{{scenario}}", false}),
		}},
		{"Goodput per SLO", []panelSpec{
			{kind: "timeseries", title: "Goodput ratio by objective", unit: "percentunit", w: 12,
				description: "Share of judged requests that succeeded and met every threshold of the objective (after warm-up; llmprobe's own cancellations are not judged).",
				queries:     []query{{"sum by (target, scenario, objective) (" + rate("llmprobe_slo_good_requests_total", sel()) + ") / sum by (target, scenario, objective) (" + rate("llmprobe_slo_requests_total", sel()) + ")", "{{target}}/{{scenario}} {{objective}}", false}}},
			{kind: "timeseries", title: "Error budget burn rate, 1h (99% target)", unit: "none", w: 12,
				description: "1 spends a 30-day budget in 30 days; the fast-burn page fires above 14.4 (with the 5m window confirming).",
				queries:     []query{{"(1 - sum by (target, scenario, objective) (rate(llmprobe_slo_good_requests_total" + sel() + "[1h])) / sum by (target, scenario, objective) (rate(llmprobe_slo_requests_total" + sel() + "[1h]))) / (1 - 0.99)", "{{target}}/{{scenario}} {{objective}}", false}}},
		}},
		{"Outcomes and load", []panelSpec{
			{kind: "timeseries", title: "Requests per second by outcome, per target", unit: "reqps", stacked: true,
				description: "Every outcome of every request, warm-up included, per target (never summed across targets).",
				queries:     []query{{"sum by (target, outcome) (" + rate("llmprobe_requests_total", sel()) + ")", "{{target}} {{outcome}}", false}}},
			ts("Error ratio", "percentunit", "Per probe, canceled left out of both sides.",
				query{"sum by (target, scenario) (" + rate("llmprobe_requests_total", sel(`outcome!~"success|canceled"`)) + ") / sum by (target, scenario) (" + rate("llmprobe_requests_total", sel(`outcome!="canceled"`)) + ")", "{{target}}/{{scenario}}", false}),
			ts("Scheduled, dropped, backed off, late, lost per second", "reqps", "The books: scheduled = sent + dropped + backed off; lost: sent by a worker that died.",
				query{"sum by (target, scenario) (" + rate("llmprobe_requests_scheduled_total", sel()) + ")", "scheduled {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (" + rate("llmprobe_requests_dropped_total", sel()) + ")", "dropped {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (" + rate("llmprobe_requests_backed_off_total", sel()) + ")", "backed off {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (" + rate("llmprobe_late_dispatches_total", sel()) + ")", "late {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (" + rate("llmprobe_requests_lost_total", sel()) + ")", "lost {{target}}/{{scenario}}", false}),
			ts("Requests: sent vs configured", "reqps", "Achieved send rate against the configured open-loop rate (closed loop: configured concurrency).",
				query{"sum by (target, scenario) (" + rate("llmprobe_requests_total", sel()) + ")", "sent {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (llmprobe_configured_rate_requests_per_second" + sel() + ")", "configured rate {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (llmprobe_configured_concurrency" + sel() + ")", "configured concurrency {{target}}/{{scenario}}", false}),
			ts("In flight vs cap", "none", "Requests in flight per probe against max_in_flight (closed loop: the concurrency).",
				query{"sum by (target, scenario) (llmprobe_requests_in_flight" + sel() + ")", "in flight {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (llmprobe_max_in_flight" + sel() + ")", "cap {{target}}/{{scenario}}", false}),
			ts("Load shed ratio and Retry-After back-off", "percentunit", "Share of the last 10 s of arrivals dropped at max_in_flight: the engine does not keep up (never client saturation). Back-off: workers holding arrivals for a Retry-After.",
				query{"max by (target, scenario) (llmprobe_load_shed_ratio" + sel() + ")", "shed {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (llmprobe_retry_after_backoff_workers" + sel() + ")", "backing off (workers) {{target}}/{{scenario}}", false}),
			ts("Connection retries per second by reason", "reqps", "Requests sent again on a fresh connection because the kept-alive one failed before any response byte.",
				query{"sum by (target, scenario, reason) (" + rate("llmprobe_connection_retries_total", sel()) + ")", "{{target}}/{{scenario}} {{reason}}", false}),
			ts("Tokens per second", "none", "From the server's usage.",
				query{"sum by (target, scenario) (" + rate("llmprobe_output_tokens_total", sel()) + ")", "output {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (" + rate("llmprobe_input_tokens_total", sel()) + ")", "input {{target}}/{{scenario}}", false}),
		}},
		{"Input and output lengths", []panelSpec{
			{kind: "timeseries", title: "Input tokens per request", unit: "none", w: 12, description: "p50, p90, p99 and mean of the prompt tokens per successful request.",
				queries: lengthQueries("llmprobe_request_input_tokens")},
			{kind: "timeseries", title: "Output tokens per request", unit: "none", w: 12, description: "p50, p90, p99 and mean of the generated tokens per successful request.",
				queries: lengthQueries("llmprobe_request_output_tokens")},
		}},
		{"Engine (server-side): the engine's own metrics beside llmprobe's", []panelSpec{
			ts("TTFT p50 / p99: server vs client", "s", "Server: arrival in the engine to first token (vLLM, SGLang). Client: llmprobe's, scenarios merged per target. Pick the engine's job in Engine scrape job.",
				query{quantile("0.5", "job", "vllm:time_to_first_token_seconds", engineSel, rateWindow), "server p50 {{job}} (vLLM)", false},
				query{quantile("0.99", "job", "vllm:time_to_first_token_seconds", engineSel, rateWindow), "server p99 {{job}} (vLLM)", false},
				query{quantile("0.5", "job", "sglang:time_to_first_token_seconds", engineSel, rateWindow), "server p50 {{job}} (SGLang)", false},
				query{quantile("0.99", "job", "sglang:time_to_first_token_seconds", engineSel, rateWindow), "server p99 {{job}} (SGLang)", false},
				query{quantile("0.5", "target", "llmprobe_time_to_first_token_seconds", sel(), rateWindow), "client p50 {{target}}", false},
				query{quantile("0.99", "target", "llmprobe_time_to_first_token_seconds", sel(), rateWindow), "client p99 {{target}}", false}),
			ts("Inter-token latency p50 / p99: server vs client", "s", "Both count a step of k tokens as k observations of gap/k.",
				query{quantile("0.5", "job", "vllm:inter_token_latency_seconds", engineSel, rateWindow), "server p50 {{job}} (vLLM)", false},
				query{quantile("0.99", "job", "vllm:inter_token_latency_seconds", engineSel, rateWindow), "server p99 {{job}} (vLLM)", false},
				query{quantile("0.5", "job", "sglang:inter_token_latency_seconds", engineSel, rateWindow), "server p50 {{job}} (SGLang)", false},
				query{quantile("0.99", "job", "sglang:inter_token_latency_seconds", engineSel, rateWindow), "server p99 {{job}} (SGLang)", false},
				query{quantile("0.5", "target", "llmprobe_inter_token_latency_seconds", sel(), rateWindow), "client p50 {{target}}", false},
				query{quantile("0.99", "target", "llmprobe_inter_token_latency_seconds", sel(), rateWindow), "client p99 {{target}}", false}),
			ts("End-to-end p50 / p99: server vs client", "s", "",
				query{quantile("0.5", "job", "vllm:e2e_request_latency_seconds", engineSel, rateWindow), "server p50 {{job}} (vLLM)", false},
				query{quantile("0.99", "job", "vllm:e2e_request_latency_seconds", engineSel, rateWindow), "server p99 {{job}} (vLLM)", false},
				query{quantile("0.5", "job", "sglang:e2e_request_latency_seconds", engineSel, rateWindow), "server p50 {{job}} (SGLang)", false},
				query{quantile("0.99", "job", "sglang:e2e_request_latency_seconds", engineSel, rateWindow), "server p99 {{job}} (SGLang)", false},
				query{quantile("0.5", "target", "llmprobe_request_duration_seconds", sel(), rateWindow), "client p50 {{target}}", false},
				query{quantile("0.99", "target", "llmprobe_request_duration_seconds", sel(), rateWindow), "client p99 {{target}}", false}),
			ts("Server queue time p50 / p99 and mean", "s", "Waiting for a batch slot or KV cache inside the engine. vLLM's buckets start at 0.3 s: below that the mean is the figure to read.",
				query{quantile("0.5", "job", "vllm:request_queue_time_seconds", engineSel, rateWindow), "p50 {{job}} (vLLM)", false},
				query{quantile("0.99", "job", "vllm:request_queue_time_seconds", engineSel, rateWindow), "p99 {{job}} (vLLM)", false},
				query{quantile("0.5", "job", "sglang:queue_time_seconds", engineSel, rateWindow), "p50 {{job}} (SGLang)", false},
				query{quantile("0.99", "job", "sglang:queue_time_seconds", engineSel, rateWindow), "p99 {{job}} (SGLang)", false},
				query{mean("job", "vllm:request_queue_time_seconds", engineSel, rateWindow), "mean {{job}} (vLLM)", false},
				query{mean("job", "sglang:queue_time_seconds", engineSel, rateWindow), "mean {{job}} (SGLang)", false}),
			ts("Requests running / waiting (server) vs in flight (client)", "none", "Waiting above zero for minutes: the engine is at its limit.",
				query{"sum by (job) (vllm:num_requests_running" + engineSel + ")", "running {{job}} (vLLM)", false},
				query{"sum by (job) (vllm:num_requests_waiting" + engineSel + ")", "waiting {{job}} (vLLM)", false},
				query{"sum by (job) (sglang:num_running_reqs" + engineSel + ")", "running {{job}} (SGLang)", false},
				query{"sum by (job) (sglang:num_queue_reqs" + engineSel + ")", "waiting {{job}} (SGLang)", false},
				query{"sum by (job) (llamacpp:requests_processing" + engineSel + ")", "running {{job}} (llama.cpp)", false},
				query{"sum by (job) (llamacpp:requests_deferred" + engineSel + ")", "waiting {{job}} (llama.cpp)", false},
				query{"sum by (target) (llmprobe_requests_in_flight" + sel() + ")", "client in flight {{target}}", false}),
			ts("Time per output token, mean: server vs client", "s", "llama.cpp divides generation time by every token, the first included: (n − 1)/n of the true TPOT.",
				query{"sum by (job) (rate(llamacpp:tokens_predicted_seconds_total" + engineSel + "[" + rateWindow + "])) / sum by (job) (rate(llamacpp:tokens_predicted_total" + engineSel + "[" + rateWindow + "]))", "server {{job}} (llama.cpp, per token)", false},
				query{mean("job", "vllm:request_time_per_output_token_seconds", engineSel, rateWindow), "server {{job}} (vLLM, per request)", false},
				query{mean("job", "sglang:inter_token_latency_seconds", engineSel, rateWindow), "server {{job}} (SGLang, per token)", false},
				query{mean("target", "llmprobe_time_per_output_token_seconds", sel(), rateWindow), "client TPOT {{target}}", false},
				query{mean("target", "llmprobe_inter_token_latency_seconds", sel(), rateWindow), "client ITL {{target}}", false}),
		}},
		{"Prober health (per llmprobe instance and worker)", []panelSpec{
			ts("Client saturated, and requests measured meanwhile", "none", "1 while a worker judges itself saturated (signals in the next panels: late sends, CPU, scheduler latency, record backlog, client read lag); its latencies then include its own queueing and the SLO alerts hold back.",
				query{"max by (instance, worker) (llmprobe_client_saturated" + workerSel() + ")", "saturated {{instance}} w{{worker}}", false},
				query{"sum by (target, scenario) (" + rate("llmprobe_saturated_observations_total", sel()) + ")", "saturated observations/s {{target}}/{{scenario}}", false}),
			{kind: "timeseries", title: "Saturation signal: late sends per second", unit: "reqps", description: "Sends later than late_dispatch_threshold (5 ms); a window is bad at 3 or more and over 5% of its sends.",
				queries: []query{{"sum by (instance, worker) (" + rate("llmprobe_worker_late_dispatches_total", workerSel()) + ")", "{{instance}} w{{worker}}", false}}},
			{kind: "timeseries", title: "Saturation signal: CPU utilization", unit: "percentunit", description: "Worker CPU over the cores it may use; bad above 90%. The rate of the CPU counter is the same figure over the panel's interval.",
				queries: []query{
					{"max by (instance, worker) (llmprobe_worker_cpu_utilization_ratio" + workerSel() + ")", "{{instance}} w{{worker}}", false},
					{"sum by (instance) (" + rate("llmprobe_worker_cpu_seconds_total", workerSel()) + ")", "cores used {{instance}}", false},
				}, thresholdRefs: nil},
			ts("Saturation signal: Go scheduler latency p99 and GC pause max", "s", "Runnable to running, last window; bad above 3 ms.",
				query{"max by (instance, worker) (llmprobe_worker_go_sched_latency_p99_seconds" + workerSel() + ")", "sched p99 {{instance}} w{{worker}}", false},
				query{"max by (instance, worker) (llmprobe_worker_gc_pause_max_seconds" + workerSel() + ")", "GC pause {{instance}} w{{worker}}", false}),
			ts("Saturation signal: record backlog", "bytes", "Records waiting to reach the supervisor; bad above 4 MiB.",
				query{"max by (instance, worker) (llmprobe_worker_record_backlog_bytes" + workerSel() + ")", "{{instance}} w{{worker}}", false}),
			ts("Saturation signal: client read lag p50 / p99", "s", "Per text event with a kernel receive stamp: the time its read returned in user space minus the kernel's receive time, what the client's own reading would have added (kernel-stamped figures leave it out). A worker's window is bad when its p99 is above 10 ms, judged from 20 such events on.",
				query{quantile("0.5", "instance, worker", "llmprobe_worker_client_read_lag_seconds", workerSel(), rateWindow), "p50 {{instance}} w{{worker}}", false},
				query{quantile("0.99", "instance, worker", "llmprobe_worker_client_read_lag_seconds", workerSel(), rateWindow), "p99 {{instance}} w{{worker}}", false},
				query{quantile("0.99", "target, scenario", "llmprobe_client_read_lag_seconds", sel(), rateWindow), "p99 {{target}}/{{scenario}}", false}),
			ts("Timestamp source", "none", "1 for the clock that timed each probe's latest answered request: kernel (receive stamps; the client's read lag is left out of the figures) or user (user-space stamps, which include it: timestamps: user, HTTP/2, a socket that refused the option, not Linux).",
				query{"max by (target, scenario, source) (llmprobe_timestamp_source" + sel() + ")", "{{source}} {{target}}/{{scenario}}", false}),
			ts("Coalesced events and clock-step fallbacks per second", "none", "Text events that one read delivered together with another (they count as one chunk of their tokens), and reads whose kernel stamp was set aside because the wall clock stepped (their user-space stamp was used).",
				query{"sum by (target, scenario) (" + rate("llmprobe_coalesced_events_total", sel()) + ")", "coalesced {{target}}/{{scenario}}", false},
				query{"sum by (target, scenario) (" + rate("llmprobe_timestamp_clock_steps_total", sel()) + ")", "clock steps {{target}}/{{scenario}}", false}),
			ts("Worker schedule delay p99", "s", "Actual minus intended send, per worker, warm-up included.",
				query{quantile("0.99", "instance, worker", "llmprobe_worker_schedule_delay_seconds", workerSel(), rateWindow), "{{instance}} w{{worker}}", false}),
			ts("Worker in flight vs cap, send rate vs configured", "none", "A worker's share of max_in_flight and of the rate.",
				query{"sum by (instance, worker) (llmprobe_worker_requests_in_flight" + workerSel() + ")", "in flight {{instance}} w{{worker}}", false},
				query{"sum by (instance, worker) (llmprobe_worker_max_in_flight" + workerSel() + ")", "cap {{instance}} w{{worker}}", false},
				query{"sum by (instance, worker) (llmprobe_worker_send_rate_requests_per_second" + workerSel() + ")", "send rate {{instance}} w{{worker}}", false},
				query{"sum by (instance, worker) (llmprobe_worker_configured_rate_requests_per_second" + workerSel() + ")", "configured rate {{instance}} w{{worker}}", false},
				query{"sum by (instance, worker) (" + rate("llmprobe_worker_requests_sent_total", workerSel()) + ")", "sent/s {{instance}} w{{worker}}", false},
				query{"sum by (instance, worker) (" + rate("llmprobe_worker_requests_dropped_total", workerSel()) + ")", "dropped/s {{instance}} w{{worker}}", false}),
			ts("Worker restarts, lost requests, up", "none", "Restarts and lost requests in the last hour; up is 1 while the worker process runs.",
				query{"sum by (instance, worker) (increase(llmprobe_worker_restarts_total" + workerSel() + "[1h]))", "restarts {{instance}} w{{worker}}", false},
				query{"sum by (instance, worker) (increase(llmprobe_worker_lost_requests_total" + workerSel() + "[1h]))", "lost {{instance}} w{{worker}}", false},
				query{"min by (instance, worker) (llmprobe_worker_up" + workerSel() + ")", "up {{instance}} w{{worker}}", false}),
			ts("Usage mismatches per second", "reqps", "Requests whose reported usage disagreed with the tokens counted in the stream.",
				query{"sum by (target, scenario) (" + rate("llmprobe_usage_mismatches_total", sel()) + ")", "{{target}}/{{scenario}}", false}),
			ts("Configuration reload", "none", "1 while the last reload succeeded; the age of the last successful one.",
				query{"min by (instance) (llmprobe_config_last_reload_successful" + workerSel() + ")", "successful {{instance}}", false},
				query{"max by (instance) (time() - llmprobe_config_last_reload_success_timestamp_seconds" + workerSel() + ")", "seconds since success {{instance}}", false}),
			{kind: "table", title: "Build", unit: "none", description: "Version and revision of every llmprobe instance.",
				queries: []query{{"max by (instance, version, revision, goversion) (llmprobe_build_info" + workerSel() + ")", "{{instance}} {{version}}", false}}},
		}},
		{"Ground truth (endpoints that stamp their own timings, e.g. the reference endpoint)", []panelSpec{
			{kind: "timeseries", title: "TTFT bias p50 / p99", unit: "s", w: 12, description: "Measured TTFT minus the endpoint's stamped TTFT.",
				queries: []query{
					{quantile("0.5", "target, scenario", "llmprobe_ground_truth_ttft_bias_seconds", sel(), rateWindow), "p50 {{target}}/{{scenario}}", false},
					{quantile("0.99", "target, scenario", "llmprobe_ground_truth_ttft_bias_seconds", sel(), rateWindow), "p99 {{target}}/{{scenario}}", false},
				}},
			{kind: "timeseries", title: "Emit lag p50 / p99", unit: "s", w: 12, description: "Receive time minus the endpoint's stamped emit time, per text event: the client's read lag plus the path.",
				queries: []query{
					{quantile("0.5", "target, scenario", "llmprobe_ground_truth_emit_lag_seconds", sel(), rateWindow), "p50 {{target}}/{{scenario}}", false},
					{quantile("0.99", "target, scenario", "llmprobe_ground_truth_emit_lag_seconds", sel(), rateWindow), "p99 {{target}}/{{scenario}}", false},
				}},
		}},
	}
}

func lengthQueries(name string) []query {
	return []query{
		{quantile("0.5", "target, scenario", name, sel(), rateWindow), "p50 {{target}}/{{scenario}}", false},
		{quantile("0.9", "target, scenario", name, sel(), rateWindow), "p90 {{target}}/{{scenario}}", false},
		{quantile("0.99", "target, scenario", name, sel(), rateWindow), "p99 {{target}}/{{scenario}}", false},
		{mean("target, scenario", name, sel(), rateWindow), "mean {{target}}/{{scenario}}", false},
	}
}

// dashboardDeliberatelyAbsent lists the exported families no panel shows,
// each with why. TestDashboardCoversMetrics fails on any other family missing.
var dashboardDeliberatelyAbsent = map[string]string{}

type obj = map[string]any

var datasourceRef = obj{"type": "prometheus", "uid": "${datasource}"}

func queryVariable(name, label, q string) obj {
	return obj{
		"name": name, "label": label, "type": "query", "datasource": datasourceRef,
		"query":      obj{"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
		"definition": q, "refresh": 2, "includeAll": true, "multi": true, "allValue": ".*",
		"current": obj{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		"sort":    1, "hide": 0, "regex": "", "options": []any{},
	}
}

func (p panelSpec) json(id, x, y, w, h int) obj {
	var targets []any
	for i, q := range p.queries {
		t := obj{"datasource": datasourceRef, "expr": q.expr, "legendFormat": q.legend, "refId": refID(i), "range": true}
		if q.heatmap {
			t["format"] = "heatmap"
		}
		if p.kind == "stat" || p.kind == "table" {
			t["instant"], t["range"] = true, false
		}
		targets = append(targets, t)
	}
	defaults := obj{"unit": p.unit}
	var overrides []any
	for _, ref := range p.thresholdRefs {
		overrides = append(overrides, obj{
			"matcher": obj{"id": "byFrameRefID", "options": ref},
			"properties": []any{
				obj{"id": "custom.lineStyle", "value": obj{"fill": "dash", "dash": []int{10, 10}}},
				obj{"id": "color", "value": obj{"mode": "fixed", "fixedColor": "red"}},
			},
		})
	}
	if overrides == nil {
		overrides = []any{}
	}
	out := obj{
		"id": id, "type": p.kind, "title": p.title, "description": p.description,
		"datasource": datasourceRef, "gridPos": obj{"x": x, "y": y, "w": w, "h": h},
		"targets": targets,
	}
	switch p.kind {
	case "timeseries":
		stacking := "none"
		if p.stacked {
			stacking = "normal"
		}
		defaults["custom"] = obj{"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0, "showPoints": "never", "spanNulls": false,
			"stacking": obj{"mode": stacking, "group": "A"}}
		out["options"] = obj{
			"legend":  obj{"displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": []string{"mean", "max", "lastNotNull"}},
			"tooltip": obj{"mode": "multi", "sort": "desc"},
		}
	case "stat":
		out["options"] = obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode": "value", "graphMode": "area", "textMode": "value_and_name", "orientation": "auto"}
	case "heatmap":
		out["options"] = obj{"calculate": false, "yAxis": obj{"unit": p.unit}, "cellGap": 1,
			"color": obj{"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "steps": 64}, "tooltip": obj{"mode": "single", "yHistogram": true},
			"rowsFrame": obj{"layout": "auto"}}
	case "table":
		out["options"] = obj{"showHeader": true}
		out["transformations"] = []any{obj{"id": "labelsToFields", "options": obj{}}}
	}
	out["fieldConfig"] = obj{"defaults": defaults, "overrides": overrides}
	return out
}

// Dashboard renders dashboards/llmprobe.json.
func Dashboard() ([]byte, error) {
	var panels []any
	id, y := 1, 0
	for _, r := range dashboardRows() {
		panels = append(panels, obj{"id": id, "type": "row", "title": r.title, "collapsed": false,
			"gridPos": obj{"x": 0, "y": y, "w": 24, "h": 1}, "panels": []any{}})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range r.panels {
			w, h := p.w, p.h
			if w == 0 {
				w = 8
			}
			if h == 0 {
				h = 8
			}
			if x+w > 24 {
				x, y = 0, y+rowH
				rowH = 0
			}
			panels = append(panels, p.json(id, x, y, w, h))
			id++
			x += w
			rowH = max(rowH, h)
		}
		y += rowH
	}
	d := obj{
		"title": "llmprobe", "uid": "llmprobe",
		"description": "LLM inference endpoints measured by llmprobe: per-target overview, engine latency (TTFT, ITL, TPOT, NTPOT, e2e) with SLO thresholds, heatmaps, the client's own queueing, SLO goodput, outcomes, lengths, the engine's own server-side figures (vLLM, SGLang, llama.cpp) and the prober's health. Every histogram query reads native histograms where stored and classic buckets otherwise. Generated by deploy/dashboard.go.",
		"tags":        []string{"llmprobe", "llm", "inference", "slo"},
		"editable":    true, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
		"time": obj{"from": "now-3h", "to": "now"}, "refresh": "30s", "timezone": "", "fiscalYearStartMonth": 0, "liveNow": false,
		"annotations": obj{"list": []any{obj{"builtIn": 1, "datasource": obj{"type": "grafana", "uid": "-- Grafana --"}, "enable": true, "hide": true,
			"iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}}},
		"links": []any{},
		"templating": obj{"list": []any{
			obj{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "refresh": 1, "current": obj{},
				"hide": 0, "includeAll": false, "multi": false, "options": []any{}, "regex": ""},
			queryVariable("job", "Job", "label_values(llmprobe_requests_total, job)"),
			queryVariable("target", "Target", `label_values(llmprobe_requests_total{job=~"$job"}, target)`),
			queryVariable("scenario", "Scenario", `label_values(llmprobe_requests_total{job=~"$job", target=~"$target"}, scenario)`),
			queryVariable("instance", "llmprobe instance", `label_values(llmprobe_client_saturated{job=~"$job"}, instance)`),
			queryVariable("engine_job", "Engine scrape job", `label_values({__name__=~"vllm:num_requests_running|sglang:num_running_reqs|llamacpp:requests_processing"}, job)`),
		}},
		"panels": panels,
	}
	// Unescaped: PromQL's > and & stay readable in the file.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
