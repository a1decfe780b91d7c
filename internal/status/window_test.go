package status

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(`
targets: [{name: ref, url: "http://127.0.0.1:1", model: m}]
scenarios:
  - name: s
    load: {mode: open, rate: 5, max_in_flight: 16, warmup: 10s}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [ref], scenarios: [s]}]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The window keeps a minute: older requests leave the quantiles and
// counts; the latest 20 failures are listed latest first, escaped; in
// flight sums the workers; warm-up counts from the probe's start.
func TestWindowLastMinute(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	w := NewWindow()
	w.now = func() time.Time { return now }
	w.Probes([]uint32{7}, testConfig(t).Probes())
	success := func(ttft time.Duration) {
		r := &record.Record{Probe: 7, Result: prober.Result{Outcome: prober.OutcomeSuccess, TTFT: ttft, E2E: ttft + 30*time.Millisecond, OutputTokens: 4}}
		w.Send(record.Send{Probe: 7})
		w.Record(r)
	}
	for range 10 {
		success(time.Second) // to leave the window
	}
	now = now.Add(5 * time.Second)
	if p := w.Snapshot().Probes[0]; !p.WarmingUp || p.Warmup != "warming up, 5s left" {
		t.Errorf("warm-up %q (%v)", p.Warmup, p.WarmingUp)
	}
	now = now.Add(70 * time.Second)
	for i := range 100 {
		success(time.Duration(i+1) * time.Millisecond)
	}
	for i := range 25 {
		w.Record(&record.Record{Probe: 7, Result: prober.Result{Outcome: prober.OutcomeHTTP5xx, Status: 500, Detail: fmt.Sprintf("<b>boom %d</b>", i)}})
	}
	w.Sample(0, &record.Sample{Probes: []record.ProbeCounts{{ID: 7, InFlight: 3}}, Saturated: true}, "CPU at 95% of 1 cores")
	w.Sample(1, &record.Sample{Probes: []record.ProbeCounts{{ID: 7, InFlight: 2}}, ReadLagEvents: 64, ReadLagP99: 1500 * time.Microsecond}, "")
	page := w.Snapshot()
	p := page.Probes[0]
	if p.TTFT.P50 != "50.00ms" || p.TTFT.P99 != "99.00ms" {
		t.Errorf("TTFT p50/p99 %s / %s, want the last minute's 50 / 99 ms", p.TTFT.P50, p.TTFT.P99)
	}
	if p.Outcomes[0] != (Count{"success", 100}) || len(p.Outcomes) != 2 || p.Outcomes[1] != (Count{"http_5xx", 25}) {
		t.Errorf("outcomes %v", p.Outcomes)
	}
	if len(p.Failures) != Failures || p.Failures[0].Detail != "<b>boom 24</b>" || p.Failures[Failures-1].Detail != "<b>boom 5</b>" {
		t.Errorf("%d failures, first %q", len(p.Failures), p.Failures[0].Detail)
	}
	if p.InFlight != 5 || p.Cap != 16 || p.WarmingUp || p.AchievedRate != 1.67 {
		t.Errorf("in flight %d / %d, warming up %v, achieved %v", p.InFlight, p.Cap, p.WarmingUp, p.AchievedRate)
	}
	if !page.Workers[0].Saturated || page.Workers[0].Why != "CPU at 95% of 1 cores" || page.Workers[1].Saturated {
		t.Errorf("workers %+v", page.Workers)
	}
	if w0, w1 := page.Workers[0], page.Workers[1]; w0.ReadLagP99 != "-" || w1.ReadLagP99 != "1.50ms" || w1.ReadLagEvents != 64 {
		t.Errorf("read lag p99: worker 0 %q, worker 1 %q over %d events; want - and 1.50ms over 64", w0.ReadLagP99, w1.ReadLagP99, w1.ReadLagEvents)
	}
	html, err := Render(page)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "<b>boom") || !strings.Contains(html, "&lt;b&gt;boom 24&lt;/b&gt;") {
		t.Error("a failure's detail reached the page unescaped")
	}
}

// The handler serves the landing page with the status in it, refreshing
// itself, and 404 elsewhere.
func TestHandler(t *testing.T) {
	w := NewWindow()
	w.Probes([]uint32{1}, testConfig(t).Probes())
	h := Handler(web.LandingConfig{Name: "llmprobe", Links: []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}}}, w,
		func() Reload { return Reload{Loaded: true, LastSuccessful: true, LastSuccess: time.Now()} }, 5*time.Second)
	for range 2 { // the links survive a second rendering
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body := rec.Body.String()
		if rec.Code != 200 || rec.Header().Get("Refresh") != "5" {
			t.Fatalf("HTTP %d, Refresh %q", rec.Code, rec.Header().Get("Refresh"))
		}
		for _, want := range []string{`href="/metrics"`, `<tr class="probe" data-target="ref" data-scenario="s">`, "last reload successful", "open poisson, 5 req/s"} {
			if !strings.Contains(body, want) {
				t.Errorf("the page has no %q", want)
			}
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope", nil))
	if rec.Code != 404 {
		t.Errorf("/nope: HTTP %d", rec.Code)
	}
}

// A failed reload shows as such, without its reason (which could quote the
// file): that stays in the log.
func TestFailedReloadShown(t *testing.T) {
	html, err := Render(Page{Generated: time.Now(), Reload: Reload{Loaded: true, LastSuccessful: false, LastAttempt: time.Now(), LastSuccess: time.Now().Add(-time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, "last reload failed") || !strings.Contains(html, "the previous configuration keeps running") || !strings.Contains(html, "1h0m0s ago") {
		t.Errorf("the failed reload is not shown:\n%s", html)
	}
}
