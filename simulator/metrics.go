package simulator

import (
	"github.com/prometheus/client_golang/prometheus"
	"time"
)

// metrics is the endpoint's own server-side view, named and bucketed as
// vLLM exports it so that dashboards built for vLLM work against the
// simulator, plus the simulator's own emit lateness and fault counts.
type metrics struct {
	reg *prometheus.Registry

	ttft       prometheus.Observer
	queue      prometheus.Observer
	itl        prometheus.Observer
	tpot       prometheus.Observer
	e2e        prometheus.Observer
	running    prometheus.Gauge
	waiting    prometheus.Gauge
	promptToks prometheus.Counter
	genToks    prometheus.Counter
	lateness   prometheus.Observer
	faults     [numFaultKinds]prometheus.Counter
}

// vLLM's bucket layouts (vllm/v1/metrics/loggers.py).
var (
	vllmTTFTBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	vllmITLBuckets  = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	vllmReqBuckets  = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
	// Fine at the low end: the promise is p99 lateness under 1ms.
	latenessBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1}
)

func newMetrics(modelName string) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	labels := prometheus.Labels{"model_name": modelName}
	hist := func(name, help string, buckets []float64) prometheus.Observer {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets, ConstLabels: labels})
		m.reg.MustRegister(h)
		return h
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
		m.reg.MustRegister(g)
		return g
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
		m.reg.MustRegister(c)
		return c
	}
	m.ttft = hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds (arrival to first text-bearing event, queue included).", vllmTTFTBuckets)
	m.queue = hist("vllm:request_queue_time_seconds", "Histogram of time spent waiting for a batch slot in seconds.", vllmReqBuckets)
	m.itl = hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", vllmITLBuckets)
	m.tpot = hist("vllm:request_time_per_output_token_seconds", "Histogram of time_per_output_token_seconds per request: decode time over generated tokens minus one.", vllmITLBuckets)
	m.e2e = hist("vllm:e2e_request_latency_seconds", "Histogram of end-to-end request latency in seconds.", vllmReqBuckets)
	m.running = gauge("vllm:num_requests_running", "Number of requests in the batch.")
	m.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting for a batch slot.")
	m.promptToks = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.")
	m.genToks = counter("vllm:generation_tokens_total", "Number of generation tokens emitted.")
	// Native buckets too: the benchmark reads this p99 beside every row, and
	// the classic buckets jump from 1 to 2.5 ms where it matters.
	lateness := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "llmprobe_simulator_emit_lateness_seconds", Help: "Actual minus scheduled emit time of each streamed event (the simulator's own timing error).",
		Buckets: latenessBuckets, ConstLabels: labels,
		NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 160, NativeHistogramMinResetDuration: time.Hour,
	})
	m.reg.MustRegister(lateness)
	m.lateness = lateness
	fc := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmprobe_simulator_faults_total", Help: "Faults injected, by kind.", ConstLabels: labels,
	}, []string{"kind"})
	m.reg.MustRegister(fc)
	for k := faultKind(1); k < numFaultKinds; k++ {
		m.faults[k] = fc.WithLabelValues(k.String())
	}
	return m
}
