// Package metrics defines llmprobe's metrics and turns records into them.
// Every per-request series is resolved once per probe (target, scenario) when
// the plan is made, so observing a record does no label lookups.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

const namespace = "llmprobe"

// Classic buckets of the quantities that keep a fixed ladder (the
// per-request ones are in ladder.go): time to first byte spans milliseconds
// to minutes; schedule delay should stay well under a millisecond, so its
// buckets start at 50µs.
var (
	requestBuckets  = []float64{.005, .01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300}
	delayBuckets    = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	biasBuckets     = []float64{-.001, 0, .0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1}
	probeLabelNames = []string{"target", "scenario"}
)

func histogramOpts(name, help string, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      name,
		Help:      help,
		Buckets:   buckets,
		// Native buckets side by side with the classic ones: ~10% resolution,
		// bounded in size, reset at most hourly.
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

func histogram(name, help string, buckets []float64, labels []string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(histogramOpts(name, help, buckets), labels)
}

// Metrics holds every per-probe metric vector. One Metrics lives for the
// daemon's lifetime, across reloads and worker restarts, so counters never go
// backwards.
type Metrics struct {
	ttft, itl, tpot, ntpot, e2e       *ladderHistograms
	intendedTTFT, intendedE2E         *ladderHistograms
	inputTokensHist, outputTokensHist *ladderHistograms
	ttfb, scheduleDelay               *prometheus.HistogramVec
	ttftBias, emitLag                 *prometheus.HistogramVec
	readLag                           *prometheus.HistogramVec
	coalesced, clockSteps             *prometheus.CounterVec
	books                             *books
	inputTokens, outputTokens         *prometheus.CounterVec
	usageMismatch, saturatedObs       *prometheus.CounterVec
	sloRequests, sloGood              *prometheus.CounterVec
	retries                           *prometheus.CounterVec
	rate, concurrency, cap            *prometheus.GaugeVec
	shed                              *prometheus.GaugeVec
	sloObjective                      *prometheus.GaugeVec
	timestampSource                   *prometheus.GaugeVec
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	sloLabels := []string{"target", "scenario", "objective"}
	m := &Metrics{
		books: newBooks(),
		ttft:  newLadderHistograms("time_to_first_token_seconds", "Time from the actual send to the first chunk carrying generated text (content or reasoning), successful streamed requests."),
		itl:   newLadderHistograms("inter_token_latency_seconds", "Gaps between chunks carrying generated text, a chunk of k tokens counting k times gap/k, successful streamed requests."),
		tpot:  newLadderHistograms("time_per_output_token_seconds", "(e2e - TTFT) / (output tokens - 1), successful streamed requests with at least 2 output tokens."),
		ntpot: newLadderHistograms("normalized_time_per_output_token_seconds", "e2e / output tokens, successful requests with at least 1 output token."),
		e2e:   newLadderHistograms("request_duration_seconds", "End-to-end latency from the actual send to the last byte, successful requests."),
		ttfb:  histogram("time_to_first_byte_seconds", "Time from the actual send to the response headers, successful requests.", requestBuckets, probeLabelNames),
		intendedTTFT: newLadderHistograms("intended_time_to_first_token_seconds",
			"TTFT counted from the intended send time: what a user arriving on schedule saw. Minus time_to_first_token_seconds, it is the client's own queueing."),
		intendedE2E: newLadderHistograms("intended_request_duration_seconds",
			"End-to-end latency counted from the intended send time (includes the client's own schedule delay)."),
		scheduleDelay:    histogram("schedule_delay_seconds", "Actual send time minus intended send time: the client's own queueing, every sent request after warm-up, observed as it is sent.", delayBuckets, probeLabelNames),
		inputTokensHist:  newLadderHistograms("request_input_tokens", "Input (prompt) tokens per successful request."),
		outputTokensHist: newLadderHistograms("request_output_tokens", "Output (generated) tokens per successful request."),
		ttftBias: histogram("ground_truth_ttft_bias_seconds",
			"Measured TTFT minus the endpoint's own stamped TTFT, where the endpoint stamps it (the reference endpoint does): the measurement's bias.", biasBuckets, probeLabelNames),
		emitLag: histogram("ground_truth_emit_lag_seconds",
			"Receive wall time minus the endpoint's stamped emit time, per text-bearing event, where the endpoint stamps events.", biasBuckets, probeLabelNames),
		readLag: histogram("client_read_lag_seconds",
			"Per text-bearing event with a kernel receive stamp, the time its read returned in user space minus the kernel's receive time: the delay the client itself would have added to the figures.", delayBuckets, probeLabelNames),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "coalesced_events_total",
			Help: "Text-bearing events that one read delivered together with another; each such read counts as one chunk of their tokens."}, probeLabelNames),
		clockSteps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "timestamp_clock_steps_total",
			Help: "Reads whose kernel receive stamp was not used because the wall clock stepped during their request (their user-space stamp was)."}, probeLabelNames),
		inputTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "input_tokens_total",
			Help: "Input tokens of completed requests, from the server's usage."}, probeLabelNames),
		outputTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "output_tokens_total",
			Help: "Output tokens received, from the server's usage or counted when it sends none."}, probeLabelNames),
		usageMismatch: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "usage_mismatches_total",
			Help: "Requests whose reported usage disagreed with the tokens counted in the stream."}, probeLabelNames),
		saturatedObs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "saturated_observations_total",
			Help: "Requests measured while their worker judged itself saturated; they are still in the histograms."}, probeLabelNames),
		sloRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "slo_requests_total",
			Help: "Requests judged against an SLO objective (after warm-up; requests llmprobe itself canceled at a shutdown or reload are not judged)."}, sloLabels),
		sloGood: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "slo_good_requests_total",
			Help: "Requests that succeeded and met every threshold of the SLO objective."}, sloLabels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "connection_retries_total",
			Help: "Requests sent a second time, on a fresh connection, because the kept-alive connection they first went out on failed before any response byte (the server had closed or reset it), by reason."}, []string{"target", "scenario", "reason"}),
		shed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "load_shed_ratio",
			Help: "Fraction of the probe's arrivals over the last 10s that were not sent because max_in_flight was full: the engine does not keep up with the configured load. An engine-side signal; it never marks the client saturated. Always 0 in closed loop."}, probeLabelNames),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "configured_rate_requests_per_second",
			Help: "Configured open-loop arrival rate (0 for closed loop)."}, probeLabelNames),
		concurrency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "configured_concurrency",
			Help: "Configured closed-loop concurrency (0 for open loop)."}, probeLabelNames),
		cap: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "max_in_flight",
			Help: "Configured cap on requests in flight."}, probeLabelNames),
		sloObjective: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "slo_objective_seconds",
			Help: "Configured threshold of an SLO objective, per quantity (ttft, tpot, ntpot, e2e): a request is good when it meets every threshold of its objective."},
			[]string{"target", "scenario", "objective", "quantity"}),
		timestampSource: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "timestamp_source",
			Help: "Which clock timed the probe's latest request that got a response: 1 for that source, 0 for the other. kernel: the kernel's receive stamps (client_read_lag_seconds measures what the client's own reading would have added); user: user-space stamps, which include it (timestamps: user, a socket that refused the option, HTTP/2, not Linux)."},
			[]string{"target", "scenario", "source"}),
	}
	for _, c := range m.all() {
		reg.MustRegister(c)
	}
	return m
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{
		m.ttft, m.itl, m.tpot, m.ntpot, m.e2e, m.ttfb, m.intendedTTFT, m.intendedE2E, m.scheduleDelay,
		m.inputTokensHist, m.outputTokensHist, m.ttftBias, m.emitLag, m.readLag, m.coalesced, m.clockSteps,
		m.books, m.inputTokens, m.outputTokens, m.usageMismatch, m.saturatedObs, m.sloRequests, m.sloGood,
		m.retries, m.rate, m.concurrency, m.cap, m.shed, m.sloObjective, m.timestampSource,
	}
}

// Forget deletes every series of a probe that is no longer configured, so a
// reload that removes a probe does not leave it frozen on /metrics.
func (m *Metrics) Forget(target, scenario string) {
	m.books.forget(target, scenario)
	labels := prometheus.Labels{"target": target, "scenario": scenario}
	for _, c := range m.all() {
		if v, ok := c.(interface {
			DeletePartialMatch(prometheus.Labels) int
		}); ok {
			v.DeletePartialMatch(labels)
		}
	}
}

// Probe is the resolved set of series for one (target, scenario).
type Probe struct {
	ttft, itl, tpot, ntpot, e2e, ttfb prometheus.Observer
	intendedTTFT, intendedE2E         prometheus.Observer
	scheduleDelay                     prometheus.Observer
	inputTokensHist, outputTokensHist prometheus.Observer
	ttftBias, emitLag                 prometheus.Observer
	readLag                           prometheus.Observer
	coalesced, clockSteps             prometheus.Counter
	books                             *books
	ledger                            *ledger
	inputTokens, outputTokens         prometheus.Counter
	usageMismatch, saturatedObs       prometheus.Counter
	retries                           [prober.NumRetryReasons]prometheus.Counter // index 0 (no retry) unset
	slos                              []sloSeries
	shed                              shedWindow
	ex                                exemplars
	kernelStamps, userStamps          prometheus.Gauge // llmprobe_timestamp_source
}

type sloSeries struct {
	slo         config.SLO
	total, good prometheus.Counter
}

// ForProbe resolves the series of one (target, scenario) and sets its
// configuration gauges.
func (m *Metrics) ForProbe(target string, sc *config.Scenario) *Probe {
	l := []string{target, sc.Name}
	b := laddersOf(&sc.Buckets)
	p := &Probe{
		ttft: m.ttft.with(b.ttft, target, sc.Name), itl: m.itl.with(b.itl, target, sc.Name), tpot: m.tpot.with(b.tpot, target, sc.Name),
		ntpot: m.ntpot.with(b.ntpot, target, sc.Name), e2e: m.e2e.with(b.e2e, target, sc.Name), ttfb: m.ttfb.WithLabelValues(l...),
		intendedTTFT: m.intendedTTFT.with(b.ttft, target, sc.Name), intendedE2E: m.intendedE2E.with(b.e2e, target, sc.Name),
		scheduleDelay:   m.scheduleDelay.WithLabelValues(l...),
		inputTokensHist: m.inputTokensHist.with(b.tokens, target, sc.Name), outputTokensHist: m.outputTokensHist.with(b.tokens, target, sc.Name),
		ttftBias: m.ttftBias.WithLabelValues(l...), emitLag: m.emitLag.WithLabelValues(l...),
		readLag: m.readLag.WithLabelValues(l...), coalesced: m.coalesced.WithLabelValues(l...), clockSteps: m.clockSteps.WithLabelValues(l...),
		inputTokens: m.inputTokens.WithLabelValues(l...), outputTokens: m.outputTokens.WithLabelValues(l...),
		usageMismatch: m.usageMismatch.WithLabelValues(l...), saturatedObs: m.saturatedObs.WithLabelValues(l...),
		books: m.books, ledger: m.books.ledger(target, sc.Name),
	}
	for r := prober.RetryNone + 1; r < prober.NumRetryReasons; r++ {
		p.retries[r] = m.retries.WithLabelValues(target, sc.Name, r.String())
	}
	p.shed.gauge = m.shed.WithLabelValues(l...)
	// Resolved, not set: a reload keeps what the last request said.
	p.kernelStamps = m.timestampSource.WithLabelValues(target, sc.Name, "kernel")
	p.userStamps = m.timestampSource.WithLabelValues(target, sc.Name, "user")
	p.ex = newExemplars(p.ttft, p.itl, p.tpot, p.ntpot, p.e2e)
	// The thresholds as configured now: a reload may have dropped some.
	m.sloObjective.DeletePartialMatch(prometheus.Labels{"target": target, "scenario": sc.Name})
	for _, s := range sc.SLOs {
		p.slos = append(p.slos, sloSeries{slo: s,
			total: m.sloRequests.WithLabelValues(target, sc.Name, s.Name),
			good:  m.sloGood.WithLabelValues(target, sc.Name, s.Name)})
		for _, t := range []struct {
			quantity string
			v        model.Duration
		}{{"ttft", s.TTFT}, {"tpot", s.TPOT}, {"ntpot", s.NTPOT}, {"e2e", s.E2E}} {
			if t.v > 0 {
				m.sloObjective.WithLabelValues(target, sc.Name, s.Name, t.quantity).Set(time.Duration(t.v).Seconds())
			}
		}
	}
	var rate, conc float64
	if sc.Load.Mode == config.LoadClosed {
		conc = float64(sc.Load.Concurrency)
	} else {
		rate = sc.Load.Rate
	}
	m.rate.WithLabelValues(l...).Set(rate)
	m.concurrency.WithLabelValues(l...).Set(conc)
	inflightCap := sc.Load.MaxInFlight
	if sc.Load.Mode == config.LoadClosed {
		inflightCap = sc.Load.Concurrency
	}
	m.cap.WithLabelValues(l...).Set(float64(inflightCap))
	return p
}

// Observe turns one record into metrics. It runs on the aggregation side,
// never on a timing path.
func (p *Probe) Observe(r *record.Record) {
	p.books.update(p.ledger, func(l *ledger) { l.outcomes[r.Outcome]++ })
	if r.InputTokens > 0 {
		p.inputTokens.Add(float64(r.InputTokens))
	}
	if r.OutputTokens > 0 {
		p.outputTokens.Add(float64(r.OutputTokens))
	}
	if r.UsageMismatch {
		p.usageMismatch.Inc()
	}
	if r.Retry != prober.RetryNone && r.Retry < prober.NumRetryReasons {
		p.retries[r.Retry].Inc()
	}
	if r.Coalesced > 0 {
		p.coalesced.Add(float64(r.Coalesced))
	}
	if r.ClockSteps > 0 {
		p.clockSteps.Add(float64(r.ClockSteps))
	}
	// A request without a response was timed by no read at all.
	if r.Status > 0 {
		k := 0.0
		if r.KernelStamps {
			k = 1
		}
		p.kernelStamps.Set(k)
		p.userStamps.Set(1 - k)
	}
	if r.Warmup {
		return
	}
	// The client's own delay, whatever the outcome: a failed stream was
	// read too.
	for _, lag := range r.ReadLags {
		p.readLag.Observe(lag.Seconds())
	}
	if r.Saturated {
		p.saturatedObs.Inc()
	}
	ok := r.Outcome == prober.OutcomeSuccess
	if ok {
		p.observeLatencies(r)
	}
	// A request llmprobe itself canceled (shutdown, reload drain) says
	// nothing of the endpoint: judged, it would burn error budget at every
	// rollout.
	if r.Outcome == prober.OutcomeCanceled {
		return
	}
	for i := range p.slos {
		s := &p.slos[i]
		s.total.Inc()
		if ok && r.Meets(&s.slo) {
			s.good.Inc()
		}
	}
}

// ObserveSend takes a request as it goes out: its schedule delay counts now,
// not when (or whether) the server answers.
func (p *Probe) ObserveSend(s record.Send) {
	p.books.update(p.ledger, func(l *ledger) { l.sent++ })
	if !s.Warmup {
		p.scheduleDelay.Observe(s.ScheduleDelay.Seconds())
	}
}

// Lose counts n requests of this probe that a worker sent and took with it
// when it died.
func (p *Probe) Lose(n uint64) { p.books.update(p.ledger, func(l *ledger) { l.lost += n }) }

func (p *Probe) observeLatencies(r *record.Record) {
	e2e := r.E2E.Seconds()
	p.ex.observe(p.e2e, &p.ex.e2e, e2e, r)
	// From the intended send: the client's delay, a failed first attempt
	// (Resent) and the latency itself.
	late := r.ScheduleDelay + r.Resent
	p.intendedE2E.Observe((r.E2E + late).Seconds())
	if r.TTFB >= 0 {
		p.ttfb.Observe(r.TTFB.Seconds())
	}
	if r.TTFT >= 0 {
		p.ex.observe(p.ttft, &p.ex.ttft, r.TTFT.Seconds(), r)
		p.intendedTTFT.Observe((r.TTFT + late).Seconds())
		if tpot, ok := r.TPOT(); ok {
			p.ex.observe(p.tpot, &p.ex.tpot, tpot.Seconds(), r)
		}
	}
	// Only the request's longest gap may become the ITL exemplar (the
	// sampler wants the slowest anyway): one sampler decision per record,
	// not one lock per token.
	slowest, slowestPer := -1, 0.0
	for i, g := range r.Gaps {
		k := g.Tokens
		if k < 1 {
			k = 1
		}
		per := (g.Gap / time.Duration(k)).Seconds()
		if slowest < 0 || per > slowestPer {
			slowest, slowestPer = i, per
		}
		for range k - 1 {
			p.itl.Observe(per)
		}
	}
	for i, g := range r.Gaps {
		if i == slowest {
			p.ex.observe(p.itl, &p.ex.itl, slowestPer, r)
		} else {
			p.itl.Observe((g.Gap / time.Duration(max(g.Tokens, 1))).Seconds())
		}
	}
	if n, ok := r.NTPOT(); ok {
		p.ex.observe(p.ntpot, &p.ex.ntpot, n.Seconds(), r)
	}
	if r.InputTokens > 0 {
		p.inputTokensHist.Observe(float64(r.InputTokens))
	}
	p.outputTokensHist.Observe(float64(r.OutputTokens))
	if r.GroundTruth {
		if r.ServerTTFT >= 0 && r.TTFT >= 0 {
			p.ttftBias.Observe((r.TTFT - r.ServerTTFT).Seconds())
		}
		for _, lag := range r.EmitLags {
			p.emitLag.Observe(lag.Seconds())
		}
	}
}
