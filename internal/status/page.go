package status

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/report"
)

// Page is what the status template renders.
type Page struct {
	Generated time.Time
	Span      time.Duration
	Refresh   int // seconds between the page's own reloads
	Reload    Reload
	Probes    []ProbeView
	Workers   []WorkerView
	// AnyFailures: some probe has failed requests to list.
	AnyFailures bool
}

// Reload is the configuration's reload state, as the daemon keeps it.
type Reload struct {
	Loaded          bool
	LastSuccessful  bool
	LastSuccess     time.Time
	LastAttempt     time.Time
	ConfigFile      string // empty: the built-in configuration
	ReferenceTarget bool   // probing the built-in reference endpoint
}

// ProbeView is one probe's row and details.
type ProbeView struct {
	Target, Scenario string
	Load             string  // "open, 5 req/s" or "closed, concurrency 8"
	ConfiguredRate   float64 // 0 in closed loop
	AchievedRate     float64 // sends per second over the span (or since start)
	InFlight         int64
	Cap              int
	Warmup           string
	WarmingUp        bool
	TTFT, TPOT, E2E  Pair
	Outcomes         []Count
	Failures         []Failure
}

// Pair is p50 and p99, formatted; "-" without observations.
type Pair struct{ P50, P99 string }

// Count is one outcome's requests over the span.
type Count struct {
	Outcome string
	N       int
}

// WorkerView is one worker's latest sample.
type WorkerView struct {
	Worker        int
	Saturated     bool
	Why           string // why its windows were bad (latest), empty when none was
	InFlight, Cap int64
	SchedP99, Age string
	// ReadLagP99 is the read lag p99 of the latest window's kernel-stamped
	// text events, with their count; "-" for a window without any.
	ReadLagP99    string
	ReadLagEvents uint64
}

// Snapshot reads the window now.
func (w *Window) Snapshot() Page {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	page := Page{Generated: now, Span: Span}
	for _, p := range w.probes {
		v := p.view(now)
		page.AnyFailures = page.AnyFailures || len(v.Failures) > 0
		page.Probes = append(page.Probes, v)
	}
	ids := make([]int, 0, len(w.workers))
	for id := range w.workers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		ws := w.workers[id]
		v := WorkerView{Worker: id, Saturated: ws.sample.Saturated, Why: ws.lastWhy, InFlight: ws.sample.InFlight, Cap: ws.sample.InFlightCap,
			SchedP99: report.Dur(ws.sample.SchedLatencyP99.Seconds()), Age: now.Sub(ws.seen).Round(100 * time.Millisecond).String(),
			ReadLagP99: "-", ReadLagEvents: ws.sample.ReadLagEvents}
		if ws.sample.ReadLagEvents > 0 {
			v.ReadLagP99 = report.Dur(ws.sample.ReadLagP99.Seconds())
		}
		page.Workers = append(page.Workers, v)
	}
	return page
}

func (p *probe) view(now time.Time) ProbeView {
	l := p.sc.Load
	v := ProbeView{Target: p.target, Scenario: p.scenario, Cap: l.MaxInFlight}
	if l.Mode == config.LoadClosed {
		v.Load, v.Cap = fmt.Sprintf("closed, concurrency %d", l.Concurrency), l.Concurrency
	} else {
		v.ConfiguredRate = l.Rate
		v.Load = fmt.Sprintf("open %s, %s req/s", l.Arrival, report.FormatFloat(l.Rate))
	}
	span := min(Span, now.Sub(p.started))
	var sends int
	for _, t := range p.sends {
		if now.Sub(t) <= Span {
			sends++
		}
	}
	if span > 0 {
		v.AchievedRate = math.Round(float64(sends)/span.Seconds()*100) / 100
	}
	for _, byID := range p.inFlight {
		for id, n := range byID {
			if p.ids[id] {
				v.InFlight += n
			}
		}
	}
	warmup := time.Duration(l.Warmup)
	if left := warmup - now.Sub(p.started); left > 0 {
		v.WarmingUp = true
		v.Warmup = fmt.Sprintf("warming up, %s left", left.Round(time.Second))
	} else if warmup > 0 {
		v.Warmup = fmt.Sprintf("done (%s)", warmup)
	} else {
		v.Warmup = "none"
	}
	var ttft, tpot, e2e []float64
	var counts [prober.NumOutcomes]int
	for _, e := range p.events {
		if now.Sub(e.at) > Span {
			continue
		}
		counts[e.outcome]++
		if e.outcome != prober.OutcomeSuccess {
			continue
		}
		e2e = append(e2e, e.e2.Seconds())
		if e.ttft >= 0 {
			ttft = append(ttft, e.ttft.Seconds())
		}
		if e.tpot >= 0 {
			tpot = append(tpot, e.tpot.Seconds())
		}
	}
	v.TTFT, v.TPOT, v.E2E = pair(ttft), pair(tpot), pair(e2e)
	for o, n := range counts {
		if n > 0 || prober.Outcome(o) == prober.OutcomeSuccess {
			v.Outcomes = append(v.Outcomes, Count{Outcome: prober.Outcome(o).String(), N: n})
		}
	}
	v.Failures = slices.Clone(p.failures)
	slices.Reverse(v.Failures) // latest first
	return v
}

func pair(values []float64) Pair {
	if len(values) == 0 {
		return Pair{"-", "-"}
	}
	q := report.Summarize(values)
	return Pair{report.Dur(q.P50), report.Dur(q.P99)}
}

//go:embed status.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"num":  report.FormatFloat,
	"ago":  func(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() + " ago" },
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"itoa": strconv.Itoa,
}).Parse(pageTemplate))

// Render writes the page's HTML fragment (escaped by html/template), for
// the landing page's ExtraHTML.
func Render(p Page) (string, error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// CSS styles the fragment.
const CSS = `
#status table { border-collapse: collapse; margin: 0.5em 0 1em; }
#status th, #status td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; font-variant-numeric: tabular-nums; }
#status th { background: #f4f4f4; }
#status td.l, #status th.l { text-align: left; }
#status .bad { color: #b00; font-weight: bold; }
#status .ok { color: #070; }
#status .detail { font-family: monospace; max-width: 50em; overflow-wrap: anywhere; text-align: left; }
`
