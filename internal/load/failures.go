package load

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
)

// summaryEvery is how often repeated failures of a probe are summarised.
const summaryEvery = time.Minute

// failureLog tells, at info level, why a probe's requests fail: the first
// failure of each outcome in full (the server's message, the status, the
// probe's configuration), then at most one summary a minute with the counts
// per outcome and the latest message. It runs after a request has been
// measured, never on a timing path.
type failureLog struct {
	logger *slog.Logger
	attrs  []any // the probe's identity, on every line

	mu     sync.Mutex
	seen   [prober.NumOutcomes]bool
	counts [prober.NumOutcomes]uint64 // since the last summary
	last   string                     // the latest detail since the last summary
	since  time.Time
}

func newFailureLog(logger *slog.Logger, cfg *config.Config, probe config.Probe) *failureLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t, sc := probe.Target, probe.Scenario
	api := t.API
	if api == "" {
		api = config.APIOpenAIChat
	}
	return &failureLog{logger: logger, since: time.Now(), attrs: []any{
		"target", t.Name, "scenario", sc.Name,
		"config", fieldPath("targets", cfg.Targets, t) + " (api " + string(api) + ", url " + prober.ShownURL(t.URL) + ", model " + t.Model + ") × " +
			fieldPath("scenarios", cfg.Scenarios, sc) + " (stream " + strconv.FormatBool(sc.Streamed()) + ", timeout " + sc.Timeout.String() + ")",
	}}
}

// failed takes one failed request. Canceled requests are llmprobe's own
// doing (shutdown, reload) and are not failures of the endpoint.
func (f *failureLog) failed(res *prober.Result) {
	o := res.Outcome
	if o == prober.OutcomeCanceled {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.seen[o] {
		f.seen[o] = true
		f.logger.Info("request failed (first "+o.String()+" of this probe; repeats are summarised once a minute)",
			append(f.attrs[:len(f.attrs):len(f.attrs)], "outcome", o.String(), "status", res.Status, "error", res.Detail)...)
		return
	}
	f.counts[o]++
	f.last = res.Detail
	if time.Since(f.since) >= summaryEvery {
		f.summarise()
	}
}

// flush logs what has not been summarised yet.
func (f *failureLog) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.summarise()
}

func (f *failureLog) summarise() {
	attrs := f.attrs[:len(f.attrs):len(f.attrs)]
	var total uint64
	for o, n := range f.counts {
		if n > 0 {
			attrs = append(attrs, prober.Outcome(o).String(), n)
			total += n
		}
	}
	if total > 0 {
		attrs = append(attrs, "over", time.Since(f.since).Round(100*time.Millisecond).String(), "latest_error", f.last)
		f.logger.Info("requests failed", attrs...)
	}
	f.counts = [prober.NumOutcomes]uint64{}
	f.last = ""
	f.since = time.Now()
}

// fieldPath names an element of a config list by its index, as config
// errors do: targets[2].
func fieldPath[T any](list string, all []T, e *T) string {
	for i := range all {
		if &all[i] == e {
			return list + "[" + strconv.Itoa(i) + "]"
		}
	}
	return list
}
