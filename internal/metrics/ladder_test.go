package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/config"
)

// classicQuantile is PromQL's histogram_quantile over classic buckets:
// linear interpolation inside the bucket holding rank q·count, the first
// bucket starting at 0, a rank in +Inf reading the highest finite bound.
func classicQuantile(q float64, h *dto.Histogram) float64 {
	rank := q * float64(h.GetSampleCount())
	lo, prev := 0.0, 0.0
	for _, b := range h.Bucket {
		cum := float64(b.GetCumulativeCount())
		if cum >= rank && cum > prev {
			return lo + (b.GetUpperBound()-lo)*(rank-prev)/(cum-prev)
		}
		lo, prev = b.GetUpperBound(), cum
	}
	return lo
}

// nativeQuantile is PromQL's histogram_quantile over native buckets of
// positive observations: exponential interpolation inside the bucket holding
// rank q·count (Prometheus 3; 2.x interpolated linearly, within 0.4% of it
// at schema 3).
func nativeQuantile(q float64, h *dto.Histogram) float64 {
	schema := float64(h.GetSchema())
	rank := q * float64(h.GetSampleCount())
	seen := float64(h.GetZeroCount())
	if seen >= rank {
		return h.GetZeroThreshold()
	}
	idx, count := int32(0), int64(0)
	d := 0
	for _, s := range h.PositiveSpan {
		idx += s.GetOffset()
		for j := uint32(0); j < s.GetLength(); j++ {
			count += h.PositiveDelta[d]
			d++
			if n := float64(count); n > 0 && seen+n >= rank {
				lo := math.Exp2(float64(idx-1) / math.Exp2(schema))
				hi := math.Exp2(float64(idx) / math.Exp2(schema))
				return lo * math.Pow(hi/lo, (rank-seen)/n)
			} else {
				seen += n
			}
			idx++
		}
	}
	return math.NaN()
}

func exactQuantile(q float64, sorted []float64) float64 {
	return sorted[int(math.Ceil(q*float64(len(sorted))))-1]
}

// observed feeds samples into a histogram with llmprobe's options and the
// given classic ladder, and returns what a scrape sees.
func observed(t *testing.T, buckets, samples []float64) *dto.Histogram {
	t.Helper()
	h := prometheus.NewHistogram(histogramOpts("x", "x", buckets))
	for _, v := range samples {
		h.Observe(v)
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram()
}

type ladderCase struct {
	quantity string
	ladder   []float64
	lo, hi   float64 // the range the ladder promises to hold
	integer  bool    // token counts
}

var ladderCases = []ladderCase{
	{"ttft", DefaultTTFTBuckets, .02, 30, false},
	{"e2e", DefaultE2EBuckets, .02, 120, false},
	{"per-token (itl, tpot, ntpot)", DefaultPerTokenBuckets, .001, .2, false},
	{"tokens", DefaultTokenBuckets, 1, 32768, true},
}

// samplesAt draws n samples around center: lognormal with the given sigma
// (0: all equal, a fixed workload's token count), rounded for tokens.
func samplesAt(rng *rand.Rand, center, sigma float64, n int, integer bool) []float64 {
	out := make([]float64, n)
	for i := range out {
		v := center * math.Exp(sigma*rng.NormFloat64())
		if integer {
			v = math.Max(1, math.Round(v))
		}
		out[i] = v
	}
	return out
}

// TestClassicQuantilesMatchNative measures what a classic-only Prometheus
// reads against a native one, for every default ladder over its range: p50
// and p99 (within the range) of narrow distributions (a steady endpoint, the hard case: the
// quantile reads where it falls inside one bucket) and of wide ones, at 40
// positions spread over the range. Each must be within 10% of the native
// figure. The worst errors are logged (deploy/README.md quotes them).
func TestClassicQuantilesMatchNative(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range ladderCases {
		worst := map[string]float64{}
		var worstAt = map[string]string{}
		for i := 0; i < 40; i++ {
			center := c.lo * math.Pow(c.hi/c.lo, float64(i)/39)
			for _, sigma := range []float64{0, 0.01, 0.05, 0.3} {
				if sigma == 0 && !c.integer {
					continue
				}
				s := samplesAt(rng, center, sigma, 2000, c.integer)
				h := observed(t, c.ladder, s)
				slices.Sort(s)
				for _, q := range []float64{0.5, 0.99} {
					classic, native, exact := classicQuantile(q, h), nativeQuantile(q, h), exactQuantile(q, s)
					if exact < c.lo || exact > c.hi {
						continue // the ladder's coarse tails: outside what it promises
					}
					err := math.Abs(classic/native - 1)
					key := fmt.Sprintf("p%g", q*100)
					if err > worst[key] {
						worst[key] = err
						worstAt[key] = fmt.Sprintf("center %.4g sigma %g: classic %.4g native %.4g exact %.4g", center, sigma, classic, native, exact)
					}
					if err > 0.10 {
						t.Errorf("%s center %.4g sigma %g p%g: classic %.4g, native %.4g (%.1f%% off), exact %.4g",
							c.quantity, center, sigma, q*100, classic, native, 100*err, exact)
					}
				}
			}
		}
		t.Logf("%s (%d classic buckets): worst |classic/native - 1| p50 %.2f%% (%s), p99 %.2f%% (%s)",
			c.quantity, len(c.ladder), 100*worst["p50"], worstAt["p50"], 100*worst["p99"], worstAt["p99"])
	}
}

// TestReferenceEndpointQuantiles: the case, the embedded default
// (TTFT ≈ 51 ms, ~10 ms per token, 64 output tokens). The old ladders read
// TTFT p50 62.5 ms and 48 tokens; the new ones must be within 10% of native
// and of the truth.
func TestReferenceEndpointQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	oldRequest := []float64{.005, .01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300}
	oldTokens := prometheus.ExponentialBuckets(1, 2, 17)
	for _, c := range []struct {
		name        string
		ladder, old []float64
		samples     []float64
	}{
		{"ttft", DefaultTTFTBuckets, oldRequest, samplesAt(rng, .051, .02, 4000, false)},
		{"itl", DefaultPerTokenBuckets, []float64{.0005, .001, .0025, .005, .0075, .01, .015, .02, .025, .03, .04, .05, .075, .1, .15, .2, .3, .5, 1, 2.5}, samplesAt(rng, .0101, .05, 4000, false)},
		{"output tokens", DefaultTokenBuckets, oldTokens, samplesAt(rng, 64, 0, 4000, true)},
	} {
		h, hOld := observed(t, c.ladder, c.samples), observed(t, c.old, c.samples)
		slices.Sort(c.samples)
		for _, q := range []float64{0.5, 0.99} {
			classic, native, exact, old := classicQuantile(q, h), nativeQuantile(q, h), exactQuantile(q, c.samples), classicQuantile(q, hOld)
			t.Logf("%s p%g: classic %.4g (old ladder %.4g), native %.4g, exact %.4g", c.name, q*100, classic, old, native, exact)
			if c.name == "ttft" && q == 0.5 && math.Abs(old/native-1) < .10 {
				t.Errorf("the old ladder reads TTFT p50 %.4g against native %.4g: this case no longer shows the issue's error", old, native)
			}
			if math.Abs(classic/native-1) > .10 || math.Abs(classic/exact-1) > .10 {
				t.Errorf("%s p%g: classic %.4g, native %.4g, exact %.4g: want within 10%%", c.name, q*100, classic, native, exact)
			}
		}
	}
}

// TestSeriesPerProbe counts what one probe costs on /metrics with the
// default ladders, and with a scenario that sets short ones. deploy/README.md
// quotes the figures; the bound keeps a ladder change from slipping by.
func TestSeriesPerProbe(t *testing.T) {
	count := func(sc *config.Scenario) (series, buckets int) {
		reg := prometheus.NewRegistry()
		New(reg).ForProbe("t", sc).Observe(typicalRecord())
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				if h := m.GetHistogram(); h != nil {
					series += len(h.Bucket) + 3 // +Inf, _sum, _count
					buckets += len(h.Bucket) + 1
				} else {
					series++
				}
			}
		}
		return series, buckets
	}
	series, buckets := count(scenario())
	t.Logf("default ladders: %d series per probe (%d of them classic bucket series), 2 SLO objectives", series, buckets)
	if series > 1010 {
		t.Errorf("%d series per probe: the ladders grew past what deploy/README.md promises", series)
	}
	short := scenario()
	d := func(ms ...int) []model.Duration {
		var out []model.Duration
		for _, v := range ms {
			out = append(out, model.Duration(time.Duration(v)*time.Millisecond))
		}
		return out
	}
	short.Buckets = config.Buckets{
		TTFT: d(100, 250, 500, 1000, 2500), ITL: d(10, 20, 50, 100), TPOT: d(10, 20, 50, 100), NTPOT: d(10, 20, 50, 100),
		E2E: d(1000, 5000, 10000, 30000), Tokens: []int{64, 256, 1024, 4096},
	}
	s2, b2 := count(short)
	t.Logf("5-boundary ladders: %d series per probe (%d classic bucket series)", s2, b2)
	if s2 >= series {
		t.Errorf("a scenario's short buckets did not shrink the probe: %d series, default %d", s2, series)
	}
}
