// Wire format (version 3)
//
// A worker writes a stream of frames to the supervisor; every frame is
// self-describing and checked on its own:
//
//	byte 0      magic 0xC0 (never valid UTF-8: stray text on the pipe, such
//	            as a panic trace, is caught at the first byte)
//	byte 1      version (3); any other value is refused, on every frame
//	byte 2      kind: 1 record, 2 sample, 3 heartbeat, 4 send
//	bytes 3..   payload length, uvarint (1 to 4 bytes), at most MaxPayload
//	then        payload, exactly that many bytes
//
// Payloads use encoding/binary varints: "uv" is a uvarint, "zz" a zigzag
// varint (binary.AppendVarint; durations are zigzag because -1 means
// undefined), "f64" 8 bytes little-endian IEEE 754. Fields in order:
//
//	record:    uv Probe, zz Intended, zz ScheduleDelay,
//	           byte flags (bit 0 Stream, 1 UsageReported, 2 UsageMismatch,
//	           3 GroundTruth, 4 Warmup, 5 Saturated, 6 KernelStamps; other
//	           bits refused),
//	           byte Outcome (< prober.NumOutcomes), zz Status,
//	           byte Retry (< prober.NumRetryReasons), zz Resent,
//	           zz TTFB, zz TTFT, zz E2E,
//	           zz InputTokens, zz OutputTokens, zz CountedTokens,
//	           zz ServerTTFT, zz ServerQueue,
//	           uv len(Gaps), then per gap: zz Gap, zz Tokens,
//	           uv len(EmitLags), then per lag: zz lag,
//	           zz Connect, zz SendSpan, zz Coalesced, zz ClockSteps,
//	           uv len(ReadLags), then per lag: zz lag,
//	           16 bytes TraceID,
//	           uv len(Detail) (at most MaxDetail), then its bytes
//	sample:    the scalar fields of Sample in declaration order, zz for
//	           signed, uv for unsigned, f64 for float64, byte for bool;
//	           then uv len(Probes), and per probe: uv ID, uv Scheduled, uv Sent,
//	           uv Dropped, uv Late, zz InFlight, uv BackedOff,
//	           byte BackingOff (0 or 1)
//	heartbeat: uv seq, zz unix nanoseconds
//	send:      uv Probe, zz ScheduleDelay, byte Warmup (0 or 1)
//
// A payload must be consumed exactly: trailing bytes are an error, since any
// change to a payload's layout comes with a new version byte.

package record

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/llmprobe/llmprobe/internal/prober"
)

const (
	// Magic is the first byte of every frame.
	Magic byte = 0xC0
	// Version is the frame format this build writes and the only one it
	// reads. Bump it on any change to the header or a payload layout.
	Version byte = 3
	// MaxPayload caps a frame's payload so that a corrupt length never
	// makes the decoder allocate without bound. A record with 64 gaps and
	// 64 emit lags is about 570 bytes; a million gaps still fit.
	MaxPayload = 16 << 20

	// MaxDetail bounds a record's Detail on the wire: the prober's bound
	// and the ellipsis it appends to a message it cut.
	MaxDetail = prober.MaxDetail + len("…")

	// maxHeader is magic + version + kind + the longest length uvarint.
	maxHeader = 3 + binary.MaxVarintLen32
)

// Kind says what a frame carries.
type Kind uint8

const (
	KindRecord    Kind = 1 // one request's Record
	KindSample    Kind = 2 // a worker's saturation Sample
	KindHeartbeat Kind = 3 // liveness: sequence number and wall time
	KindSend      Kind = 4 // one request going out: its Send
)

func (k Kind) String() string {
	switch k {
	case KindRecord:
		return "record"
	case KindSample:
		return "sample"
	case KindHeartbeat:
		return "heartbeat"
	case KindSend:
		return "send"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func (k Kind) valid() bool { return k >= KindRecord && k <= KindSend }

// Sample is a worker's view of its own saturation, sent periodically so the
// supervisor can tell "the engine is slow" from "the prober is overloaded".
// Counters are cumulative since the worker started; the supervisor turns
// them into monotonic metrics across restarts. It stays flat and numeric so
// that it encodes without reflection.
type Sample struct {
	UnixNano int64 // wall time the sample was taken

	InFlight    int64 // requests in flight now
	InFlightCap int64 // the in-flight cap; InFlight == InFlightCap means full

	Scheduled uint64 // arrivals the schedule produced (= Sent + Dropped)
	Sent      uint64 // requests handed to the transport
	Dropped   uint64 // arrivals dropped because the in-flight cap was full
	Late      uint64 // requests whose schedule delay passed the lateness threshold

	CPUSeconds float64 // process user+system CPU time

	// Go scheduler latency (runtime/metrics /sched/latencies:seconds):
	// time goroutines waited runnable before running.
	SchedLatencyP50 time.Duration
	SchedLatencyP90 time.Duration
	SchedLatencyP99 time.Duration
	SchedLatencyMax time.Duration

	GCPauseTotal time.Duration // cumulative stop-the-world GC pause time
	GCPauseMax   time.Duration // longest GC pause since the previous sample

	PipeBacklogBytes int64 // encoded bytes waiting to be written to the supervisor

	// Client read lag over the window (user-space read time − kernel
	// receive time per text event of the records the worker produced in
	// it): how many events had a kernel stamp, and their p99 (the upper
	// bound of its log bucket; 0 when there were none).
	ReadLagEvents uint64
	ReadLagP99    time.Duration

	Saturated bool // the worker's own verdict over the window that ends here

	// Probes are the books of each probe of the plan, in plan order.
	Probes []ProbeCounts
}

// VersionError is returned for a frame written by a build that speaks
// another version of the format. The stream cannot be read further.
type VersionError struct {
	Got, Want byte
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("record: unsupported frame version %d (this build speaks %d)", e.Got, e.Want)
}

// ErrMalformed is wrapped by every error about a frame's content that a
// well-behaved encoder of this version cannot produce.
var ErrMalformed = errors.New("record: malformed frame")

const flagsKnown = flagStream | flagUsageReported | flagUsageMismatch | flagGroundTruth | flagWarmup | flagSaturated | flagKernelStamps

const (
	flagStream byte = 1 << iota
	flagUsageReported
	flagUsageMismatch
	flagGroundTruth
	flagWarmup
	flagSaturated
	flagKernelStamps
)

// Encoder writes frames to w. Each frame is built in a buffer reused across
// calls and handed to w in exactly one Write, so it may sit on a
// bufio.Writer (the caller flushes); a record costs no allocation once the
// buffer has grown to the largest frame. An Encoder is not safe for
// concurrent use. After a write error every call returns that error: a torn
// frame has been written and nothing after it could be read.
type Encoder struct {
	w   io.Writer
	buf []byte
	err error
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: w, buf: make([]byte, 0, 512)}
}

// EncodeRecord writes r as one frame. It refuses, writing nothing, a record
// that could not be decoded: an Outcome out of range or a payload over
// MaxPayload.
func (e *Encoder) EncodeRecord(r *Record) error {
	if r.Outcome >= prober.NumOutcomes {
		return fmt.Errorf("record: cannot encode outcome %d (have %d outcomes)", r.Outcome, prober.NumOutcomes)
	}
	return e.frame(KindRecord, appendRecord(e.begin(), r))
}

// EncodeSample writes s as one frame.
func (e *Encoder) EncodeSample(s *Sample) error {
	return e.frame(KindSample, appendSample(e.begin(), s))
}

// EncodeSend writes s as one frame.
func (e *Encoder) EncodeSend(s Send) error {
	b := binary.AppendUvarint(e.begin(), uint64(s.Probe))
	b = binary.AppendVarint(b, int64(s.ScheduleDelay))
	var warmup byte
	if s.Warmup {
		warmup = 1
	}
	return e.frame(KindSend, append(b, warmup))
}

// EncodeHeartbeat writes a heartbeat frame.
func (e *Encoder) EncodeHeartbeat(seq uint64, unixNano int64) error {
	b := binary.AppendUvarint(e.begin(), seq)
	b = binary.AppendVarint(b, unixNano)
	return e.frame(KindHeartbeat, b)
}

// begin returns the reused buffer with room for the longest header in front:
// the payload is appended first, then the header is written right before it
// once its length is known, so nothing is copied.
func (e *Encoder) begin() []byte {
	return e.buf[:maxHeader]
}

func (e *Encoder) frame(k Kind, b []byte) error {
	e.buf = b[:0] // keep whatever capacity the payload grew to
	if e.err != nil {
		return e.err
	}
	n := len(b) - maxHeader
	if n > MaxPayload {
		e.buf = make([]byte, 0, 512) // do not hold on to a refused giant
		return fmt.Errorf("record: %s payload of %d bytes exceeds the %d-byte limit", k, n, MaxPayload)
	}
	var lenBuf [binary.MaxVarintLen32]byte
	ln := binary.PutUvarint(lenBuf[:], uint64(n))
	start := maxHeader - 3 - ln
	b[start], b[start+1], b[start+2] = Magic, Version, byte(k)
	copy(b[start+3:maxHeader], lenBuf[:ln])
	if _, err := e.w.Write(b[start:]); err != nil {
		e.err = fmt.Errorf("record: writing %s frame: %w", k, err)
		return e.err
	}
	return nil
}

func appendRecord(b []byte, r *Record) []byte {
	var flags byte
	if r.Stream {
		flags |= flagStream
	}
	if r.UsageReported {
		flags |= flagUsageReported
	}
	if r.UsageMismatch {
		flags |= flagUsageMismatch
	}
	if r.GroundTruth {
		flags |= flagGroundTruth
	}
	if r.Warmup {
		flags |= flagWarmup
	}
	if r.Saturated {
		flags |= flagSaturated
	}
	if r.KernelStamps {
		flags |= flagKernelStamps
	}
	b = binary.AppendUvarint(b, uint64(r.Probe))
	b = binary.AppendVarint(b, r.Intended)
	b = binary.AppendVarint(b, int64(r.ScheduleDelay))
	b = append(b, flags, byte(r.Outcome))
	b = binary.AppendVarint(b, int64(r.Status))
	b = append(b, byte(r.Retry))
	b = binary.AppendVarint(b, int64(r.Resent))
	b = binary.AppendVarint(b, int64(r.TTFB))
	b = binary.AppendVarint(b, int64(r.TTFT))
	b = binary.AppendVarint(b, int64(r.E2E))
	b = binary.AppendVarint(b, int64(r.InputTokens))
	b = binary.AppendVarint(b, int64(r.OutputTokens))
	b = binary.AppendVarint(b, int64(r.CountedTokens))
	b = binary.AppendVarint(b, int64(r.ServerTTFT))
	b = binary.AppendVarint(b, int64(r.ServerQueue))
	b = binary.AppendUvarint(b, uint64(len(r.Gaps)))
	for _, g := range r.Gaps {
		b = binary.AppendVarint(b, int64(g.Gap))
		b = binary.AppendVarint(b, int64(g.Tokens))
	}
	b = binary.AppendUvarint(b, uint64(len(r.EmitLags)))
	for _, l := range r.EmitLags {
		b = binary.AppendVarint(b, int64(l))
	}
	b = binary.AppendVarint(b, int64(r.Connect))
	b = binary.AppendVarint(b, int64(r.SendSpan))
	b = binary.AppendVarint(b, int64(r.Coalesced))
	b = binary.AppendVarint(b, int64(r.ClockSteps))
	b = binary.AppendUvarint(b, uint64(len(r.ReadLags)))
	for _, l := range r.ReadLags {
		b = binary.AppendVarint(b, int64(l))
	}
	b = append(b, r.TraceID[:]...)
	// Detail is empty on success; the prober bounds it, and so does the
	// decoder, so a longer one is cut here rather than refused there.
	d := r.Detail
	if len(d) > MaxDetail {
		cut := MaxDetail
		for cut > 0 && !utf8.RuneStart(d[cut]) {
			cut--
		}
		d = d[:cut]
	}
	b = binary.AppendUvarint(b, uint64(len(d)))
	return append(b, d...)
}

func appendSample(b []byte, s *Sample) []byte {
	b = binary.AppendVarint(b, s.UnixNano)
	b = binary.AppendVarint(b, s.InFlight)
	b = binary.AppendVarint(b, s.InFlightCap)
	b = binary.AppendUvarint(b, s.Scheduled)
	b = binary.AppendUvarint(b, s.Sent)
	b = binary.AppendUvarint(b, s.Dropped)
	b = binary.AppendUvarint(b, s.Late)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.CPUSeconds))
	b = binary.AppendVarint(b, int64(s.SchedLatencyP50))
	b = binary.AppendVarint(b, int64(s.SchedLatencyP90))
	b = binary.AppendVarint(b, int64(s.SchedLatencyP99))
	b = binary.AppendVarint(b, int64(s.SchedLatencyMax))
	b = binary.AppendVarint(b, int64(s.GCPauseTotal))
	b = binary.AppendVarint(b, int64(s.GCPauseMax))
	b = binary.AppendVarint(b, s.PipeBacklogBytes)
	b = binary.AppendUvarint(b, s.ReadLagEvents)
	b = binary.AppendVarint(b, int64(s.ReadLagP99))
	var saturated byte
	if s.Saturated {
		saturated = 1
	}
	b = append(b, saturated)
	b = binary.AppendUvarint(b, uint64(len(s.Probes)))
	for i := range s.Probes {
		c := &s.Probes[i]
		b = binary.AppendUvarint(b, uint64(c.ID))
		b = binary.AppendUvarint(b, c.Scheduled)
		b = binary.AppendUvarint(b, c.Sent)
		b = binary.AppendUvarint(b, c.Dropped)
		b = binary.AppendUvarint(b, c.Late)
		b = binary.AppendVarint(b, c.InFlight)
		b = binary.AppendUvarint(b, c.BackedOff)
		var backing byte
		if c.BackingOff {
			backing = 1
		}
		b = append(b, backing)
	}
	return b
}

// Decoder reads frames written by an Encoder. Call Next for each frame, then
// the Decode method matching its kind (or nothing, to skip it). It reads
// ahead from r through a bufio.Reader (r itself if it is one). Not safe for
// concurrent use.
//
// Errors from Next are of two sorts. An unknown kind leaves the stream at
// the next frame boundary, so the caller may log it and go on; so do errors
// from the Decode methods. Anything else (io.EOF, a truncated frame, bad
// magic, another version, an oversize length, a read error) ends the
// stream, and every later Next returns the same error.
type Decoder struct {
	br   *bufio.Reader
	buf  []byte // the current frame's payload; reused across frames
	kind Kind   // the current frame's kind; 0 when there is none
	err  error  // sticky: the stream cannot go on
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Decoder{br: br}
}

// Next reads the next frame and returns its kind. It returns io.EOF, and
// only that, when the stream ends cleanly between frames.
func (d *Decoder) Next() (Kind, error) {
	d.kind = 0
	if d.err != nil {
		return 0, d.err
	}
	k, err := d.next()
	if err != nil {
		if _, ok := err.(unknownKindError); !ok {
			d.err = err
		}
		return 0, err
	}
	d.kind = k
	return k, nil
}

// unknownKindError is the one error after which Next can go on: the frame's
// payload has been read, so the stream is at the next frame boundary.
type unknownKindError Kind

func (e unknownKindError) Error() string {
	return fmt.Sprintf("record: unknown frame kind %d", uint8(e))
}

func (e unknownKindError) Is(target error) bool { return target == ErrMalformed }

func (d *Decoder) next() (Kind, error) {
	magic, err := d.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, fmt.Errorf("record: reading frame: %w", err)
	}
	if magic != Magic {
		return 0, fmt.Errorf("%w: bad magic byte 0x%02x (want 0x%02x): not a record stream, or out of step", ErrMalformed, magic, Magic)
	}
	version, err := d.br.ReadByte()
	if err != nil {
		return 0, headerErr(err)
	}
	if version != Version {
		return 0, &VersionError{Got: version, Want: Version}
	}
	kb, err := d.br.ReadByte()
	if err != nil {
		return 0, headerErr(err)
	}
	n, err := d.readLength()
	if err != nil {
		return 0, err
	}
	if n > MaxPayload {
		return 0, fmt.Errorf("%w: payload length %d exceeds the %d-byte limit", ErrMalformed, n, MaxPayload)
	}
	if err := d.readPayload(int(n)); err != nil {
		return 0, err
	}
	if k := Kind(kb); !k.valid() {
		return 0, unknownKindError(kb)
	}
	return Kind(kb), nil
}

func headerErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("record: truncated frame: in header: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("record: reading frame: %w", err)
}

// readLength reads the payload length uvarint. It reads at most
// binary.MaxVarintLen32 bytes: any valid length fits in 4, so a longer one is
// garbage, refused before it can be trusted.
func (d *Decoder) readLength() (uint64, error) {
	var n uint64
	for i := range binary.MaxVarintLen32 {
		c, err := d.br.ReadByte()
		if err != nil {
			return 0, headerErr(err)
		}
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: payload length uvarint longer than %d bytes", ErrMalformed, binary.MaxVarintLen32)
}

// readPayload reads n bytes into d.buf. The buffer grows at most by what has
// already arrived (doubling), so a corrupt length followed by little data
// costs little memory, while a steady stream of similar frames reuses one
// buffer without allocating.
func (d *Decoder) readPayload(n int) error {
	buf := d.buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), max(len(buf), 4096)))
		}
		m, err := io.ReadFull(d.br, buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			d.buf = buf[:0]
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("record: truncated frame: payload has %d of %d bytes: %w", len(buf), n, io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("record: reading frame: %w", err)
		}
	}
	d.buf = buf
	return nil
}

func (d *Decoder) want(k Kind) error {
	if d.kind != k {
		if d.kind == 0 {
			return fmt.Errorf("record: decoding a %s without a current frame", k)
		}
		return fmt.Errorf("record: decoding a %s from a %s frame", k, d.kind)
	}
	return nil
}

// DecodeRecord decodes the current record frame into r. It reuses the
// capacity of r.Gaps, r.EmitLags and r.ReadLags, so decoding into the same Record
// allocates nothing once they have grown. On error *r is unspecified.
func (d *Decoder) DecodeRecord(r *Record) error {
	if err := d.want(KindRecord); err != nil {
		return err
	}
	p := payload{b: d.buf}
	r.Probe = p.uint32("probe")
	r.Intended = p.varint()
	r.ScheduleDelay = time.Duration(p.varint())
	flags, outcome := p.u8(), p.u8()
	if p.err == nil && flags&^flagsKnown != 0 {
		p.fail("unknown flag bits 0x%02x", flags&^flagsKnown)
	}
	if p.err == nil && outcome >= byte(prober.NumOutcomes) {
		p.fail("outcome %d out of range", outcome)
	}
	r.Stream = flags&flagStream != 0
	r.UsageReported = flags&flagUsageReported != 0
	r.UsageMismatch = flags&flagUsageMismatch != 0
	r.GroundTruth = flags&flagGroundTruth != 0
	r.Warmup = flags&flagWarmup != 0
	r.Saturated = flags&flagSaturated != 0
	r.KernelStamps = flags&flagKernelStamps != 0
	r.Outcome = prober.Outcome(outcome)
	r.Status = int(p.varint())
	retry := p.u8()
	if p.err == nil && retry >= byte(prober.NumRetryReasons) {
		p.fail("retry reason %d out of range", retry)
	}
	r.Retry = prober.RetryReason(retry)
	r.Resent = time.Duration(p.varint())
	r.TTFB = time.Duration(p.varint())
	r.TTFT = time.Duration(p.varint())
	r.E2E = time.Duration(p.varint())
	r.InputTokens = p.int32("input tokens")
	r.OutputTokens = p.int32("output tokens")
	r.CountedTokens = p.int32("counted tokens")
	r.ServerTTFT = time.Duration(p.varint())
	r.ServerQueue = time.Duration(p.varint())

	// Counts are checked against the bytes left (a gap takes at least 2, a
	// lag 1) before anything is allocated for them.
	n := p.count("gaps", 2)
	r.Gaps = slices.Grow(r.Gaps[:0], n)[:n]
	for i := range r.Gaps {
		r.Gaps[i] = prober.Gap{Gap: time.Duration(p.varint()), Tokens: p.int32("gap tokens")}
	}
	n = p.count("emit lags", 1)
	r.EmitLags = slices.Grow(r.EmitLags[:0], n)[:n]
	for i := range r.EmitLags {
		r.EmitLags[i] = time.Duration(p.varint())
	}
	r.Connect = time.Duration(p.varint())
	r.SendSpan = time.Duration(p.varint())
	r.Coalesced = p.int32("coalesced")
	r.ClockSteps = p.int32("clock steps")
	n = p.count("read lags", 1)
	r.ReadLags = slices.Grow(r.ReadLags[:0], n)[:n]
	for i := range r.ReadLags {
		r.ReadLags[i] = time.Duration(p.varint())
	}
	p.bytes(r.TraceID[:])
	r.Detail = p.detail()
	return p.end(KindRecord)
}

// DecodeSample decodes the current sample frame into s.
func (d *Decoder) DecodeSample(s *Sample) error {
	if err := d.want(KindSample); err != nil {
		return err
	}
	p := payload{b: d.buf}
	s.UnixNano = p.varint()
	s.InFlight = p.varint()
	s.InFlightCap = p.varint()
	s.Scheduled = p.uvarint()
	s.Sent = p.uvarint()
	s.Dropped = p.uvarint()
	s.Late = p.uvarint()
	s.CPUSeconds = math.Float64frombits(p.fixed64())
	s.SchedLatencyP50 = time.Duration(p.varint())
	s.SchedLatencyP90 = time.Duration(p.varint())
	s.SchedLatencyP99 = time.Duration(p.varint())
	s.SchedLatencyMax = time.Duration(p.varint())
	s.GCPauseTotal = time.Duration(p.varint())
	s.GCPauseMax = time.Duration(p.varint())
	s.PipeBacklogBytes = p.varint()
	s.ReadLagEvents = p.uvarint()
	s.ReadLagP99 = time.Duration(p.varint())
	switch p.u8() {
	case 0:
		s.Saturated = false
	case 1:
		s.Saturated = true
	default:
		p.fail("saturated flag is neither 0 nor 1")
	}
	n := p.count("probes", 8)
	s.Probes = s.Probes[:0]
	for i := 0; i < n && p.err == nil; i++ {
		c := ProbeCounts{
			ID:        p.uint32("probe ID"),
			Scheduled: p.uvarint(), Sent: p.uvarint(), Dropped: p.uvarint(), Late: p.uvarint(), InFlight: p.varint(),
			BackedOff: p.uvarint(),
		}
		switch b := p.u8(); {
		case p.err != nil:
		case b > 1:
			p.fail("backing-off flag is neither 0 nor 1")
		default:
			c.BackingOff = b == 1
		}
		s.Probes = append(s.Probes, c)
	}
	return p.end(KindSample)
}

// DecodeSend decodes the current send frame.
func (d *Decoder) DecodeSend() (Send, error) {
	if err := d.want(KindSend); err != nil {
		return Send{}, err
	}
	p := payload{b: d.buf}
	s := Send{Probe: p.uint32("probe"), ScheduleDelay: time.Duration(p.varint())}
	switch w := p.u8(); {
	case p.err != nil:
	case w > 1:
		p.fail("warmup byte %d", w)
	default:
		s.Warmup = w == 1
	}
	return s, p.end(KindSend)
}

// DecodeHeartbeat decodes the current heartbeat frame.
func (d *Decoder) DecodeHeartbeat() (seq uint64, unixNano int64, err error) {
	if err := d.want(KindHeartbeat); err != nil {
		return 0, 0, err
	}
	p := payload{b: d.buf}
	seq = p.uvarint()
	unixNano = p.varint()
	if err := p.end(KindHeartbeat); err != nil {
		return 0, 0, err
	}
	return seq, unixNano, nil
}

// payload reads fields from one frame's payload. The first failure sticks
// and later reads return zero, so decoders check once at the end.
type payload struct {
	b   []byte
	off int
	err error
}

func (p *payload) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (p *payload) uvarint() uint64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Uvarint(p.b[p.off:])
	if n <= 0 {
		p.fail("bad uvarint at payload byte %d", p.off)
		return 0
	}
	p.off += n
	return v
}

func (p *payload) varint() int64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Varint(p.b[p.off:])
	if n <= 0 {
		p.fail("bad varint at payload byte %d", p.off)
		return 0
	}
	p.off += n
	return v
}

func (p *payload) int32(what string) int32 {
	v := p.varint()
	if v != int64(int32(v)) {
		p.fail("%s %d overflows int32", what, v)
		return 0
	}
	return int32(v)
}

func (p *payload) uint32(what string) uint32 {
	v := p.uvarint()
	if v > math.MaxUint32 {
		p.fail("%s %d overflows uint32", what, v)
		return 0
	}
	return uint32(v)
}

func (p *payload) u8() byte {
	if p.err != nil {
		return 0
	}
	if p.off >= len(p.b) {
		p.fail("payload ends at byte %d", p.off)
		return 0
	}
	c := p.b[p.off]
	p.off++
	return c
}

func (p *payload) fixed64() uint64 {
	if p.err != nil {
		return 0
	}
	if len(p.b)-p.off < 8 {
		p.fail("payload ends at byte %d", len(p.b))
		return 0
	}
	v := binary.LittleEndian.Uint64(p.b[p.off:])
	p.off += 8
	return v
}

// bytes fills dst with the next len(dst) bytes.
func (p *payload) bytes(dst []byte) {
	if p.err != nil {
		return
	}
	if len(p.b)-p.off < len(dst) {
		p.fail("payload ends at byte %d", len(p.b))
		return
	}
	p.off += copy(dst, p.b[p.off:])
}

// detail reads Detail: a length (at most MaxDetail) and its bytes.
// Empty, as on every success, it allocates nothing.
func (p *payload) detail() string {
	n := p.uvarint()
	if p.err != nil || n == 0 {
		return ""
	}
	if n > uint64(MaxDetail) || n > uint64(len(p.b)-p.off) {
		p.fail("detail of %d bytes (at most %d, %d left)", n, MaxDetail, len(p.b)-p.off)
		return ""
	}
	s := string(p.b[p.off : p.off+int(n)])
	p.off += int(n)
	return s
}

// count reads a list length and checks that the bytes left can hold that
// many items of at least minSize bytes each.
func (p *payload) count(what string, minSize int) int {
	v := p.uvarint()
	if p.err != nil {
		return 0
	}
	if v > uint64((len(p.b)-p.off)/minSize) {
		p.fail("%d %s cannot fit in the %d bytes left", v, what, len(p.b)-p.off)
		return 0
	}
	return int(v)
}

func (p *payload) end(k Kind) error {
	if p.err == nil && p.off != len(p.b) {
		p.fail("%d trailing bytes after a %s", len(p.b)-p.off, k)
	}
	if p.err != nil {
		return fmt.Errorf("%w (in a %s frame)", p.err, k)
	}
	return nil
}
