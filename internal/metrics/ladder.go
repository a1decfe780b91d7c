package metrics

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/config"
)

// Classic bucket ladders of the per-request quantities. Over the ranges LLM
// serving lives in (TTFT 20ms-30s, e2e to 2 minutes, per-token 1-200ms, 10 to
// 32k tokens) the boundaries are those of the native buckets, 2^(k/8) (schema
// 3, factor 1.09): a classic-only Prometheus then reads the same quantiles as
// a native one, within the interpolation inside one bucket (linear for
// classic, exponential for native: under 0.4%). Coarser ladders cannot hold
// 10% at p99 for a narrow distribution (a steady endpoint): a p99 inside a
// bucket reads near its upper bound, so the bucket's ratio must stay under
// 1.1. Outside the ranges a few coarse boundaries keep the tails.
// deploy/README.md has the measured errors and the series count.
var (
	DefaultTTFTBuckets     = ladder([]float64{.005, .01}, .017, 32, []float64{60, 120, 300})
	DefaultE2EBuckets      = ladder([]float64{.005, .01}, .017, 128, []float64{300})
	DefaultPerTokenBuckets = ladder([]float64{.0005}, .00097, .21, []float64{.5, 1, 2.5})
	DefaultTokenBuckets    = ladder(smallCounts(10), 11, 32768, []float64{65536, 131072})
)

// smallCounts brackets each count 1..n tightly, (n-0.05, n]: a count is an
// integer, and linear interpolation across (n-1, n] would read a steady n as
// n-0.5 at p50, 50% low for n = 1.
func smallCounts(n int) []float64 {
	var out []float64
	for i := 1; i <= n; i++ {
		out = append(out, float64(i)-.05, float64(i))
	}
	return out
}

// ladder is below, then every 2^(k/8) from the first at or under lo to the
// first at or over hi, then above.
func ladder(below []float64, lo, hi float64, above []float64) []float64 {
	out := slices.Clone(below)
	for k := int(math.Floor(8 * math.Log2(lo))); ; k++ {
		b := math.Exp2(float64(k) / 8)
		out = append(out, b)
		if b >= hi {
			break
		}
	}
	return append(out, above...)
}

// ladders are a scenario's classic buckets per quantity.
type ladders struct{ ttft, itl, tpot, ntpot, e2e, tokens []float64 }

// laddersOf returns the scenario's ladders: its own where it sets one.
func laddersOf(b *config.Buckets) ladders {
	durations := func(d []model.Duration, def []float64) []float64 {
		if len(d) == 0 {
			return def
		}
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = time.Duration(v).Seconds()
		}
		return out
	}
	l := ladders{
		ttft: durations(b.TTFT, DefaultTTFTBuckets), itl: durations(b.ITL, DefaultPerTokenBuckets),
		tpot: durations(b.TPOT, DefaultPerTokenBuckets), ntpot: durations(b.NTPOT, DefaultPerTokenBuckets),
		e2e: durations(b.E2E, DefaultE2EBuckets), tokens: DefaultTokenBuckets,
	}
	if len(b.Tokens) > 0 {
		l.tokens = make([]float64, len(b.Tokens))
		for i, v := range b.Tokens {
			l.tokens[i] = float64(v)
		}
	}
	return l
}

// ladderHistograms is one histogram family whose probes may each have their
// own classic buckets (a scenario's buckets:). client_golang fixes the
// buckets per HistogramVec, so it keeps one vector per ladder in use and
// collects them all as one family; a probe's series lives in exactly one.
type ladderHistograms struct {
	opts prometheus.HistogramOpts
	desc *prometheus.Desc

	mu   sync.Mutex
	vecs map[string]*ladderVec // by ladder
}

type ladderVec struct {
	vec    *prometheus.HistogramVec
	probes map[[2]string]bool
}

func newLadderHistograms(name, help string) *ladderHistograms {
	opts := histogramOpts(name, help, nil)
	return &ladderHistograms{
		opts: opts,
		desc: prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, "", name), help, probeLabelNames, nil),
		vecs: map[string]*ladderVec{},
	}
}

func (h *ladderHistograms) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *ladderHistograms) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.vecs {
		v.vec.Collect(ch)
	}
}

// with returns the probe's observer on the given ladder. A probe that had
// another ladder (its scenario's buckets changed at a reload) leaves it: the
// histogram starts over, as any reset, which rate() handles.
func (h *ladderHistograms) with(buckets []float64, target, scenario string) prometheus.Observer {
	key := ladderKey(buckets)
	probe := [2]string{target, scenario}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, v := range h.vecs {
		if k != key && v.probes[probe] {
			v.vec.DeleteLabelValues(target, scenario)
			delete(v.probes, probe)
			if len(v.probes) == 0 {
				delete(h.vecs, k)
			}
		}
	}
	v := h.vecs[key]
	if v == nil {
		opts := h.opts
		opts.Buckets = buckets
		v = &ladderVec{vec: prometheus.NewHistogramVec(opts, probeLabelNames), probes: map[[2]string]bool{}}
		h.vecs[key] = v
	}
	v.probes[probe] = true
	return v.vec.WithLabelValues(target, scenario)
}

// DeletePartialMatch deletes the series matching labels from every ladder,
// as Forget expects of a vector.
func (h *ladderHistograms) DeletePartialMatch(labels prometheus.Labels) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k, v := range h.vecs {
		n += v.vec.DeletePartialMatch(labels)
		for p := range v.probes {
			if (labels["target"] == "" || labels["target"] == p[0]) && (labels["scenario"] == "" || labels["scenario"] == p[1]) {
				delete(v.probes, p)
			}
		}
		if len(v.probes) == 0 {
			delete(h.vecs, k)
		}
	}
	return n
}

func ladderKey(b []float64) string {
	var s strings.Builder
	for _, v := range b {
		s.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		s.WriteByte(' ')
	}
	return s.String()
}
