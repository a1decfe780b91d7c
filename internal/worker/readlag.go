package worker

import (
	"math"
	"math/bits"
	"time"
)

// lagWindow counts one sampling window's read lags in log buckets (four per
// octave, so a quantile is at most 25% over the truth), on the loop's
// goroutine: fixed size, no allocation, no lock.
type lagWindow struct {
	counts [lagBuckets]uint32
	n      uint64
}

// lagBuckets covers 0 to 2⁶³ ns: 8 exact buckets below 8 ns, then 4 per
// octave.
const lagBuckets = 8 + 60*4

func lagBucket(d time.Duration) int {
	if d < 8 {
		return int(max(d, 0))
	}
	e := bits.Len64(uint64(d)) // 4..63
	sub := int(uint64(d)>>(e-3)) & 3
	return 8 + (e-4)*4 + sub
}

// lagUpper is the largest duration bucket i holds.
func lagUpper(i int) time.Duration {
	if i < 8 {
		return time.Duration(i)
	}
	e, sub := (i-8)/4+4, (i-8)%4
	hi := uint64(5+sub) << (e - 3)
	if hi > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(hi - 1)
}

func (w *lagWindow) add(lags []time.Duration) {
	for _, d := range lags {
		w.counts[lagBucket(d)]++
	}
	w.n += uint64(len(lags))
}

// take returns the window's count and p99 (upper bucket bound; 0 when
// empty) and starts the next window.
func (w *lagWindow) take() (uint64, time.Duration) {
	n := w.n
	if n == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(0.99 * float64(n)))
	var seen uint64
	p99 := time.Duration(0)
	for i, c := range w.counts {
		if seen += uint64(c); seen >= rank {
			p99 = lagUpper(i)
			break
		}
	}
	w.counts, w.n = [lagBuckets]uint32{}, 0
	return n, p99
}
