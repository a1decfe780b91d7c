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

// stream is one admitted request being answered. Events are scheduled at
// absolute times (admission + first-token delay + the sum of the gaps so
// far), never by chaining sleeps, so timer lateness does not accumulate.
type stream struct {
	s       *Server
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

	// buf is reused for every event; its first prefixLen bytes are the
	// request's constant chunk head (id, object, created, model).
	buf       []byte
	prefixLen int

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

func (st *stream) appendPrefix(b []byte) []byte {
	b = append(b, "data: "...)
	return st.appendHead(b, true)
}

// appendHead writes `{"id":...,"object":...,"created":...,"model":...,`.
func (st *stream) appendHead(b []byte, chunk bool) []byte {
	b = append(b, `{"id":"`...)
	if st.api == apiChat {
		b = append(b, "chatcmpl-sim-"...)
	} else {
		b = append(b, "cmpl-sim-"...)
	}
	b = strconv.AppendUint(b, st.seq, 10)
	b = append(b, `","object":"`...)
	switch {
	case st.api == apiCompletions:
		b = append(b, "text_completion"...)
	case chunk:
		b = append(b, "chat.completion.chunk"...)
	default:
		b = append(b, "chat.completion"...)
	}
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, st.created, 10)
	b = append(b, `,"model":`...)
	b = append(b, st.s.modelJSON...)
	return append(b, `,"choices":[`...)
}

func appendWords(b []byte, word string, n int) []byte {
	for range n {
		b = append(b, word...)
	}
	return b
}

func appendUsage(b []byte, prompt, completion int) []byte {
	b = append(b, `"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	return append(b, '}')
}

// appendContinuousUsage adds the cumulative usage to a chunk when the
// request asked for it in every chunk.
func (st *stream) appendContinuousUsage(b []byte, completion int) []byte {
	if !st.p.continuousUsage {
		return b
	}
	return appendUsage(append(b, ','), st.p.inputTokens, completion)
}

// appendEmptyChoice is a choice without generated text.
func (st *stream) appendEmptyChoice(b []byte) []byte {
	if st.api == apiChat {
		return append(b, `{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null,"stop_reason":null}]`...)
	}
	return append(b, `{"index":0,"text":"","logprobs":null,"finish_reason":null,"stop_reason":null}]`...)
}

// emit stamps and writes one event whose JSON object is open in b. The emit
// time is read immediately before the write; sched (zero: unscheduled)
// gives the lateness. final adds the request's queue time and TTFT.
func (st *stream) emit(b []byte, sched time.Time, text, final bool) (time.Time, error) {
	b = append(b, `,"llmprobe_emit_ns":`...)
	now := time.Now()
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	if text && st.firstEmit.IsZero() {
		st.firstEmit = now
	}
	if final {
		b = append(b, `,"llmprobe_queue_ns":`...)
		b = strconv.AppendInt(b, int64(st.admitted.Sub(st.arrival)), 10)
		b = append(b, `,"llmprobe_ttft_ns":`...)
		b = strconv.AppendInt(b, int64(st.firstEmit.Sub(st.arrival)), 10)
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

// runStream serves a streamed response after admission.
func (st *stream) runStream() {
	s := st.s
	bp := s.bufs.Get().(*[]byte)
	defer func() { *bp = st.buf[:0]; s.bufs.Put(bp) }()
	st.created = time.Now().Unix()
	st.buf = st.appendPrefix((*bp)[:0])
	st.prefixLen = len(st.buf)
	st.timer = time.NewTimer(time.Hour)
	defer st.timer.Stop()

	if st.api == apiChat {
		// The role chunk goes out at admission, when prefill starts: a
		// client that counted it as the first token would be early by the
		// whole prefill, which makes the mistake visible.
		b := append(st.buf[:st.prefixLen], `{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null,"stop_reason":null}]`...)
		b = st.appendContinuousUsage(b, 0)
		if _, err := st.emit(b, time.Time{}, false, false); err != nil {
			return
		}
	}

	out := st.p.outputTokens
	reasoning := 0
	if st.api == apiChat {
		reasoning = min(s.model.reasoning, out)
	}
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
		b := st.buf[:st.prefixLen]
		if st.api == apiChat {
			if isReasoning {
				b = append(b, `{"index":0,"delta":{"reasoning_content":"`...)
				b = appendWords(b, reasoningWord, k)
			} else {
				b = append(b, `{"index":0,"delta":{"content":"`...)
				b = appendWords(b, contentWord, k)
			}
			b = append(b, `"},"logprobs":null,"finish_reason":`...)
		} else {
			b = append(b, `{"index":0,"text":"`...)
			b = appendWords(b, contentWord, k)
			b = append(b, `","logprobs":null,"finish_reason":`...)
		}
		if last {
			b = append(b, `"length","stop_reason":null}]`...)
		} else {
			b = append(b, `null,"stop_reason":null}]`...)
		}
		b = st.appendContinuousUsage(b, emitted+k)
		now, err := st.emit(b, sched, true, last)
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
	if st.p.includeUsage {
		b := append(st.buf[:st.prefixLen], "],"...)
		b = appendUsage(b, st.p.inputTokens, out)
		if _, err := st.emit(b, time.Time{}, false, true); err != nil {
			return
		}
	}
	if st.write([]byte("data: [DONE]\n\n")) != nil {
		return
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
		// Returning ends the chunked body cleanly: EOF without [DONE].
		return sched, false
	case faultStall:
		// Shift the rest of the schedule: silence for the stall plus the
		// gap that was due anyway, and no lateness charged for it.
		return sched.Add(time.Duration(st.s.cfg.Faults.StallDuration)), true
	case faultMalformed:
		b := append(st.buf[:st.prefixLen], `{"index":0,"delta":{"content":"`...)
		b = append(b, "\n\n"...)
		return sched, st.write(b) == nil
	case faultOversized:
		n := st.s.cfg.Faults.OversizedBytes
		b := make([]byte, 0, st.prefixLen+n+256)
		b = append(b, st.buf[:st.prefixLen]...)
		b = st.appendEmptyChoice(b)
		b = append(b, `,"llmprobe_padding":"`...)
		for range max(0, n-len(b)-64) {
			b = append(b, 'x')
		}
		b = append(b, '"')
		_, err := st.emit(b, time.Time{}, false, false)
		return sched, err == nil
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
	if st.fault == faultReset {
		abortConn(st.w)
		return
	}

	reasoning := 0
	if st.api == apiChat {
		reasoning = min(s.model.reasoning, out)
	}
	b := make([]byte, 0, 512+len(contentWord)*out+len(reasoningWord)*reasoning)
	b = st.appendHead(b, false)
	if st.api == apiChat {
		b = append(b, `{"index":0,"message":{"role":"assistant","reasoning_content":`...)
		if reasoning > 0 {
			b = append(b, '"')
			b = appendWords(b, reasoningWord, reasoning)
			b = append(b, '"')
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"content":"`...)
		b = appendWords(b, contentWord, out-reasoning)
		b = append(b, `"},"logprobs":null,"finish_reason":"length","stop_reason":null}],`...)
	} else {
		b = append(b, `{"index":0,"text":"`...)
		b = appendWords(b, contentWord, out)
		b = append(b, `","logprobs":null,"finish_reason":"length","stop_reason":null}],`...)
	}
	b = appendUsage(b, st.p.inputTokens, out)
	b = append(b, `,"llmprobe_queue_ns":`...)
	b = strconv.AppendInt(b, int64(st.admitted.Sub(st.arrival)), 10)
	// No event carries the first token here: TTFT is when it was due.
	b = append(b, `,"llmprobe_ttft_ns":`...)
	b = strconv.AppendInt(b, int64(first.Sub(st.arrival)), 10)
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
	s.metrics.e2e.Observe(time.Since(st.arrival).Seconds())
}
