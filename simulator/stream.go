package simulator

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Generated text: one word and a space per token, so that a client can count
// tokens from the text alone.
const (
	contentWord   = "tok "
	reasoningWord = "think "
)

var errStopped = errors.New("stopped")

// format is one wire protocol. The schedule, the faults and the
// ground-truth stamps are the stream's, written once in this file; a format
// only says what bytes a request and its events are. Builders that return
// []byte leave the event's JSON object open: emit adds the stamps and closes
// it.
type format interface {
	// parse validates a request for this API.
	parse(body []byte, h http.Header, cfg *Config) (parsed, error)
	// writeError answers before any body was sent, in the API's error
	// shape; status is the simulator's (the format may map it).
	writeError(w http.ResponseWriter, status int, msg string)
	// start writes the events due at admission, before prefill, and may set
	// st.prefixLen: bytes of st.buf every text event starts with.
	start(st *stream) error
	// text appends one event of k tokens of one kind after done tokens;
	// last marks the output's final event. b is st.buf[:st.prefixLen].
	text(st *stream, b []byte, k, done int, reasoning, last bool) []byte
	// toContent writes what separates the reasoning from the content (a
	// block or item change), right after the last reasoning event.
	toContent(st *stream) error
	// end writes the events after the last text event.
	end(st *stream) error
	// failure writes the API's mid-stream error (the stream_error fault).
	failure(st *stream) error
	// malformed appends a whole event (SSE terminator included) whose JSON
	// is cut short.
	malformed(st *stream, b []byte) []byte
	// empty appends an event without generated text, to carry padding.
	empty(st *stream, b []byte) []byte
	// whole appends the non-streamed body without its closing brace.
	whole(st *stream, b []byte) []byte
	// truthOnFirst: the queue and TTFT stamps go on the first text event
	// (and the final one). Otherwise on the final events only, as the
	// OpenAI chunks have always had them.
	truthOnFirst() bool
}

// stream is one admitted request being answered. Events are scheduled at
// absolute times (admission + first-token delay + the sum of the gaps so
// far), never by chaining sleeps, so timer lateness does not accumulate.
type stream struct {
	s       *Server
	f       format
	api     apiKind
	p       parsed
	seq     uint64
	fault   faultKind
	rng     *rand.Rand
	ctx     context.Context
	w       http.ResponseWriter
	flusher http.Flusher
	drip    bool

	arrival, admitted time.Time
	created           int64
	timer             *time.Timer

	// buf is reused for every event; its first prefixLen bytes are a
	// constant event head, where the format has one (OpenAI's id, object,
	// created, model).
	buf       []byte
	prefixLen int

	// Per-format position: the Responses sequence_number of the next event,
	// and the current content block (Anthropic) or output item (Responses).
	evSeq int
	block int

	firstEmit time.Time // emit of the first text-bearing event; zero before
	prevEmit  time.Time
}

func (st *stream) flush() {
	if st.flusher != nil {
		st.flusher.Flush()
	}
}

// waitUntil sleeps until t; false if the server closed or the client left.
func (st *stream) waitUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return st.ctx.Err() == nil && !st.s.closed()
	}
	st.timer.Reset(d)
	select {
	case <-st.timer.C:
		return true
	case <-st.ctx.Done():
	case <-st.s.done:
	}
	st.timer.Stop()
	return false
}

func (st *stream) write(b []byte) error {
	if !st.drip {
		_, err := st.w.Write(b)
		st.flush()
		return err
	}
	interval := time.Duration(st.s.cfg.Faults.DripInterval)
	for i := range b {
		if _, err := st.w.Write(b[i : i+1]); err != nil {
			return err
		}
		st.flush()
		if i+1 < len(b) && !st.waitUntil(time.Now().Add(interval)) {
			return errStopped
		}
	}
	return nil
}

func appendWords(b []byte, word string, n int) []byte {
	for range n {
		b = append(b, word...)
	}
	return b
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// appendTruth adds the request's queue time and TTFT.
func (st *stream) appendTruth(b []byte, first time.Time) []byte {
	b = append(b, `,"llmprobe_queue_ns":`...)
	b = strconv.AppendInt(b, int64(st.admitted.Sub(st.arrival)), 10)
	b = append(b, `,"llmprobe_ttft_ns":`...)
	return strconv.AppendInt(b, int64(first.Sub(st.arrival)), 10)
}

// emit stamps and writes one event whose JSON object is open in b. The emit
// time is read immediately before the write; sched (zero: unscheduled)
// gives the lateness. truth adds the request's queue time and TTFT.
func (st *stream) emit(b []byte, sched time.Time, text, truth bool) (time.Time, error) {
	b = append(b, `,"llmprobe_emit_ns":`...)
	now := time.Now()
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	if text && st.firstEmit.IsZero() {
		st.firstEmit = now
	}
	if truth {
		b = st.appendTruth(b, st.firstEmit)
	}
	b = append(b, "}\n\n"...)
	if cap(b) <= 64<<10 {
		st.buf = b[:0] // keep the capacity the event grew, unless huge (oversized fault)
	}
	err := st.write(b)
	if !sched.IsZero() && !st.drip {
		st.s.metrics.lateness.Observe(now.Sub(sched).Seconds())
		if st.s.traceEmit != nil {
			st.s.traceEmit(st.seq, st.admitted, sched, now)
		}
	}
	return now, err
}

// sized returns st.buf emptied, grown once to hold n bytes: for the
// events that repeat the whole text, so that a long output costs one
// allocation rather than a doubling series per event.
func (st *stream) sized(n int) []byte {
	if cap(st.buf) < n {
		st.buf = make([]byte, 0, n)
	}
	return st.buf[:0]
}

// event emits an unscheduled event without generated text: the formats'
// structural events.
func (st *stream) event(b []byte, truth bool) error {
	_, err := st.emit(b, time.Time{}, false, truth)
	return err
}

// runStream serves a streamed response after admission.
func (st *stream) runStream() {
	s := st.s
	bp := s.bufs.Get().(*[]byte)
	defer func() {
		if cap(st.buf) <= 64<<10 { // the pool keeps no huge buffers
			*bp = st.buf[:0]
		}
		s.bufs.Put(bp)
	}()
	st.created = time.Now().Unix()
	st.buf = (*bp)[:0]
	st.timer = time.NewTimer(time.Hour)
	defer st.timer.Stop()

	if st.f.start(st) != nil {
		return
	}

	out, reasoning := st.p.outputTokens, st.p.reasoning
	truthFirst := st.f.truthOnFirst()
	faultAt, struck := s.cfg.Faults.AfterEvents, !st.fault.midStream() || st.fault == faultDrip
	sched := st.admitted.Add(s.model.firstTokenDelay(st.rng, st.p.inputTokens))
	emitted, events := 0, 0
	for emitted < out {
		if !struck && events == faultAt {
			struck = true
			var ok bool
			if sched, ok = st.strike(sched); !ok {
				return
			}
		}
		k := 1 // prefill yields one token; later events carry up to k
		if events > 0 {
			k = s.model.perEvent
		}
		k = min(k, out-emitted)
		isReasoning := emitted < reasoning
		if isReasoning {
			k = min(k, reasoning-emitted)
		}
		if events > 0 {
			sched = sched.Add(s.model.eventGap(st.rng, k, s.running.Load()))
		}
		if !st.waitUntil(sched) {
			return
		}
		last := emitted+k == out
		b := st.f.text(st, st.buf[:st.prefixLen], k, emitted, isReasoning, last)
		now, err := st.emit(b, sched, true, (truthFirst && events == 0) || (!truthFirst && last))
		if err != nil {
			return
		}
		s.metrics.genToks.Add(float64(k))
		if events == 0 {
			s.metrics.ttft.Observe(now.Sub(st.arrival).Seconds())
		} else {
			// A k-token event spreads its gap over its k tokens.
			itl := now.Sub(st.prevEmit).Seconds() / float64(k)
			for range k {
				s.metrics.itl.Observe(itl)
			}
		}
		st.prevEmit = now
		emitted += k
		events++
		if isReasoning && emitted == reasoning && !last && st.f.toContent(st) != nil {
			return
		}
	}
	if !struck {
		var ok bool
		if sched, ok = st.strike(sched); !ok {
			return
		}
		if !st.waitUntil(sched) {
			return
		}
	}
	if st.f.end(st) != nil {
		return
	}
	if out >= 2 {
		s.metrics.tpot.Observe(st.prevEmit.Sub(st.firstEmit).Seconds() / float64(out-1))
	}
	s.metrics.e2e.Observe(time.Since(st.arrival).Seconds())
}

// strike applies a mid-stream fault before the next text event, whose
// predecessor was scheduled at sched. It returns the (possibly shifted)
// schedule and whether the stream goes on.
func (st *stream) strike(sched time.Time) (time.Time, bool) {
	switch st.fault {
	case faultReset:
		abortConn(st.w)
		return sched, false
	case faultTruncate:
		// Returning ends the chunked body cleanly: EOF without the API's
		// end events.
		return sched, false
	case faultStall:
		// Shift the rest of the schedule: silence for the stall plus the
		// gap that was due anyway, and no lateness charged for it.
		return sched.Add(time.Duration(st.s.cfg.Faults.StallDuration)), true
	case faultMalformed:
		return sched, st.write(st.f.malformed(st, st.buf[:st.prefixLen])) == nil
	case faultOversized:
		n := st.s.cfg.Faults.OversizedBytes
		b := st.f.empty(st, make([]byte, 0, st.prefixLen+n+256))
		b = append(b, `,"llmprobe_padding":"`...)
		for range max(0, n-len(b)-64) {
			b = append(b, 'x')
		}
		b = append(b, '"')
		return sched, st.event(b, false) == nil
	case faultStreamError:
		st.f.failure(st)
		return sched, false
	}
	return sched, true
}

// runWhole serves a non-streamed response: the same schedule, answered in
// one body when the last token is due.
func (st *stream) runWhole() {
	s := st.s
	st.created = time.Now().Unix()
	st.timer = time.NewTimer(time.Hour)
	defer st.timer.Stop()

	out := st.p.outputTokens
	first := st.admitted.Add(s.model.firstTokenDelay(st.rng, st.p.inputTokens))
	end := first
	running := s.running.Load()
	for emitted, events := 1, 1; emitted < out; events++ {
		k := min(s.model.perEvent, out-emitted)
		gap := s.model.eventGap(st.rng, k, running)
		for range k {
			s.metrics.itl.Observe(gap.Seconds() / float64(k))
		}
		end = end.Add(gap)
		emitted += k
	}
	if st.fault == faultStall {
		end = end.Add(time.Duration(s.cfg.Faults.StallDuration))
	}
	if !st.waitUntil(end) {
		return
	}
	switch st.fault {
	case faultReset:
		abortConn(st.w)
		return
	case faultStreamError:
		// Nothing was sent yet: the failure is an error status.
		st.f.writeError(st.w, http.StatusInternalServerError, "simulated failure during generation")
		return
	}

	b := make([]byte, 0, 1024+len(contentWord)*out+len(reasoningWord)*st.p.reasoning)
	b = st.f.whole(st, b)
	// No event carries the first token here: TTFT is when it was due.
	b = st.appendTruth(b, first)
	if st.fault == faultOversized {
		b = append(b, `,"llmprobe_padding":"`...)
		for range s.cfg.Faults.OversizedBytes {
			b = append(b, 'x')
		}
		b = append(b, '"')
	}
	b = append(b, `,"llmprobe_emit_ns":`...)
	now := time.Now()
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	b = append(b, "}\n"...)

	declared := len(b)
	switch st.fault {
	case faultMalformed:
		b = b[:len(b)/2] // a well-framed body that is not JSON
		declared = len(b)
	case faultTruncate:
		b = b[:len(b)/2] // Content-Length promises more than comes
	}
	h := st.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(declared))
	st.w.WriteHeader(http.StatusOK)
	if st.write(b) != nil {
		return
	}
	s.metrics.ttft.Observe(first.Sub(st.arrival).Seconds())
	s.metrics.genToks.Add(float64(out))
	if out >= 2 {
		s.metrics.tpot.Observe(now.Sub(first).Seconds() / float64(out-1))
	}
	s.metrics.e2e.Observe(time.Since(st.arrival).Seconds())
}
