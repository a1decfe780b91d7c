package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/prober"
)

// FuzzDecoder feeds arbitrary bytes to the decoder. It must never panic,
// must end every stream with an error (io.EOF only at a frame boundary),
// must size its buffers by the bytes that arrived rather than by lengths
// and counts it read, and whatever it accepts must survive a re-encode.
// Seeds: testdata/fuzz/FuzzDecoder.
func FuzzDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := NewDecoder(bytes.NewReader(data))
		var rec Record
		var s Sample
		frames := 0
		for ; frames <= len(data); frames++ { // a frame takes at least 4 bytes
			k, err := dec.Next()
			if cap(dec.buf) > 4*len(data)+16<<10 {
				t.Fatalf("payload buffer grew to %d bytes from %d bytes of input", cap(dec.buf), len(data))
			}
			if err != nil {
				var uk unknownKindError
				if errors.As(err, &uk) {
					continue
				}
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMalformed) && !errors.As(err, new(*VersionError)) {
					t.Fatalf("unexpected error class: %v", err)
				}
				if !strings.HasPrefix(err.Error(), "record: ") && err != io.EOF {
					t.Fatalf("error without the package prefix: %v", err)
				}
				return
			}
			switch k {
			case KindRecord:
				if err := dec.DecodeRecord(&rec); err != nil {
					if !errors.Is(err, ErrMalformed) {
						t.Fatalf("payload error does not wrap ErrMalformed: %v", err)
					}
					continue
				}
				if 2*len(rec.Gaps)+len(rec.EmitLags) > len(data) {
					t.Fatalf("%d gaps and %d lags from %d bytes", len(rec.Gaps), len(rec.EmitLags), len(data))
				}
				checkRecordRoundTrip(t, &rec)
			case KindSample:
				if err := dec.DecodeSample(&s); err != nil {
					if !errors.Is(err, ErrMalformed) {
						t.Fatalf("payload error does not wrap ErrMalformed: %v", err)
					}
					continue
				}
				var buf bytes.Buffer
				if err := NewEncoder(&buf).EncodeSample(&s); err != nil {
					t.Fatal(err)
				}
				var again Sample
				d2 := NewDecoder(&buf)
				if _, err := d2.Next(); err != nil {
					t.Fatal(err)
				}
				if err := d2.DecodeSample(&again); err != nil {
					t.Fatal(err)
				}
				if !sameSample(again, s) {
					t.Fatalf("sample changed on re-encode: %+v vs %+v", again, s)
				}
			case KindHeartbeat:
				if _, _, err := dec.DecodeHeartbeat(); err != nil && !errors.Is(err, ErrMalformed) {
					t.Fatalf("payload error does not wrap ErrMalformed: %v", err)
				}
			}
		}
		t.Fatalf("more than %d frames from %d bytes", frames, len(data))
	})
}

func checkRecordRoundTrip(t *testing.T, r *Record) {
	t.Helper()
	var buf bytes.Buffer
	if err := NewEncoder(&buf).EncodeRecord(r); err != nil {
		t.Fatalf("a decoded record does not encode: %v", err)
	}
	dec := NewDecoder(&buf)
	if k, err := dec.Next(); err != nil || k != KindRecord {
		t.Fatalf("Next = %v, %v", k, err)
	}
	var got Record
	if err := dec.DecodeRecord(&got); err != nil {
		t.Fatalf("DecodeRecord: %v", err)
	}
	if !sameRecord(&got, r) {
		t.Fatalf("round trip changed the record\n got %+v\nwant %+v", got, *r)
	}
}

// FuzzRoundTrip builds a Record (and a Sample and heartbeat from the same
// numbers) out of fuzzed fields, encodes, decodes, and demands the same
// values back, and the same bytes on a second encode.
// Seeds: testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, probe uint32, intended, sched int64, flags, outcome uint8, status int64,
		ttfb, ttft, e2e int64, in, out, counted int32, sttft, squeue int64, gaps, lags []byte) {
		r := &Record{
			Probe: probe, Intended: intended, ScheduleDelay: time.Duration(sched),
			Warmup: flags&flagWarmup != 0, Saturated: flags&flagSaturated != 0,
			Result: prober.Result{
				Outcome: prober.Outcome(outcome), Status: int(status),
				Stream: flags&flagStream != 0, UsageReported: flags&flagUsageReported != 0,
				UsageMismatch: flags&flagUsageMismatch != 0, GroundTruth: flags&flagGroundTruth != 0,
				TTFB: time.Duration(ttfb), TTFT: time.Duration(ttft), E2E: time.Duration(e2e),
				InputTokens: in, OutputTokens: out, CountedTokens: counted,
				ServerTTFT: time.Duration(sttft), ServerQueue: time.Duration(squeue),
			},
		}
		for ; len(gaps) >= 12; gaps = gaps[12:] {
			r.Gaps = append(r.Gaps, prober.Gap{
				Gap:    time.Duration(binary.LittleEndian.Uint64(gaps)),
				Tokens: int32(binary.LittleEndian.Uint32(gaps[8:])),
			})
		}
		for ; len(lags) >= 8; lags = lags[8:] {
			r.EmitLags = append(r.EmitLags, time.Duration(binary.LittleEndian.Uint64(lags)))
		}
		s := &Sample{
			UnixNano: intended, InFlight: int64(in), InFlightCap: int64(out),
			Scheduled: uint64(sched), Sent: uint64(status), Dropped: uint64(probe), Late: uint64(flags),
			CPUSeconds:      float64(ttfb) / 1e9,
			SchedLatencyP50: time.Duration(ttft), SchedLatencyP90: time.Duration(e2e),
			SchedLatencyP99: time.Duration(sttft), SchedLatencyMax: time.Duration(squeue),
			GCPauseTotal: time.Duration(counted), GCPauseMax: -1, PipeBacklogBytes: int64(len(gaps)),
			ReadLagEvents: uint64(len(lags)), ReadLagP99: time.Duration(ttfb),
			Saturated: flags&1 == 1,
			Probes:    []ProbeCounts{{Scheduled: uint64(sched), Sent: uint64(status), InFlight: int64(in)}},
		}

		var buf bytes.Buffer
		enc := NewEncoder(&buf)
		err := enc.EncodeRecord(r)
		if outcome >= uint8(prober.NumOutcomes) {
			if err == nil || buf.Len() != 0 {
				t.Fatalf("outcome %d: encoded (%d bytes, err %v); want a refusal and nothing written", outcome, buf.Len(), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodeSample(s); err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodeHeartbeat(uint64(probe), intended); err != nil {
			t.Fatal(err)
		}
		wire := bytes.Clone(buf.Bytes())

		dec := NewDecoder(&buf)
		var got Record
		if k, err := dec.Next(); err != nil || k != KindRecord {
			t.Fatalf("Next = %v, %v", k, err)
		}
		if err := dec.DecodeRecord(&got); err != nil {
			t.Fatal(err)
		}
		if !sameRecord(&got, r) {
			t.Fatalf("record changed\n got %+v\nwant %+v", got, *r)
		}
		var gotS Sample
		if k, err := dec.Next(); err != nil || k != KindSample {
			t.Fatalf("Next = %v, %v", k, err)
		}
		if err := dec.DecodeSample(&gotS); err != nil {
			t.Fatal(err)
		}
		if !sameSample(gotS, *s) {
			t.Fatalf("sample changed\n got %+v\nwant %+v", gotS, *s)
		}
		if k, err := dec.Next(); err != nil || k != KindHeartbeat {
			t.Fatalf("Next = %v, %v", k, err)
		}
		if seq, ns, err := dec.DecodeHeartbeat(); err != nil || seq != uint64(probe) || ns != intended {
			t.Fatalf("heartbeat = %d, %d, %v", seq, ns, err)
		}
		if _, err := dec.Next(); err != io.EOF {
			t.Fatalf("after three frames: %v, want io.EOF", err)
		}

		// The encoding is canonical: what was decoded encodes to the same bytes.
		var again bytes.Buffer
		enc = NewEncoder(&again)
		if err := enc.EncodeRecord(&got); err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodeSample(&gotS); err != nil {
			t.Fatal(err)
		}
		if err := enc.EncodeHeartbeat(uint64(probe), intended); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), wire) {
			t.Fatalf("re-encoding changed the bytes\n got % x\nwant % x", again.Bytes(), wire)
		}
	})
}
