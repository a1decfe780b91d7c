package worker

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/simulator"
)

// endpoint is the reference endpoint, wrapped to note when each request
// arrived (server side), for the arrival-process checks.
type endpoint struct {
	*httptest.Server
	mu       sync.Mutex
	arrivals []time.Time
}

func newEndpoint(t *testing.T, ttft, itl time.Duration) *endpoint {
	t.Helper()
	cfg := simulator.DefaultConfig()
	cfg.Model = "m"
	cfg.TTFT, cfg.ITL = modelDuration(ttft), modelDuration(itl)
	sim, err := simulator.New(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	e := &endpoint{}
	h := sim.Handler()
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.arrivals = append(e.arrivals, time.Now())
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { e.Close(); sim.Close() })
	return e
}

func (e *endpoint) arrivalTimes() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.arrivals)
}

func loadConfig(t *testing.T, url, load string) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: ref, url: %q, model: m}]
scenarios:
  - name: s
    load: %s
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [ref], scenarios: [s]}]
`, url, load)), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type harness struct {
	pool *Pool
	reg  *prometheus.Registry
	m    *metrics.Metrics
}

func newPool(t *testing.T, workers int, interval time.Duration) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(beWorker, "1") // inherited by the worker processes only: this process is past TestMain
	p, err := NewPool(m, metrics.NewSaturation(reg), Options{
		Workers: workers, Drain: 2 * time.Second, SampleInterval: interval,
		Thresholds: DefaultThresholds, Command: []string{exe},
	}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return &harness{pool: p, reg: reg, m: m}
}

// value reads one series (by name and label values in order) from the
// registry; NaN when absent.
func (h *harness) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			return metricValue(m)
		}
	}
	return math.NaN()
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return math.NaN()
}

// counters returns every counter series' value, keyed by name and labels.
func (h *harness) counters(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.Metric {
			out[mf.GetName()+fmt.Sprint(m.Label)] = m.Counter.GetValue()
		}
	}
	return out
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childPIDs lists the worker processes this test process started.
func childPIDs(t *testing.T) []int {
	t.Helper()
	var pids []int
	me := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		var comm, state string
		var ppid int
		// pid (comm) state ppid …; comm has no spaces for the test binary.
		if _, err := fmt.Sscanf(string(stat), "%d %s %s %d", new(int), &comm, &state, &ppid); err == nil && ppid == me && state != "Z" {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func TestKilledWorkerIsRestartedAndCountersStayMonotonic(t *testing.T) {
	ep := newEndpoint(t, 5*time.Millisecond, time.Millisecond)
	h := newPool(t, 2, 100*time.Millisecond)
	if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 100}")); err != nil {
		t.Fatal(err)
	}
	success := map[string]string{"outcome": "success"}
	eventually(t, 10*time.Second, "requests recorded", func() bool { return h.value(t, "llmprobe_requests_total", success) > 20 })
	var pids []int
	eventually(t, 5*time.Second, "two worker processes", func() bool { pids = childPIDs(t); return len(pids) == 2 })

	before := h.counters(t)
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a restart counted", func() bool {
		return sumOver(h, t, "llmprobe_worker_restarts_total") >= 1
	})
	// Keep scraping while the new worker takes over: no counter ever drops.
	last := before
	for i := 0; i < 20; i++ {
		now := h.counters(t)
		for k, v := range last {
			if now[k] < v {
				t.Fatalf("counter %s went backwards: %v → %v", k, v, now[k])
			}
		}
		last = now
		time.Sleep(50 * time.Millisecond)
	}
	n := h.value(t, "llmprobe_requests_total", success)
	eventually(t, 10*time.Second, "load continues after the restart", func() bool {
		return h.value(t, "llmprobe_requests_total", success) > n+20
	})
	eventually(t, 5*time.Second, "both workers up", func() bool { return sumOver(h, t, "llmprobe_worker_up") == 2 })
	// At 50 req/s per worker and ~10 ms per request, a handful were in
	// flight when it died; never more than it had sent.
	if lost := sumOver(h, t, "llmprobe_worker_lost_requests_total"); lost > 20 {
		t.Errorf("%v requests counted lost from one killed worker", lost)
	}
}

func TestHungWorkerIsKilledAndRestarted(t *testing.T) {
	ep := newEndpoint(t, 5*time.Millisecond, time.Millisecond)
	h := newPool(t, 1, 100*time.Millisecond)
	if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 20}")); err != nil {
		t.Fatal(err)
	}
	// Stopped only once it runs its own code: a child stopped between fork
	// and exec would hold its parent in vfork, and with it every
	// stop-the-world of the test binary (its GC), for good.
	eventually(t, 10*time.Second, "the worker's first sample", func() bool {
		return sumOver(h, t, "llmprobe_worker_requests_sent_total") > 0
	})
	var pids []int
	eventually(t, 5*time.Second, "one worker process", func() bool { pids = childPIDs(t); return len(pids) == 1 })
	// A stopped process sends no heartbeat: it must be detected as hung.
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the hung worker restarted", func() bool {
		return sumOver(h, t, "llmprobe_worker_restarts_total") == 1
	})
	eventually(t, 10*time.Second, "a new worker process", func() bool {
		now := childPIDs(t)
		return len(now) == 1 && now[0] != pids[0]
	})
}

func sumOver(h *harness, t *testing.T, name string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				sum += metricValue(m)
			}
		}
	}
	return sum
}

// With three workers each sending a third of a Poisson stream, the endpoint
// sees the configured total rate and exponential inter-arrival gaps.
func TestWorkersTogetherKeepTheConfiguredPoissonStream(t *testing.T) {
	ep := newEndpoint(t, 2*time.Millisecond, time.Millisecond)
	h := newPool(t, 3, 200*time.Millisecond)
	const rate = 150.0
	if err := h.pool.Apply(loadConfig(t, ep.URL, fmt.Sprintf("{mode: open, arrival: poisson, rate: %v}", rate))); err != nil {
		t.Fatal(err)
	}
	// Let the three processes start, then observe a 6 s window.
	eventually(t, 10*time.Second, "three workers sending", func() bool {
		return sumOver(h, t, "llmprobe_worker_up") == 3 && len(ep.arrivalTimes()) > 50
	})
	from := time.Now()
	time.Sleep(6 * time.Second)
	to := time.Now()
	var in []time.Time
	for _, a := range ep.arrivalTimes() {
		if a.After(from) && a.Before(to) {
			in = append(in, a)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Before(in[j]) })
	window := to.Sub(from).Seconds()
	want := rate * window
	// Poisson count: within 4 standard deviations of the expected count.
	if got := float64(len(in)); math.Abs(got-want) > 4*math.Sqrt(want) {
		t.Errorf("achieved %d requests in %.1fs, want %.0f ± %.0f", len(in), window, want, 4*math.Sqrt(want))
	}
	// Kolmogorov–Smirnov distance of the merged gaps from Exp(rate).
	gaps := make([]float64, 0, len(in))
	for i := 1; i < len(in); i++ {
		gaps = append(gaps, in[i].Sub(in[i-1]).Seconds())
	}
	sort.Float64s(gaps)
	var d float64
	for i, g := range gaps {
		cdf := 1 - math.Exp(-rate*g)
		d = math.Max(d, math.Max(math.Abs(float64(i+1)/float64(len(gaps))-cdf), math.Abs(cdf-float64(i)/float64(len(gaps)))))
	}
	// 1.63/√n is the 1% critical value; the network adds sub-millisecond
	// noise to the gaps, so allow a margin.
	if crit := 1.63/math.Sqrt(float64(len(gaps))) + 0.03; d > crit {
		t.Errorf("merged inter-arrival gaps are not exponential: KS distance %.3f > %.3f (n=%d)", d, crit, len(gaps))
	}
}

// Two verdicts, never confused: a starved client is saturated; a slow
// engine that fills the in-flight cap sheds load with the client idle, and
// that is not saturation (it would silence the latency alerts that should
// fire).
func TestSaturationAndShedAreTwoVerdicts(t *testing.T) {
	ep := newEndpoint(t, 50*time.Millisecond, 5*time.Millisecond)
	sat := map[string]string{"worker": "0"}
	probe := map[string]string{"target": "ref", "scenario": "s"}

	t.Run("moderate", func(t *testing.T) {
		h := newPool(t, 1, 200*time.Millisecond)
		if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 20, max_in_flight: 100}")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "samples arriving", func() bool { return h.value(t, "llmprobe_worker_send_rate_requests_per_second", sat) > 0 })
		for i := 0; i < 15; i++ {
			if v := h.value(t, "llmprobe_client_saturated", sat); v != 0 {
				t.Fatalf("llmprobe_client_saturated = %v at 20 req/s", v)
			}
			if v := h.value(t, "llmprobe_load_shed_ratio", probe); v != 0 {
				t.Fatalf("llmprobe_load_shed_ratio = %v at 20 req/s with room for 100 in flight", v)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("slow engine, small cap", func(t *testing.T) {
		h := newPool(t, 1, 200*time.Millisecond)
		// 200 req/s into one in-flight slot held ~70 ms per request: about
		// 14 of every 200 arrivals can be sent.
		if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 200, max_in_flight: 1}")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "llmprobe_load_shed_ratio > 0.5", func() bool {
			return h.value(t, "llmprobe_load_shed_ratio", probe) > 0.5
		})
		for i := 0; i < 15; i++ {
			if v := h.value(t, "llmprobe_client_saturated", sat); v != 0 {
				t.Fatalf("llmprobe_client_saturated = %v while only the engine is slow (shed ratio %v)", v, h.value(t, "llmprobe_load_shed_ratio", probe))
			}
			time.Sleep(200 * time.Millisecond)
		}
		if d := sumOver(h, t, "llmprobe_requests_dropped_total"); d == 0 {
			t.Errorf("shedding without drops counted")
		}
	})
	t.Run("starved client", func(t *testing.T) {
		t.Setenv(starveWorker, "1") // the worker process only
		h := newPool(t, 1, 200*time.Millisecond)
		if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 50, max_in_flight: 1000}")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "llmprobe_client_saturated = 1", func() bool {
			return h.value(t, "llmprobe_client_saturated", sat) == 1
		})
	})
}
