package record

import (
	"bufio"
	"io"
	"testing"
)

// A typical streamed record: 64 gaps of about 20 ms and 64 ground-truth
// emit lags. Run with -benchmem; both directions should show 0 allocs/op.

func BenchmarkEncodeRecord(b *testing.B) {
	rec := typicalRecord(64)
	frame := len(encodeRecords(b, rec))
	enc := NewEncoder(bufio.NewWriter(io.Discard)) // as a worker would use it
	b.SetBytes(int64(frame))
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.EncodeRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(frame), "B/frame")
}

func BenchmarkDecodeRecord(b *testing.B) {
	rec := typicalRecord(64)
	wire := encodeRecords(b, rec)
	dec := NewDecoder(&loopReader{b: wire})
	var got Record
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Next(); err != nil {
			b.Fatal(err)
		}
		if err := dec.DecodeRecord(&got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !sameRecord(&got, rec) {
		b.Fatalf("decoded %+v", got)
	}
	b.ReportMetric(float64(len(wire)), "B/frame")
}
