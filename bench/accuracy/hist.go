package main

import (
	"errors"
	"fmt"
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
)

// Hist is one histogram as scraped: native (exponential) buckets when the
// exporter sends them, else classic cumulative buckets. Snapshots of it are
// subtracted to get what was observed in a window.
type Hist struct {
	Count uint64
	Sum   float64

	// Native buckets: index i of schema s covers (2^((i-1)·2^-s), 2^(i·2^-s)]
	// (mirrored for Neg); values within ±ZeroThreshold count in ZeroCount.
	Native        bool
	Schema        int32
	ZeroThreshold float64
	ZeroCount     uint64
	Pos, Neg      map[int32]uint64

	// Classic buckets: Cum[i] observations ≤ Bounds[i] (+Inf implied by Count).
	Bounds []float64
	Cum    []uint64
}

// histFromDTO reads a scraped histogram, preferring native buckets.
func histFromDTO(h *dto.Histogram) (*Hist, error) {
	out := &Hist{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
	if h.Schema != nil {
		if len(h.PositiveCount) > 0 || len(h.NegativeCount) > 0 {
			return nil, errors.New("float native histograms are not supported")
		}
		out.Native, out.Schema, out.ZeroThreshold, out.ZeroCount = true, h.GetSchema(), h.GetZeroThreshold(), h.GetZeroCount()
		var err error
		if out.Pos, err = expandSpans(h.PositiveSpan, h.PositiveDelta); err != nil {
			return nil, fmt.Errorf("positive buckets: %w", err)
		}
		if out.Neg, err = expandSpans(h.NegativeSpan, h.NegativeDelta); err != nil {
			return nil, fmt.Errorf("negative buckets: %w", err)
		}
		return out, nil
	}
	for _, b := range h.Bucket {
		if math.IsInf(b.GetUpperBound(), +1) {
			continue
		}
		out.Bounds = append(out.Bounds, b.GetUpperBound())
		out.Cum = append(out.Cum, b.GetCumulativeCount())
	}
	return out, nil
}

// expandSpans decodes the span/delta encoding of native buckets: each span
// starts Offset indexes after the previous one ended, and counts are deltas
// from the previous bucket across all spans.
func expandSpans(spans []*dto.BucketSpan, deltas []int64) (map[int32]uint64, error) {
	m := map[int32]uint64{}
	var idx int32
	var count int64
	d := 0
	for si, s := range spans {
		if si == 0 {
			idx = s.GetOffset()
		} else {
			idx += s.GetOffset()
		}
		for j := uint32(0); j < s.GetLength(); j++ {
			if d >= len(deltas) {
				return nil, errors.New("fewer deltas than spans cover")
			}
			count += deltas[d]
			d++
			if count < 0 {
				return nil, errors.New("negative bucket count")
			}
			if count > 0 {
				m[idx] = uint64(count)
			}
			idx++
		}
	}
	if d != len(deltas) {
		return nil, errors.New("more deltas than spans cover")
	}
	return m, nil
}

// upperBound of native bucket index i at schema s: 2^(i·2^-s).
func upperBound(schema, i int32) float64 {
	return math.Exp2(float64(i) * math.Exp2(-float64(schema)))
}

// reduceIndex maps bucket i of a schema to the bucket of a schema delta
// steps coarser that contains it (2^delta buckets merge into one).
func reduceIndex(i int32, delta int32) int32 { return ((i - 1) >> delta) + 1 }

func (h *Hist) clone() *Hist {
	c := *h
	c.Pos, c.Neg = copyMap(h.Pos), copyMap(h.Neg)
	c.Bounds = append([]float64(nil), h.Bounds...)
	c.Cum = append([]uint64(nil), h.Cum...)
	return &c
}

func copyMap(m map[int32]uint64) map[int32]uint64 {
	c := make(map[int32]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// coarsen returns h at a schema no finer than schema and a zero bucket no
// narrower than zt, so that two snapshots taken across a resolution cut (the
// exporter halves resolution when it runs out of buckets) line up.
func (h *Hist) coarsen(schema int32, zt float64) *Hist {
	c := h.clone()
	if delta := c.Schema - schema; delta > 0 {
		for _, side := range []*map[int32]uint64{&c.Pos, &c.Neg} {
			m := map[int32]uint64{}
			for i, n := range *side {
				m[reduceIndex(i, delta)] += n
			}
			*side = m
		}
		c.Schema = schema
	}
	if zt > c.ZeroThreshold {
		for _, side := range []map[int32]uint64{c.Pos, c.Neg} {
			for i, n := range side {
				if upperBound(c.Schema, i) <= zt {
					c.ZeroCount += n
					delete(side, i)
				}
			}
		}
		c.ZeroThreshold = zt
	}
	return c
}

// Sub returns h − earlier: what was observed between the two snapshots.
func (h *Hist) Sub(earlier *Hist) (*Hist, error) {
	if earlier == nil {
		return h.clone(), nil
	}
	if h.Native != earlier.Native {
		return nil, errors.New("histogram changed between native and classic")
	}
	if h.Count < earlier.Count {
		return nil, errors.New("histogram count went backwards (reset?)")
	}
	if !h.Native {
		if len(h.Bounds) != len(earlier.Bounds) {
			return nil, errors.New("classic bucket layout changed")
		}
		d := h.clone()
		for i := range d.Cum {
			if d.Bounds[i] != earlier.Bounds[i] || d.Cum[i] < earlier.Cum[i] {
				return nil, errors.New("classic bucket layout changed or went backwards")
			}
			d.Cum[i] -= earlier.Cum[i]
		}
		d.Count -= earlier.Count
		d.Sum -= earlier.Sum
		return d, nil
	}
	schema := min(h.Schema, earlier.Schema)
	zt := max(h.ZeroThreshold, earlier.ZeroThreshold)
	a, b := h.coarsen(schema, zt), earlier.coarsen(schema, zt)
	if a.ZeroCount < b.ZeroCount {
		return nil, errors.New("zero bucket went backwards")
	}
	a.ZeroCount -= b.ZeroCount
	for _, pair := range [][2]map[int32]uint64{{a.Pos, b.Pos}, {a.Neg, b.Neg}} {
		for i, n := range pair[1] {
			if pair[0][i] < n {
				return nil, fmt.Errorf("bucket %d went backwards", i)
			}
			if pair[0][i] -= n; pair[0][i] == 0 {
				delete(pair[0], i)
			}
		}
	}
	a.Count -= b.Count
	a.Sum -= b.Sum
	return a, nil
}

// Add merges o into h (series of one family, e.g. per-worker histograms).
func (h *Hist) Add(o *Hist) (*Hist, error) {
	if h == nil {
		return o.clone(), nil
	}
	if h.Native != o.Native {
		return nil, errors.New("cannot add native and classic histograms")
	}
	if !h.Native {
		if len(h.Bounds) != len(o.Bounds) {
			return nil, errors.New("classic bucket layouts differ")
		}
		s := h.clone()
		for i := range s.Cum {
			s.Cum[i] += o.Cum[i]
		}
		s.Count += o.Count
		s.Sum += o.Sum
		return s, nil
	}
	schema, zt := min(h.Schema, o.Schema), max(h.ZeroThreshold, o.ZeroThreshold)
	a, b := h.coarsen(schema, zt), o.coarsen(schema, zt)
	a.ZeroCount += b.ZeroCount
	for i, n := range b.Pos {
		a.Pos[i] += n
	}
	for i, n := range b.Neg {
		a.Neg[i] += n
	}
	a.Count += b.Count
	a.Sum += b.Sum
	return a, nil
}

// bucket is one non-empty bucket in value order.
type bucket struct {
	lo, hi float64
	n      uint64
	exp    bool // exponential bucket: interpolate geometrically
}

// buckets lists the non-empty buckets in ascending value order.
func (h *Hist) buckets() []bucket {
	var out []bucket
	if !h.Native {
		var prev uint64
		lo := 0.0
		if len(h.Bounds) > 0 && h.Bounds[0] <= 0 {
			lo = math.Inf(-1)
		}
		for i, ub := range h.Bounds {
			if n := h.Cum[i] - prev; n > 0 {
				out = append(out, bucket{lo: lo, hi: ub, n: n})
			}
			prev, lo = h.Cum[i], ub
		}
		if h.Count > prev {
			out = append(out, bucket{lo: lo, hi: math.Inf(1), n: h.Count - prev})
		}
		return out
	}
	neg := sortedKeys(h.Neg)
	for k := len(neg) - 1; k >= 0; k-- { // most negative first
		i := neg[k]
		out = append(out, bucket{lo: -upperBound(h.Schema, i), hi: -upperBound(h.Schema, i-1), n: h.Neg[i], exp: true})
	}
	if h.ZeroCount > 0 {
		out = append(out, bucket{lo: -h.ZeroThreshold, hi: h.ZeroThreshold, n: h.ZeroCount})
	}
	for _, i := range sortedKeys(h.Pos) {
		out = append(out, bucket{lo: upperBound(h.Schema, i-1), hi: upperBound(h.Schema, i), n: h.Pos[i], exp: true})
	}
	return out
}

func sortedKeys(m map[int32]uint64) []int32 {
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	return keys
}

// Quantile estimates the q-quantile (0 < q < 1) the way Prometheus'
// histogram_quantile does: find the bucket holding rank q·count and
// interpolate within it (geometrically in exponential buckets, linearly
// otherwise). Its resolution is the bucket width: ~9% for schema 3. NaN
// when empty. A rank in the classic +Inf bucket yields the highest bound.
func (h *Hist) Quantile(q float64) float64 {
	bs := h.buckets()
	var total uint64
	for _, b := range bs {
		total += b.n
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var seen float64
	for _, b := range bs {
		if seen+float64(b.n) < rank {
			seen += float64(b.n)
			continue
		}
		f := (rank - seen) / float64(b.n)
		switch {
		case math.IsInf(b.hi, 1):
			return b.lo
		case math.IsInf(b.lo, -1):
			return b.hi
		case b.exp && b.lo > 0:
			return b.lo * math.Pow(b.hi/b.lo, f)
		case b.exp && b.hi < 0:
			return -(-b.hi * math.Pow(b.lo/b.hi, 1-f))
		default:
			return b.lo + (b.hi-b.lo)*f
		}
	}
	return bs[len(bs)-1].hi
}

// Max is the upper bound of the highest non-empty bucket: the largest value
// observed, rounded up to the bucket resolution. NaN when empty.
func (h *Hist) Max() float64 {
	bs := h.buckets()
	if len(bs) == 0 {
		return math.NaN()
	}
	return bs[len(bs)-1].hi
}

// Mean is Sum/Count, NaN when empty.
func (h *Hist) Mean() float64 {
	if h.Count == 0 {
		return math.NaN()
	}
	return h.Sum / float64(h.Count)
}
