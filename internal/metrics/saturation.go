package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmprobe/llmprobe/internal/record"
)

// Saturation holds the per-worker client-saturation telemetry: how far the
// load generator itself is from keeping its schedule. Label worker is the
// worker index ("0" for in-process load).
type Saturation struct {
	saturated, up, inFlight, cap, rate, sendRate, cpuUtil, schedP99, gcPauseMax, backlog *prometheus.GaugeVec
	sent, dropped, late, cpu, restarts, lost                                             *prometheus.CounterVec
	scheduleDelay, readLag                                                               *prometheus.HistogramVec
}

// NewSaturation creates the per-worker metrics and registers them on reg.
func NewSaturation(reg prometheus.Registerer) *Saturation {
	w := []string{"worker"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, w)
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, w)
	}
	s := &Saturation{
		saturated: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "llmprobe_client_saturated",
			Help: "1 while the worker judges itself saturated (late sends, CPU, Go scheduler latency, client read lag or record backlog over their thresholds): its latencies then include its own queueing. Drops at the in-flight cap do not count: see llmprobe_load_shed_ratio."}, w),
		up:         gauge("worker_up", "1 while the worker process runs and reports."),
		inFlight:   gauge("worker_requests_in_flight", "Requests the worker has in flight."),
		cap:        gauge("worker_max_in_flight", "The worker's cap on requests in flight (its share of max_in_flight or concurrency)."),
		rate:       gauge("worker_configured_rate_requests_per_second", "The worker's share of the configured open-loop arrival rate."),
		sendRate:   gauge("worker_send_rate_requests_per_second", "Requests the worker sent per second over its last sampling window."),
		cpuUtil:    gauge("worker_cpu_utilization_ratio", "The worker's CPU time per second over its last window, as a fraction of the cores it may use."),
		schedP99:   gauge("worker_go_sched_latency_p99_seconds", "99th percentile of the worker's Go scheduler latency (runnable to running) over its last window."),
		gcPauseMax: gauge("worker_gc_pause_max_seconds", "Longest stop-the-world GC pause in the worker over its last window."),
		backlog:    gauge("worker_record_backlog_bytes", "Encoded records waiting in the worker to be written to the supervisor."),
		sent:       counter("worker_requests_sent_total", "Requests the worker sent."),
		dropped:    counter("worker_requests_dropped_total", "Arrivals the worker dropped because its in-flight cap was full."),
		late:       counter("worker_late_dispatches_total", "Requests the worker sent later than global.late_dispatch_threshold after their intended time."),
		cpu:        counter("worker_cpu_seconds_total", "CPU time the worker process used."),
		restarts:   counter("worker_restarts_total", "Times the worker process was restarted after it crashed, exited or hung."),
		lost:       counter("worker_lost_requests_total", "Requests in flight in a worker process when it died: sent, never measured."),
		scheduleDelay: histogram("worker_schedule_delay_seconds",
			"Actual minus intended send time of the worker's requests (warm-up included): its own queueing.", delayBuckets, w),
		readLag: histogram("worker_client_read_lag_seconds",
			"Per text-bearing event with a kernel receive stamp of the worker's requests (warm-up included), the time its read returned in user space minus the kernel's receive time: the delay the worker's own reading adds, which its saturation verdict judges.", delayBuckets, w),
	}
	for _, c := range []prometheus.Collector{s.saturated, s.up, s.inFlight, s.cap, s.rate, s.sendRate, s.cpuUtil, s.schedP99,
		s.gcPauseMax, s.backlog, s.sent, s.dropped, s.late, s.cpu, s.restarts, s.lost, s.scheduleDelay, s.readLag} {
		reg.MustRegister(c)
	}
	return s
}

// Worker is the resolved set of one worker's series.
type Worker struct {
	saturated, up, inFlight, cap, rate, sendRate, cpuUtil, schedP99, gcPauseMax, backlog prometheus.Gauge
	sent, dropped, late, cpu                                                             prometheus.Counter
	Restarts, Lost                                                                       prometheus.Counter
	scheduleDelay, readLag                                                               prometheus.Observer
}

// Worker resolves worker id's series; configuredRate is its share of the
// open-loop rate.
func (s *Saturation) Worker(id string, configuredRate float64) *Worker {
	w := &Worker{
		saturated: s.saturated.WithLabelValues(id), up: s.up.WithLabelValues(id), inFlight: s.inFlight.WithLabelValues(id),
		cap: s.cap.WithLabelValues(id), rate: s.rate.WithLabelValues(id), sendRate: s.sendRate.WithLabelValues(id),
		cpuUtil: s.cpuUtil.WithLabelValues(id), schedP99: s.schedP99.WithLabelValues(id), gcPauseMax: s.gcPauseMax.WithLabelValues(id),
		backlog: s.backlog.WithLabelValues(id), sent: s.sent.WithLabelValues(id), dropped: s.dropped.WithLabelValues(id),
		late: s.late.WithLabelValues(id), cpu: s.cpu.WithLabelValues(id), Restarts: s.restarts.WithLabelValues(id),
		Lost: s.lost.WithLabelValues(id), scheduleDelay: s.scheduleDelay.WithLabelValues(id), readLag: s.readLag.WithLabelValues(id),
	}
	w.rate.Set(configuredRate)
	return w
}

// ObserveSend feeds the worker's schedule-delay histogram as each request
// goes out.
func (w *Worker) ObserveSend(s record.Send) { w.scheduleDelay.Observe(s.ScheduleDelay.Seconds()) }

// Observe feeds the worker's read-lag histogram from one record.
func (w *Worker) Observe(r *record.Record) {
	for _, lag := range r.ReadLags {
		w.readLag.Observe(lag.Seconds())
	}
}

// Incarnation follows one run of a worker: its samples count from zero.
// During a reload two incarnations of a worker can overlap (the old one
// draining); gauges that both would set are therefore kept as sums of
// per-incarnation contributions (up, in flight, cap), and a retired
// incarnation no longer speaks for the worker's last-window gauges.
type Incarnation struct {
	w         *Worker
	prev      record.Sample
	seen      bool
	inFlight  float64
	inflCap   float64
	saturated float64
}

// Start begins a new incarnation of the worker.
func (w *Worker) Start() *Incarnation {
	w.up.Add(1)
	return &Incarnation{w: w}
}

// Apply carries one sample into the metrics. live is false once the
// incarnation's generation has been replaced and only drains.
func (inc *Incarnation) Apply(cur *record.Sample, cores int, live bool) {
	w, prev := inc.w, &inc.prev
	w.sent.Add(float64(delta(cur.Sent, prev.Sent)))
	w.dropped.Add(float64(delta(cur.Dropped, prev.Dropped)))
	w.late.Add(float64(delta(cur.Late, prev.Late)))
	if cur.CPUSeconds > prev.CPUSeconds {
		w.cpu.Add(cur.CPUSeconds - prev.CPUSeconds)
	}
	inc.set(w.inFlight, &inc.inFlight, float64(cur.InFlight))
	inc.set(w.cap, &inc.inflCap, float64(cur.InFlightCap))
	if live {
		sat := 0.0
		if cur.Saturated {
			sat = 1
		}
		inc.set(w.saturated, &inc.saturated, sat)
		if inc.seen {
			if wall := time.Duration(cur.UnixNano - prev.UnixNano).Seconds(); wall > 0 {
				w.sendRate.Set(float64(delta(cur.Sent, prev.Sent)) / wall)
				if cores > 0 {
					w.cpuUtil.Set((cur.CPUSeconds - prev.CPUSeconds) / wall / float64(cores))
				}
			}
		}
		w.schedP99.Set(cur.SchedLatencyP99.Seconds())
		w.gcPauseMax.Set(cur.GCPauseMax.Seconds())
		w.backlog.Set(float64(cur.PipeBacklogBytes))
	} else {
		inc.set(w.saturated, &inc.saturated, 0)
	}
	probes := prev.Probes
	*prev = *cur
	prev.Probes = append(probes[:0], cur.Probes...)
	inc.seen = true
}

// set moves the incarnation's contribution to g from *mine to v.
func (inc *Incarnation) set(g prometheus.Gauge, mine *float64, v float64) {
	g.Add(v - *mine)
	*mine = v
}

// End withdraws the incarnation's contributions: the run is over.
func (inc *Incarnation) End() {
	inc.w.up.Sub(1)
	inc.set(inc.w.inFlight, &inc.inFlight, 0)
	inc.set(inc.w.cap, &inc.inflCap, 0)
	inc.set(inc.w.saturated, &inc.saturated, 0)
}
