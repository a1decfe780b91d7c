package record

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/llmprobe/llmprobe/internal/prober"
)

// typicalRecord is a streamed, successful chat request with n gaps of about
// 20 ms, one token each, and ground-truth emit lags.
func typicalRecord(n int) *Record {
	r := &Record{
		Probe:         3,
		Intended:      1_760_000_000_123_456_789,
		ScheduleDelay: 87 * time.Microsecond,
		Result: prober.Result{
			Outcome:       prober.OutcomeSuccess,
			Status:        200,
			Stream:        true,
			TTFB:          41 * time.Millisecond,
			TTFT:          212 * time.Millisecond,
			E2E:           1500 * time.Millisecond,
			InputTokens:   512,
			OutputTokens:  int32(n + 1),
			CountedTokens: int32(n + 1),
			UsageReported: true,
			GroundTruth:   true,
			ServerTTFT:    205 * time.Millisecond,
			ServerQueue:   3 * time.Millisecond,
		},
	}
	for i := range n {
		r.Gaps = append(r.Gaps, prober.Gap{Gap: 20*time.Millisecond + time.Duration(i)*13*time.Microsecond, Tokens: 1})
		r.EmitLags = append(r.EmitLags, 150*time.Microsecond+time.Duration(i%7)*time.Microsecond)
	}
	return r
}

// undefinedRecord is what a failed request leaves: every optional duration -1.
func undefinedRecord() *Record {
	r := &Record{Probe: 1, Intended: 5}
	r.Reset()
	r.Outcome = prober.OutcomeConnectError
	return r
}

// sameRecord compares two records, treating nil and empty slices as equal
// (the wire does not tell them apart, and nothing downstream should either).
func sameRecord(a, b *Record) bool {
	x, y := *a, *b
	if len(x.Gaps) == 0 {
		x.Gaps = nil
	}
	if len(y.Gaps) == 0 {
		y.Gaps = nil
	}
	if len(x.EmitLags) == 0 {
		x.EmitLags = nil
	}
	if len(y.EmitLags) == 0 {
		y.EmitLags = nil
	}
	return reflect.DeepEqual(x, y)
}

func encodeRecords(t testing.TB, recs ...*Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, r := range recs {
		if err := enc.EncodeRecord(r); err != nil {
			t.Fatalf("EncodeRecord: %v", err)
		}
	}
	return buf.Bytes()
}

func TestRecordRoundTrip(t *testing.T) {
	extremes := &Record{
		Probe:         math.MaxUint32,
		Intended:      math.MinInt64,
		ScheduleDelay: math.MaxInt64,
		Result: prober.Result{
			Outcome:       prober.NumOutcomes - 1,
			Status:        math.MinInt64,
			Retry:         prober.NumRetryReasons - 1,
			Resent:        math.MinInt64,
			TTFB:          math.MinInt64,
			TTFT:          math.MaxInt64,
			E2E:           0,
			InputTokens:   math.MaxInt32,
			OutputTokens:  math.MinInt32,
			CountedTokens: -1,
			ServerTTFT:    math.MaxInt64,
			ServerQueue:   math.MinInt64,
			Gaps:          []prober.Gap{{Gap: math.MinInt64, Tokens: math.MinInt32}, {Gap: math.MaxInt64, Tokens: math.MaxInt32}, {}},
			EmitLags:      []time.Duration{math.MinInt64, -1, 0, math.MaxInt64},
		},
	}
	longGaps := typicalRecord(10_000)
	emptyLists := typicalRecord(0)
	emptyLists.Gaps, emptyLists.EmitLags = []prober.Gap{}, []time.Duration{}

	cases := []struct {
		name string
		rec  *Record
	}{
		{"zero", &Record{}},
		{"undefined durations", undefinedRecord()},
		{"typical 64 gaps", typicalRecord(64)},
		{"one gap", typicalRecord(1)},
		{"empty lists", emptyLists},
		{"long gap list", longGaps},
		{"extremes", extremes},
		{"gaps without lags", func() *Record { r := typicalRecord(5); r.EmitLags = nil; r.GroundTruth = false; return r }()},
	}
	for o := range prober.NumOutcomes {
		r := undefinedRecord()
		r.Outcome = o
		r.Status = 400 + int(o)
		cases = append(cases, struct {
			name string
			rec  *Record
		}{"outcome " + o.String(), r})
	}
	flagSetters := map[string]func(*Record){
		"Stream":        func(r *Record) { r.Stream = true },
		"UsageReported": func(r *Record) { r.UsageReported = true },
		"UsageMismatch": func(r *Record) { r.UsageMismatch = true },
		"GroundTruth":   func(r *Record) { r.GroundTruth = true },
		"Warmup":        func(r *Record) { r.Warmup = true },
		"Saturated":     func(r *Record) { r.Saturated = true },
	}
	all := &Record{}
	for name, set := range flagSetters {
		r := &Record{}
		set(r)
		set(all)
		cases = append(cases, struct {
			name string
			rec  *Record
		}{"only " + name, r})
	}
	cases = append(cases, struct {
		name string
		rec  *Record
	}{"all flags", all})

	// All cases go through one stream and one destination Record, so a field
	// left over from the previous record would show up as a mismatch.
	var stream []*Record
	for _, c := range cases {
		stream = append(stream, c.rec)
	}
	dec := NewDecoder(bytes.NewReader(encodeRecords(t, stream...)))
	var got Record
	for _, c := range cases {
		k, err := dec.Next()
		if err != nil || k != KindRecord {
			t.Fatalf("%s: Next = %v, %v; want record", c.name, k, err)
		}
		if err := dec.DecodeRecord(&got); err != nil {
			t.Fatalf("%s: DecodeRecord: %v", c.name, err)
		}
		if !sameRecord(&got, c.rec) {
			t.Errorf("%s: round trip changed the record\n got %+v\nwant %+v", c.name, got, *c.rec)
		}
	}
	if _, err := dec.Next(); err != io.EOF {
		t.Fatalf("after the last frame: Next error = %v, want io.EOF", err)
	}
}

func TestSendRoundTrip(t *testing.T) {
	sends := []Send{{}, {Probe: math.MaxUint32, ScheduleDelay: math.MinInt64, Warmup: true}, {Probe: 3, ScheduleDelay: 1500}}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, s := range sends {
		if err := enc.EncodeSend(s); err != nil {
			t.Fatal(err)
		}
	}
	dec := NewDecoder(&buf)
	for i, want := range sends {
		if k, err := dec.Next(); err != nil || k != KindSend {
			t.Fatalf("send %d: Next = %v, %v", i, k, err)
		}
		if got, err := dec.DecodeSend(); err != nil || got != want {
			t.Fatalf("send %d: decoded %+v, %v; want %+v", i, got, err, want)
		}
	}
}

func TestSampleAndHeartbeatRoundTrip(t *testing.T) {
	samples := []Sample{
		{},
		{
			UnixNano: 1_760_000_000_000_000_000, InFlight: 17, InFlightCap: 64,
			Scheduled: 1 << 40, Sent: 1<<40 - 9, Dropped: 9, Late: 3,
			CPUSeconds:      12.375,
			SchedLatencyP50: 1200, SchedLatencyP90: 9000, SchedLatencyP99: 250 * time.Microsecond, SchedLatencyMax: 4 * time.Millisecond,
			GCPauseTotal: 3 * time.Second, GCPauseMax: 600 * time.Microsecond,
			PipeBacklogBytes: 65536,
			ReadLagEvents:    4096, ReadLagP99: 12 * time.Millisecond,
			Saturated: true,
			Probes:    []ProbeCounts{{Scheduled: 10, Sent: 8, Dropped: 2, Late: 1, InFlight: 3}, {}, {Scheduled: math.MaxUint64, InFlight: -1, BackedOff: math.MaxUint64, BackingOff: true}},
		},
		{Probes: []ProbeCounts{{Sent: 1}}},
		{UnixNano: -1, InFlight: math.MinInt64, Scheduled: math.MaxUint64, CPUSeconds: math.Inf(1), GCPauseMax: -1, PipeBacklogBytes: math.MaxInt64},
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for i := range samples {
		if err := enc.EncodeSample(&samples[i]); err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodeHeartbeat(uint64(i)*math.MaxUint32, -int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	dec := NewDecoder(&buf)
	var got Sample
	for i, want := range samples {
		if k, err := dec.Next(); err != nil || k != KindSample {
			t.Fatalf("frame %d: Next = %v, %v; want sample", 2*i, k, err)
		}
		if err := dec.DecodeSample(&got); err != nil {
			t.Fatal(err)
		}
		if !sameSample(got, want) {
			t.Errorf("sample %d: got %+v, want %+v", i, got, want)
		}
		if k, err := dec.Next(); err != nil || k != KindHeartbeat {
			t.Fatalf("frame %d: Next = %v, %v; want heartbeat", 2*i+1, k, err)
		}
		seq, ns, err := dec.DecodeHeartbeat()
		if err != nil || seq != uint64(i)*math.MaxUint32 || ns != -int64(i) {
			t.Errorf("heartbeat %d: got %d, %d, %v", i, seq, ns, err)
		}
	}
	if _, err := dec.Next(); err != io.EOF {
		t.Fatalf("Next error = %v, want io.EOF", err)
	}

	// NaN does not equal itself, so check its bits survive.
	buf.Reset()
	nan := math.Float64frombits(0x7ff8_0000_dead_beef)
	if err := enc.EncodeSample(&Sample{CPUSeconds: nan}); err != nil {
		t.Fatal(err)
	}
	dec = NewDecoder(&buf)
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if err := dec.DecodeSample(&got); err != nil || math.Float64bits(got.CPUSeconds) != 0x7ff8_0000_dead_beef {
		t.Errorf("NaN CPU seconds: got bits %#x, %v", math.Float64bits(got.CPUSeconds), err)
	}
}

// TestWireFormatGolden pins the bytes the doc comment in framing.go
// describes; a change here needs a new Version.
func TestWireFormatGolden(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	if err := enc.EncodeHeartbeat(1, -2); err != nil {
		t.Fatal(err)
	}
	r := &Record{Probe: 2, Intended: 3, ScheduleDelay: -1, Warmup: true, Result: prober.Result{
		Outcome: prober.OutcomeHTTP429, Status: 429, Stream: true,
		TTFB: 5, TTFT: -1, E2E: 300,
		InputTokens: 1, OutputTokens: 2, CountedTokens: 0,
		ServerTTFT: -1, ServerQueue: -1,
		Gaps:         []prober.Gap{{Gap: 64, Tokens: 2}},
		EmitLags:     []time.Duration{-3},
		KernelStamps: true, Connect: -1, SendSpan: 4, Coalesced: 3,
		ReadLags: []time.Duration{7},
		Detail:   "slow",
	}}
	if err := enc.EncodeRecord(r); err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0xC0, 3, 3, 2, // heartbeat header: 2-byte payload
		1, 3, // seq 1, unix ns -2 (zigzag 3)
		0xC0, 3, 1, 51, // record header: 51-byte payload
		2,          // probe
		6,          // intended 3
		1,          // schedule delay -1
		0x51,       // flags: Stream | Warmup | KernelStamps
		2,          // outcome http_429
		0xDA, 0x06, // status 429 (zigzag 858)
		0, 0, // retry none, resent 0
		10,         // TTFB 5
		1,          // TTFT -1
		0xD8, 0x04, // E2E 300 (zigzag 600)
		2, 4, 0, // input, output, counted tokens
		1, 1, // server TTFT, server queue: -1
		1, 0x80, 0x01, 4, // one gap: 64 ns (zigzag 128), 2 tokens
		1, 5, // one emit lag: -3
		1, 8, // connect -1, send span 4
		6, 0, // coalesced 3, clock steps 0
		1, 14, // one read lag: 7
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // trace id: none
		4, 's', 'l', 'o', 'w', // detail
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("wire bytes\n got % x\nwant % x", buf.Bytes(), want)
	}
}

func TestTruncatedAtEveryOffset(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	var boundaries []int
	mark := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
		boundaries = append(boundaries, buf.Len())
	}
	mark(enc.EncodeRecord(typicalRecord(64)))
	mark(enc.EncodeHeartbeat(7, 8))
	mark(enc.EncodeSample(&Sample{InFlight: 3, CPUSeconds: 1.5}))
	mark(enc.EncodeRecord(undefinedRecord()))
	mark(enc.EncodeRecord(typicalRecord(300))) // payload length takes 2 bytes
	full := buf.Bytes()

	for cut := 0; cut <= len(full); cut++ {
		complete := 0
		for _, b := range boundaries {
			if b <= cut {
				complete++
			}
		}
		atBoundary := cut == 0 || complete > 0 && boundaries[complete-1] == cut
		// OneByteReader also exercises frames split across many reads.
		dec := NewDecoder(iotest.OneByteReader(bytes.NewReader(full[:cut])))
		var rec Record
		var s Sample
		var err error
		n := 0
		for ; ; n++ {
			var k Kind
			if k, err = dec.Next(); err != nil {
				break
			}
			switch k {
			case KindRecord:
				err = dec.DecodeRecord(&rec)
			case KindSample:
				err = dec.DecodeSample(&s)
			case KindHeartbeat:
				_, _, err = dec.DecodeHeartbeat()
			}
			if err != nil {
				t.Fatalf("cut %d: frame %d decodes with error %v", cut, n, err)
			}
		}
		if n != complete {
			t.Fatalf("cut %d: decoded %d frames, want %d", cut, n, complete)
		}
		if atBoundary {
			if err != io.EOF {
				t.Fatalf("cut %d (frame boundary): error %v, want io.EOF", cut, err)
			}
			continue
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "record: truncated frame: ") {
			t.Fatalf("cut %d: error %q, want a truncated-frame error wrapping io.ErrUnexpectedEOF", cut, err)
		}
		if _, again := dec.Next(); again != err {
			t.Fatalf("cut %d: Next after the error returned %v, want the same error", cut, again)
		}
	}
}

func TestUnsupportedVersion(t *testing.T) {
	frame := encodeRecords(t, typicalRecord(2))
	frame[1] = 2 // a worker built before records carried the v3 fields
	dec := NewDecoder(bytes.NewReader(frame))
	_, err := dec.Next()
	if err == nil || err.Error() != "record: unsupported frame version 2 (this build speaks 3)" {
		t.Fatalf("error = %v", err)
	}
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Got != 2 || ve.Want != Version {
		t.Fatalf("error %v is not a VersionError{2, %d}", err, Version)
	}
	if _, again := dec.Next(); again != err {
		t.Fatalf("the stream went on after a version error: %v", again)
	}

	// The version is checked on every frame, not only the first.
	two := encodeRecords(t, typicalRecord(2), typicalRecord(2))
	two[len(two)/2+1] = 0
	dec = NewDecoder(bytes.NewReader(two))
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Next(); err == nil || err.Error() != "record: unsupported frame version 0 (this build speaks 3)" {
		t.Fatalf("second frame: error = %v", err)
	}
}

func TestUnknownKindSkipsTheFrame(t *testing.T) {
	var buf bytes.Buffer
	buf.Write([]byte{Magic, Version, 9, 3, 'a', 'b', 'c'})
	buf.Write([]byte{Magic, Version, 0, 0})
	if err := NewEncoder(&buf).EncodeHeartbeat(42, 43); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(&buf)
	for _, want := range []string{"record: unknown frame kind 9", "record: unknown frame kind 0"} {
		_, err := dec.Next()
		if err == nil || err.Error() != want {
			t.Fatalf("error = %v, want %q", err, want)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%v does not wrap ErrMalformed", err)
		}
	}
	if k, err := dec.Next(); err != nil || k != KindHeartbeat {
		t.Fatalf("after unknown kinds: Next = %v, %v; want the heartbeat", k, err)
	}
	if seq, ns, err := dec.DecodeHeartbeat(); err != nil || seq != 42 || ns != 43 {
		t.Fatalf("heartbeat = %d, %d, %v", seq, ns, err)
	}
}

func TestOversizeLengthRejected(t *testing.T) {
	var hdr []byte
	hdr = append(hdr, Magic, Version, byte(KindRecord))
	hdr = appendUvarint(hdr, MaxPayload+1)
	dec := NewDecoder(io.MultiReader(bytes.NewReader(hdr), strings.NewReader(strings.Repeat("x", 1000))))
	_, err := dec.Next()
	want := fmt.Sprintf("record: malformed frame: payload length %d exceeds the %d-byte limit", MaxPayload+1, MaxPayload)
	if err == nil || err.Error() != want || !errors.Is(err, ErrMalformed) {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if cap(dec.buf) != 0 {
		t.Errorf("allocated %d bytes for a refused frame", cap(dec.buf))
	}

	// A length uvarint longer than any valid one is refused unread.
	dec = NewDecoder(bytes.NewReader([]byte{Magic, Version, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}))
	if _, err := dec.Next(); err == nil || err.Error() != "record: malformed frame: payload length uvarint longer than 5 bytes" {
		t.Fatalf("long uvarint: error = %v", err)
	}

	// The encoder refuses to write such a frame at all.
	r := &Record{Result: prober.Result{EmitLags: make([]time.Duration, MaxPayload/10+1)}}
	for i := range r.EmitLags {
		r.EmitLags[i] = math.MinInt64 // 10 bytes each
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	err = enc.EncodeRecord(r)
	if err == nil || !strings.Contains(err.Error(), "exceeds the 16777216-byte limit") || buf.Len() != 0 {
		t.Fatalf("oversize record: error %v, wrote %d bytes", err, buf.Len())
	}
	// ... and stays usable.
	if err := enc.EncodeHeartbeat(1, 1); err != nil || buf.Len() != 6 {
		t.Fatalf("after an oversize record: %v, %d bytes", err, buf.Len())
	}
}

// A corrupt length that promises far more than arrives must cost memory in
// proportion to what arrived, not to the length.
func TestCorruptLengthAllocatesLittle(t *testing.T) {
	var hdr []byte
	hdr = append(hdr, Magic, Version, byte(KindRecord))
	hdr = appendUvarint(hdr, MaxPayload)
	hdr = append(hdr, make([]byte, 100)...)
	dec := NewDecoder(bytes.NewReader(hdr))
	_, err := dec.Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != fmt.Sprintf("record: truncated frame: payload has 100 of %d bytes: unexpected EOF", MaxPayload) {
		t.Fatalf("error = %v", err)
	}
	if cap(dec.buf) > 8192 {
		t.Errorf("buffer grew to %d bytes for 100 bytes of payload", cap(dec.buf))
	}
}

func TestCleanEOF(t *testing.T) {
	dec := NewDecoder(bytes.NewReader(nil))
	for range 2 {
		if _, err := dec.Next(); err != io.EOF {
			t.Fatalf("empty stream: error = %v, want io.EOF itself", err)
		}
	}
}

func TestBadMagic(t *testing.T) {
	// What a worker panicking onto the pipe would write.
	dec := NewDecoder(strings.NewReader("panic: runtime error\n\ngoroutine 1 [running]:\n"))
	_, err := dec.Next()
	if err == nil || !errors.Is(err, ErrMalformed) || err.Error() != "record: malformed frame: bad magic byte 0x70 (want 0xc0): not a record stream, or out of step" {
		t.Fatalf("error = %v", err)
	}
}

func TestMalformedPayloads(t *testing.T) {
	goodRec := typicalRecord(2)
	goodRec.Probe, goodRec.Intended, goodRec.ScheduleDelay = 0, 0, 0 // flags at payload byte 3, outcome at 4
	good := encodeRecords(t, goodRec)
	hdr := 4 // payload under 128 bytes: 1-byte length
	cases := []struct {
		name   string
		frame  []byte
		reason string
	}{
		{"trailing byte", frameOf(KindRecord, append(append([]byte{}, good[hdr:]...), 0)), "1 trailing bytes after a record"},
		{"unknown flag", func() []byte { f := append([]byte{}, good...); f[hdr+3] |= 0x80; return f }(), "unknown flag bits 0x80"},
		{"outcome out of range", func() []byte { f := append([]byte{}, good...); f[hdr+4] = byte(prober.NumOutcomes); return f }(), "outcome 13 out of range"},
		{"empty record", frameOf(KindRecord, nil), "bad uvarint at payload byte 0"},
		{"probe overflows", frameOf(KindRecord, appendUvarint(nil, math.MaxUint32+1)), "probe 4294967296 overflows uint32"},
		{"gap count beyond payload", frameOf(KindRecord, append(undefinedPrefix(), 0xFF, 0xFF, 0x03, 0, 0)), "65535 gaps cannot fit in the 2 bytes left"},
		{"tokens overflow", frameOf(KindRecord, append(undefinedPrefix(), 1, 2, 0x80, 0x80, 0x80, 0x80, 0x10, 0)), "gap tokens 2147483648 overflows int32"},
		{"short sample", frameOf(KindSample, []byte{0, 0, 0, 0, 0, 0, 0, 1, 2}), "payload ends at byte 9"},
		{"heartbeat trailing", frameOf(KindHeartbeat, []byte{1, 2, 3}), "1 trailing bytes after a heartbeat"},
		{"retry out of range", func() []byte { f := append([]byte{}, good...); f[hdr+7] = byte(prober.NumRetryReasons); return f }(), "retry reason 5 out of range"},
		{"send warmup byte", frameOf(KindSend, []byte{1, 2, 2}), "warmup byte 2"},
		{"send trailing", frameOf(KindSend, []byte{1, 2, 0, 0}), "1 trailing bytes after a send"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each bad frame is followed by a good one: a payload error must
			// not lose the stream.
			stream := append(append([]byte{}, c.frame...), good...)
			dec := NewDecoder(bytes.NewReader(stream))
			k, err := dec.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			var rec Record
			var s Sample
			switch k {
			case KindRecord:
				err = dec.DecodeRecord(&rec)
			case KindSample:
				err = dec.DecodeSample(&s)
			case KindHeartbeat:
				_, _, err = dec.DecodeHeartbeat()
			case KindSend:
				_, err = dec.DecodeSend()
			}
			want := "record: malformed frame: " + c.reason + " (in a " + k.String() + " frame)"
			if err == nil || err.Error() != want || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error = %v\nwant %s", err, want)
			}
			if k, err := dec.Next(); err != nil || k != KindRecord {
				t.Fatalf("next frame: %v, %v", k, err)
			}
			if err := dec.DecodeRecord(&rec); err != nil || !sameRecord(&rec, goodRec) {
				t.Fatalf("next frame decodes to %+v, %v", rec, err)
			}
		})
	}
}

// undefinedPrefix is a record payload up to its gap count: all fields zero.
func undefinedPrefix() []byte { return make([]byte, 16) }

func frameOf(k Kind, payload []byte) []byte {
	f := appendUvarint([]byte{Magic, Version, byte(k)}, uint64(len(payload)))
	return append(f, payload...)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestDecodeWrongKind(t *testing.T) {
	var buf bytes.Buffer
	if err := NewEncoder(&buf).EncodeHeartbeat(1, 2); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(&buf)
	var rec Record
	if err := dec.DecodeRecord(&rec); err == nil || err.Error() != "record: decoding a record without a current frame" {
		t.Fatalf("before Next: %v", err)
	}
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if err := dec.DecodeRecord(&rec); err == nil || err.Error() != "record: decoding a record from a heartbeat frame" {
		t.Fatalf("record from heartbeat: %v", err)
	}
	if err := dec.DecodeSample(&Sample{}); err == nil || err.Error() != "record: decoding a sample from a heartbeat frame" {
		t.Fatalf("sample from heartbeat: %v", err)
	}
}

type countingWriter struct {
	writes int
	bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func TestEncoderWritesOneFramePerWrite(t *testing.T) {
	var w countingWriter
	enc := NewEncoder(&w)
	frames := 0
	for _, r := range []*Record{typicalRecord(0), typicalRecord(64), typicalRecord(5000), typicalRecord(1)} {
		if err := enc.EncodeRecord(r); err != nil {
			t.Fatal(err)
		}
		frames++
	}
	if err := enc.EncodeSample(&Sample{}); err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeartbeat(1, 1); err != nil {
		t.Fatal(err)
	}
	frames += 2
	if w.writes != frames {
		t.Fatalf("%d writes for %d frames", w.writes, frames)
	}
}

func TestEncoderRefusesBadOutcome(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	r := typicalRecord(1)
	r.Outcome = prober.NumOutcomes
	if err := enc.EncodeRecord(r); err == nil || err.Error() != "record: cannot encode outcome 13 (have 13 outcomes)" || buf.Len() != 0 {
		t.Fatalf("error %v, wrote %d bytes", err, buf.Len())
	}
}

type failAfter struct {
	n   int
	err error
}

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, w.err
	}
	w.n--
	return len(p), nil
}

func TestEncoderWriteErrorSticks(t *testing.T) {
	boom := errors.New("broken pipe")
	enc := NewEncoder(&failAfter{n: 1, err: boom})
	if err := enc.EncodeHeartbeat(1, 1); err != nil {
		t.Fatal(err)
	}
	err := enc.EncodeRecord(typicalRecord(3))
	if !errors.Is(err, boom) || err.Error() != "record: writing record frame: broken pipe" {
		t.Fatalf("error = %v", err)
	}
	if again := enc.EncodeHeartbeat(2, 2); again != err {
		t.Fatalf("after a write error: %v, want the same error", again)
	}
}

func TestReadErrorMidFrame(t *testing.T) {
	boom := errors.New("pipe closed under us")
	frame := encodeRecords(t, typicalRecord(8))
	for _, cut := range []int{2, 10} { // in the header, in the payload
		dec := NewDecoder(io.MultiReader(bytes.NewReader(frame[:cut]), iotest.ErrReader(boom)))
		_, err := dec.Next()
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "record: reading frame: ") {
			t.Fatalf("cut %d: error = %v", cut, err)
		}
	}
}

func TestSteadyStateZeroAllocs(t *testing.T) {
	rec := typicalRecord(64)
	enc := NewEncoder(io.Discard)
	if err := enc.EncodeRecord(rec); err != nil { // grow the buffer once
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _ = enc.EncodeRecord(rec) }); n != 0 {
		t.Errorf("EncodeRecord: %v allocs per record, want 0", n)
	}
	s := &Sample{InFlight: 4}
	if n := testing.AllocsPerRun(200, func() { _ = enc.EncodeSample(s); _ = enc.EncodeHeartbeat(1, 2) }); n != 0 {
		t.Errorf("EncodeSample+EncodeHeartbeat: %v allocs, want 0", n)
	}

	dec := NewDecoder(&loopReader{b: encodeRecords(t, rec)})
	var got Record
	decode := func() {
		if _, err := dec.Next(); err != nil {
			t.Fatal(err)
		}
		if err := dec.DecodeRecord(&got); err != nil {
			t.Fatal(err)
		}
	}
	decode() // grow buffers once
	if n := testing.AllocsPerRun(200, decode); n != 0 {
		t.Errorf("Next+DecodeRecord: %v allocs per record, want 0", n)
	}
	if !sameRecord(&got, rec) {
		t.Fatalf("decoded %+v", got)
	}
}

// loopReader serves b over and over, forever.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// TestOverAPipe runs the intended arrangement: an Encoder on a bufio.Writer
// on an OS pipe, a Decoder in another goroutine, frames of every kind.
func TestOverAPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	const n = 2000
	go func() {
		defer pw.Close()
		bw := bufio.NewWriter(pw)
		enc := NewEncoder(bw)
		for i := range n {
			r := typicalRecord(i % 100)
			r.Probe = uint32(i)
			err := enc.EncodeRecord(r)
			if err == nil && i%50 == 0 {
				err = enc.EncodeSample(&Sample{Sent: uint64(i)})
			}
			if err == nil && i%100 == 0 {
				err = enc.EncodeHeartbeat(uint64(i), int64(i))
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
		if err := bw.Flush(); err != nil {
			t.Error(err)
		}
	}()
	dec := NewDecoder(pr)
	var rec Record
	var s Sample
	records, samples, beats := 0, 0, 0
	for {
		k, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch k {
		case KindRecord:
			if err := dec.DecodeRecord(&rec); err != nil {
				t.Fatal(err)
			}
			want := typicalRecord(records % 100)
			want.Probe = uint32(records)
			if !sameRecord(&rec, want) {
				t.Fatalf("record %d differs", records)
			}
			records++
		case KindSample:
			if err := dec.DecodeSample(&s); err != nil || s.Sent != uint64(samples*50) {
				t.Fatalf("sample %d: %+v, %v", samples, s, err)
			}
			samples++
		case KindHeartbeat:
			if seq, _, err := dec.DecodeHeartbeat(); err != nil || seq != uint64(beats*100) {
				t.Fatalf("heartbeat %d: %d, %v", beats, seq, err)
			}
			beats++
		}
	}
	if records != n || samples != n/50 || beats != n/100 {
		t.Fatalf("got %d records, %d samples, %d heartbeats", records, samples, beats)
	}
}

// sameSample compares samples field by field, CPUSeconds by bits (NaN must
// survive) and Probes by content (nil and empty are the same list).
func sameSample(a, b Sample) bool {
	if math.Float64bits(a.CPUSeconds) != math.Float64bits(b.CPUSeconds) || !slices.Equal(a.Probes, b.Probes) {
		return false
	}
	a.CPUSeconds, b.CPUSeconds, a.Probes, b.Probes = 0, 0, nil, nil
	return reflect.DeepEqual(a, b)
}

// TestDetailBounded: a failure's detail crosses the pipe, the prober's
// longest (MaxDetail bytes and an ellipsis) intact; a longer one is cut on a
// rune boundary by the encoder, and a frame claiming a longer one is
// refused by the decoder.
func TestDetailBounded(t *testing.T) {
	rec := typicalRecord(1)
	rec.Outcome, rec.Detail = prober.OutcomeHTTP5xx, strings.Repeat("é", prober.MaxDetail) // 2 bytes a rune
	var got Record
	dec := NewDecoder(bytes.NewReader(encodeRecords(t, rec)))
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if err := dec.DecodeRecord(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Detail) != MaxDetail-1 || !utf8.ValidString(got.Detail) || !strings.HasPrefix(rec.Detail, got.Detail) {
		t.Fatalf("detail of %d bytes (valid UTF-8 %v), want the first %d bytes", len(got.Detail), utf8.ValidString(got.Detail), MaxDetail-1)
	}
	rec.Detail = strings.Repeat("x", prober.MaxDetail) + "…"
	dec = NewDecoder(bytes.NewReader(encodeRecords(t, rec)))
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if err := dec.DecodeRecord(&got); err != nil || got.Detail != rec.Detail {
		t.Fatalf("the prober's longest detail did not cross intact: %q, %v", got.Detail, err)
	}
	// A hand-made payload: an undefined record with no gaps or lags, zero
	// connect, send span, coalesced and clock steps, no read lags, no trace
	// id, then a detail length one over the bound.
	long := append(append(append(undefinedPrefix(), 0, 0, 0, 0, 0, 0, 0), make([]byte, 16)...), appendUvarint(nil, uint64(MaxDetail+1))...)
	long = append(long, bytes.Repeat([]byte{'x'}, MaxDetail+1)...)
	dec = NewDecoder(bytes.NewReader(frameOf(KindRecord, long)))
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if err := dec.DecodeRecord(&got); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "detail of 304 bytes") {
		t.Fatalf("error = %v, want a malformed detail", err)
	}
}
