package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmprobe/llmprobe/internal/prober"
)

// ledger is one probe's books: what was sent (from the send events), how
// each request ended (from the records), what was dropped and sent late
// (from the sources' samples) and what was lost with a worker. It lives for
// the daemon's lifetime, across reloads and worker restarts, so its counters
// never go backwards.
type ledger struct {
	target, scenario          string
	sent, dropped, late, lost uint64
	backedOff                 uint64 // arrivals held back by the target's Retry-After
	backingOff                int64  // sources (workers) holding back now
	outcomes                  [prober.NumOutcomes]uint64
}

// inFlight is derived, never counted: sent and not yet ended or lost.
func (l *ledger) inFlight() uint64 {
	n := l.sent - l.lost
	for _, o := range l.outcomes {
		n -= o
	}
	return n
}

// books exports every probe's ledger in one critical section, so that each
// scrape balances exactly:
//
//	requests_scheduled_total = Σ requests_total + requests_in_flight
//	                           + requests_dropped_total + requests_lost_total
//	                           + requests_backed_off_total
//
// Scheduled is sent + dropped + backed off, and in flight is derived from the same events
// that count the outcomes; separate metric vectors updated one after the
// other could never promise that (a scrape between two updates sees the
// books off by one, and 1 s samples against immediate records by dozens).
type books struct {
	mu      sync.Mutex
	ledgers map[[2]string]*ledger

	requests, scheduled, dropped, late, lost, inFlight *prometheus.Desc
	backedOff, backingOff                              *prometheus.Desc
}

func newBooks() *books {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, append([]string{"target", "scenario"}, labels...), nil)
	}
	return &books{
		ledgers:    map[[2]string]*ledger{},
		requests:   desc("requests_total", "Requests sent, by how they ended (warm-up included).", "outcome"),
		scheduled:  desc("requests_scheduled_total", "Arrivals whose intended send time has come: sent + dropped + backed off."),
		backedOff:  desc("requests_backed_off_total", "Arrivals not sent because the target had answered 429 or 503 with Retry-After and honor_retry_after is on: the back-off it asked for."),
		backingOff: desc("retry_after_backoff_workers", "Workers of the probe now holding back its arrivals for the target's Retry-After (honor_retry_after); 0 when it is sent to normally."),
		dropped:    desc("requests_dropped_total", "Arrivals not sent because max_in_flight was reached (open loop never delays the schedule)."),
		late:       desc("late_dispatches_total", "Requests sent later than global.late_dispatch_threshold after their intended time."),
		lost:       desc("requests_lost_total", "Requests sent by a worker process that died (crashed, or was killed as hung) before they ended: sent, never measured."),
		inFlight:   desc("requests_in_flight", "Requests sent and not yet finished."),
	}
}

// ledger returns the probe's ledger, creating it on first use.
func (b *books) ledger(target, scenario string) *ledger {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [2]string{target, scenario}
	l := b.ledgers[k]
	if l == nil {
		l = &ledger{target: target, scenario: scenario}
		b.ledgers[k] = l
	}
	return l
}

func (b *books) forget(target, scenario string) {
	b.mu.Lock()
	delete(b.ledgers, [2]string{target, scenario})
	b.mu.Unlock()
}

// update changes one ledger under the books' lock.
func (b *books) update(l *ledger, f func(*ledger)) {
	b.mu.Lock()
	f(l)
	b.mu.Unlock()
}

func (b *books) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{b.requests, b.scheduled, b.dropped, b.late, b.lost, b.inFlight, b.backedOff, b.backingOff} {
		ch <- d
	}
}

func (b *books) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64, l *ledger, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{l.target, l.scenario}, extra...)...)
	}
	for _, l := range b.ledgers {
		for o, n := range l.outcomes {
			counter(b.requests, n, l, prober.Outcome(o).String())
		}
		counter(b.scheduled, l.sent+l.dropped+l.backedOff, l)
		counter(b.backedOff, l.backedOff, l)
		ch <- prometheus.MustNewConstMetric(b.backingOff, prometheus.GaugeValue, float64(l.backingOff), l.target, l.scenario)
		counter(b.dropped, l.dropped, l)
		counter(b.late, l.late, l)
		counter(b.lost, l.lost, l)
		ch <- prometheus.MustNewConstMetric(b.inFlight, prometheus.GaugeValue, float64(l.inFlight()), l.target, l.scenario)
	}
}
