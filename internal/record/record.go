// Package record holds what a worker hands to the supervisor: a Record per
// request (its schedule and measurement; pooled, so the steady state
// allocates none), a Send as each request goes out, and a Sample of the
// worker's books and saturation signals every window. framing.go writes and
// reads them as frames whose format is versioned, so that a supervisor never
// misreads a worker built from another version.
package record

import (
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
)

// Record is one request: when it was meant to go, when it went, and what was
// measured.
type Record struct {
	// Probe is the ID of the probe (target × scenario) in the plan the
	// worker was given (load.Options.IDs); the supervisor maps it back to
	// label values, so no strings travel per request.
	Probe uint32
	// Intended is the intended send time, Unix nanoseconds (wall clock: it is
	// for correlation only; durations below are monotonic).
	Intended int64
	// ScheduleDelay is actual send − intended send, monotonic.
	ScheduleDelay time.Duration
	// Warmup marks requests intended during the warm-up period: counted, but
	// kept out of latency histograms and SLO counters.
	Warmup bool
	// Saturated marks requests sent while the worker judged itself
	// saturated; still recorded, and counted apart.
	Saturated bool
	prober.Result
}

// Send is one request as it goes out, before any response: the first word of
// it the supervisor hears, so that its schedule delay is known (and counted)
// however long the server then takes. Its Record follows when it ends.
type Send struct {
	Probe         uint32
	ScheduleDelay time.Duration // dispatch − intended send, monotonic
	Warmup        bool
}

// TPOT is (e2e − TTFT) / (output tokens − 1): the mean decode interval after
// the first token. Undefined below two tokens or without a TTFT.
func (r *Record) TPOT() (time.Duration, bool) {
	if r.TTFT < 0 || r.OutputTokens < 2 {
		return 0, false
	}
	return (r.E2E - r.TTFT) / time.Duration(r.OutputTokens-1), true
}

// NTPOT is e2e / output tokens.
func (r *Record) NTPOT() (time.Duration, bool) {
	if r.OutputTokens < 1 {
		return 0, false
	}
	return r.E2E / time.Duration(r.OutputTokens), true
}

// Meets reports whether a successful request met every threshold set in s.
// A threshold on a quantity the request does not define (TTFT of a
// non-streamed request) is not met.
func (r *Record) Meets(s *config.SLO) bool {
	if s.TTFT > 0 && (r.TTFT < 0 || r.TTFT > time.Duration(s.TTFT)) {
		return false
	}
	if s.TPOT > 0 {
		if v, ok := r.TPOT(); !ok || v > time.Duration(s.TPOT) {
			return false
		}
	}
	if s.NTPOT > 0 {
		if v, ok := r.NTPOT(); !ok || v > time.Duration(s.NTPOT) {
			return false
		}
	}
	if s.E2E > 0 && r.E2E > time.Duration(s.E2E) {
		return false
	}
	return true
}
