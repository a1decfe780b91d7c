package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// Fixed seeds keep these statistical tests deterministic: a wrong sampler
// fails every run, a right one never flakes.
func testRNG(index int) *rand.Rand {
	s := WorkerSeed(42, index)
	return rand.New(rand.NewPCG(s, s^0xdeadbeef))
}

// gapStats returns the mean (seconds) and coefficient of variation of n gaps.
func gapStats(t *testing.T, a Arrivals, rng *rand.Rand, n int) (mean, cv float64) {
	t.Helper()
	var sum, sumSq float64
	for range n {
		g := a.Next(rng).Seconds()
		if g < 0 {
			t.Fatalf("negative gap %v", g)
		}
		sum += g
		sumSq += g * g
	}
	mean = sum / float64(n)
	variance := sumSq/float64(n) - mean*mean
	return mean, math.Sqrt(math.Max(variance, 0)) / mean
}

func TestStreamMeanAndCV(t *testing.T) {
	const workers = 4
	const rate = 200.0 // total req/s; per-stream mean gap = 20ms
	wantMean := workers / rate
	cases := []struct {
		name       string
		load       config.Load
		wantCV     float64
		cvTol      float64
		meanRelTol float64
	}{
		{"poisson", config.Load{Arrival: config.ArrivalPoisson, Rate: rate}, 1, 0.03, 0.02},
		{"default is poisson", config.Load{Rate: rate}, 1, 0.03, 0.02},
		{"constant", config.Load{Arrival: config.ArrivalConstant, Rate: rate}, 0, 1e-6, 1e-6},
		{"gamma shape 1", config.Load{Arrival: config.ArrivalGamma, Rate: rate, Burstiness: 1}, 1, 0.03, 0.02},
		{"gamma shape 4", config.Load{Arrival: config.ArrivalGamma, Rate: rate, Burstiness: 4}, 0.5, 0.02, 0.02},
		{"gamma shape 0.25 (boost)", config.Load{Arrival: config.ArrivalGamma, Rate: rate, Burstiness: 0.25}, 2, 0.1, 0.04},
		{"gamma shape 25", config.Load{Arrival: config.ArrivalGamma, Rate: rate, Burstiness: 25}, 0.2, 0.01, 0.01},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewArrivals(tc.load, 1, workers)
			if err != nil {
				t.Fatal(err)
			}
			mean, cv := gapStats(t, a, testRNG(1), 100_000)
			if math.Abs(mean-wantMean)/wantMean > tc.meanRelTol {
				t.Errorf("mean gap %.6fs, want %.6fs ±%.0f%%", mean, wantMean, tc.meanRelTol*100)
			}
			if math.Abs(cv-tc.wantCV) > tc.cvTol {
				t.Errorf("CV %.4f, want %.4f ±%.3f", cv, tc.wantCV, tc.cvTol)
			}
		})
	}
}

// simulate merges the arrival times of all streams before horizon.
func simulate(t *testing.T, l config.Load, workers int, horizon time.Duration) []time.Duration {
	t.Helper()
	var all []time.Duration
	for i := range workers {
		a, err := NewArrivals(l, i, workers)
		if err != nil {
			t.Fatal(err)
		}
		rng := testRNG(i)
		at := Offset(l, i, workers)
		for {
			at += a.Next(rng)
			if at >= horizon {
				break
			}
			all = append(all, at)
		}
	}
	slices.Sort(all)
	return all
}

func TestMergedPoissonIsPoissonAtTotalRate(t *testing.T) {
	const rate, workers = 500.0, 8
	horizon := 60 * time.Second // simulated, ~30000 arrivals
	l := config.Load{Arrival: config.ArrivalPoisson, Rate: rate}
	arr := simulate(t, l, workers, horizon)

	want := rate * horizon.Seconds()
	// Poisson count: stddev sqrt(want) ≈ 173; allow 4 sigma.
	if d := math.Abs(float64(len(arr)) - want); d > 4*math.Sqrt(want) {
		t.Fatalf("merged count %d, want %.0f ± %.0f", len(arr), want, 4*math.Sqrt(want))
	}

	// Kolmogorov–Smirnov distance between the merged gaps and Exp(rate).
	gaps := make([]float64, 0, len(arr))
	for i := 1; i < len(arr); i++ {
		gaps = append(gaps, (arr[i] - arr[i-1]).Seconds())
	}
	if d, bound := ksExp(gaps, rate), 2.0/math.Sqrt(float64(len(gaps))); d > bound {
		t.Errorf("KS distance to Exp(%v) = %.4f, want < %.4f", rate, d, bound)
	}
}

// The KS check above must be able to fail: gamma(4) gaps (CV 0.5) are far
// from exponential.
func TestKSRejectsNonExponential(t *testing.T) {
	const rate = 500.0
	arr := simulate(t, config.Load{Arrival: config.ArrivalGamma, Rate: rate, Burstiness: 4}, 1, 60*time.Second)
	gaps := make([]float64, 0, len(arr))
	for i := 1; i < len(arr); i++ {
		gaps = append(gaps, (arr[i] - arr[i-1]).Seconds())
	}
	if d, bound := ksExp(gaps, rate), 2.0/math.Sqrt(float64(len(gaps))); d <= bound {
		t.Errorf("KS distance of gamma(4) gaps to Exp = %.4f, expected above %.4f", d, bound)
	}
}

func ksExp(samples []float64, rate float64) float64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	n := float64(len(s))
	var d float64
	for i, x := range s {
		cdf := 1 - math.Exp(-rate*x)
		d = max(d, math.Abs(float64(i+1)/n-cdf), math.Abs(cdf-float64(i)/n))
	}
	return d
}

func TestMergedConstantIsEvenlySpaced(t *testing.T) {
	const rate, workers = 100.0, 7
	l := config.Load{Arrival: config.ArrivalConstant, Rate: rate}
	arr := simulate(t, l, workers, 10*time.Second)
	if len(arr) < 990 || len(arr) > 1000 {
		t.Fatalf("merged count %d, want ~1000", len(arr))
	}
	want := time.Second / rate
	for i := 1; i < len(arr); i++ {
		if g := arr[i] - arr[i-1]; g < want-time.Microsecond || g > want+time.Microsecond {
			t.Fatalf("gap %d = %v, want %v", i, g, want)
		}
	}
}

func TestMergedGammaKeepsTotalRate(t *testing.T) {
	const rate, workers = 300.0, 5
	horizon := 60 * time.Second
	arr := simulate(t, config.Load{Arrival: config.ArrivalGamma, Rate: rate, Burstiness: 0.5}, workers, horizon)
	want := rate * horizon.Seconds()
	if d := math.Abs(float64(len(arr))-want) / want; d > 0.05 {
		t.Errorf("merged count %d, want %.0f ±5%%", len(arr), want)
	}
}

func TestOffset(t *testing.T) {
	c := config.Load{Arrival: config.ArrivalConstant, Rate: 4}
	for i, want := range []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond} {
		if got := Offset(c, i, 4); got != want {
			t.Errorf("constant Offset(%d) = %v, want %v", i, got, want)
		}
	}
	p := config.Load{Arrival: config.ArrivalPoisson, Rate: 4}
	if got := Offset(p, 3, 4); got != 0 {
		t.Errorf("poisson Offset = %v, want 0", got)
	}
}

func TestNewArrivalsErrors(t *testing.T) {
	cases := []struct {
		load           config.Load
		index, workers int
		want           string
	}{
		{config.Load{Mode: config.LoadClosed, Concurrency: 4}, 0, 1, "closed-loop"},
		{config.Load{Rate: 0}, 0, 1, "rate"},
		{config.Load{Rate: math.Inf(1)}, 0, 1, "rate"},
		{config.Load{Rate: 1}, 0, 0, "workers"},
		{config.Load{Rate: 1}, 2, 2, "index"},
		{config.Load{Rate: 1, Arrival: config.ArrivalGamma}, 0, 1, "burstiness"},
		{config.Load{Rate: 1, Arrival: "weibull"}, 0, 1, "unknown arrival"},
	}
	for _, tc := range cases {
		_, err := NewArrivals(tc.load, tc.index, tc.workers)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewArrivals(%+v, %d, %d) error %v, want containing %q", tc.load, tc.index, tc.workers, err, tc.want)
		}
	}
}

func TestSplitConcurrency(t *testing.T) {
	for _, workers := range []int{1, 2, 3, 7, 16} {
		for _, total := range []int{0, 1, 5, 16, 17, 100} {
			sum, lo, hi := 0, math.MaxInt, 0
			for i := range workers {
				n := SplitConcurrency(total, i, workers)
				sum += n
				lo, hi = min(lo, n), max(hi, n)
			}
			if sum != total || hi-lo > 1 {
				t.Errorf("total %d over %d workers: sum %d, spread %d..%d", total, workers, sum, lo, hi)
			}
		}
	}
}

func TestWorkerSeed(t *testing.T) {
	seen := make(map[uint64]int, 1001)
	for i := 0; i <= 1000; i++ {
		s := WorkerSeed(7, i)
		if j, dup := seen[s]; dup {
			t.Fatalf("WorkerSeed(7, %d) == WorkerSeed(7, %d)", i, j)
		}
		seen[s] = i
		if WorkerSeed(7, i) != s {
			t.Fatalf("WorkerSeed(7, %d) not stable", i)
		}
	}
	if WorkerSeed(7, 0) == WorkerSeed(8, 0) {
		t.Error("different global seeds give the same worker seed")
	}
}

func BenchmarkArrivalsNext(b *testing.B) {
	for _, l := range []config.Load{
		{Arrival: config.ArrivalPoisson, Rate: 100},
		{Arrival: config.ArrivalGamma, Rate: 100, Burstiness: 0.5},
		{Arrival: config.ArrivalGamma, Rate: 100, Burstiness: 4},
	} {
		b.Run(string(l.Arrival)+"/shape="+strconv.FormatFloat(l.Burstiness, 'g', -1, 64), func(b *testing.B) {
			a, err := NewArrivals(l, 0, 1)
			if err != nil {
				b.Fatal(err)
			}
			rng := testRNG(0)
			b.ReportAllocs()
			var sink time.Duration
			for b.Loop() {
				sink += a.Next(rng)
			}
			_ = sink
		})
	}
}
