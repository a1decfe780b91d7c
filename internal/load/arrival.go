package load

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// Arrivals yields successive inter-arrival gaps for one worker's stream.
//
// The arrivals of stream i fall at Offset(i) + g1, Offset(i) + g1 + g2, ...
// where gk is the k-th value of Next: the first request waits one gap, so
// that N Poisson streams do not all fire together at start.
//
// Implementations are stateless values; the caller owns rng (one per
// goroutine), so Next never locks and never allocates.
type Arrivals interface {
	Next(rng *rand.Rand) time.Duration
}

// NewArrivals builds worker index's stream, one of workers streams that
// together make an open-loop load of l.Rate requests per second:
//
//   - poisson: each stream is Poisson at rate/workers; a superposition of
//     independent Poisson streams is Poisson at the summed rate.
//   - constant: each stream sends every workers/rate seconds; with Offset
//     staggering the streams by 1/rate, the merged stream is evenly spaced.
//   - gamma: gamma-distributed gaps with shape l.Burstiness and mean
//     workers/rate (coefficient of variation 1/sqrt(shape)). Unlike Poisson,
//     the merge of gamma streams is not gamma: it tends to Poisson as workers
//     grows, so burstiness is only preserved exactly with one worker.
//
// An empty Arrival means poisson.
func NewArrivals(l config.Load, index, workers int) (Arrivals, error) {
	if l.Mode == config.LoadClosed {
		return nil, errors.New("closed-loop load has no arrival process")
	}
	if workers < 1 {
		return nil, fmt.Errorf("workers must be at least 1, got %d", workers)
	}
	if index < 0 || index >= workers {
		return nil, fmt.Errorf("worker index %d out of range [0, %d)", index, workers)
	}
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		return nil, fmt.Errorf("open-loop rate must be a positive finite number of requests per second, got %v", l.Rate)
	}
	mean := float64(workers) / l.Rate // seconds between arrivals of one stream
	switch l.Arrival {
	case config.ArrivalPoisson, "":
		return poisson{mean: mean}, nil
	case config.ArrivalConstant:
		return constant{gap: secondsToDuration(mean)}, nil
	case config.ArrivalGamma:
		k := l.Burstiness
		if !(k > 0) || math.IsInf(k, 0) {
			return nil, fmt.Errorf("gamma arrival needs burstiness (shape) > 0, got %v", k)
		}
		return newGamma(k, mean/k), nil
	default:
		return nil, fmt.Errorf("unknown arrival process %q", l.Arrival)
	}
}

// Offset is when stream index starts, relative to the load's start. Constant
// streams are staggered by 1/rate so that their merge is evenly spaced;
// Poisson and gamma streams start at 0 (their first gap already randomises
// the first send).
func Offset(l config.Load, index, workers int) time.Duration {
	if l.Arrival != config.ArrivalConstant || !(l.Rate > 0) || index <= 0 || index >= workers {
		return 0
	}
	return secondsToDuration(float64(index) / l.Rate)
}

// SplitConcurrency is worker index's share of a closed loop's total
// concurrency: shares differ by at most 1 and sum to total.
func SplitConcurrency(total, index, workers int) int {
	if workers < 1 || index < 0 || index >= workers || total <= 0 {
		return 0
	}
	n := total / workers
	if index < total%workers {
		n++
	}
	return n
}

// WorkerSeed derives worker index's seed from the global seed with
// splitmix64: distinct indices give distinct seeds (the mixer is a bijection
// of distinct states), the same inputs always give the same seed, and nearby
// indices give unrelated streams.
func WorkerSeed(seed int64, index int) uint64 {
	z := uint64(seed) + (uint64(index)+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ReplicaSalt turns a replica's name into what is mixed into its seeds (FNV-1a;
// 0 for no name, so a run without one draws what it always drew).
func ReplicaSalt(replica string) int64 {
	if replica == "" {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(replica); i++ {
		h = (h ^ uint64(replica[i])) * 1099511628211
	}
	return int64(h)
}

// secondsToDuration converts, saturating instead of overflowing for gaps of
// very low rates.
func secondsToDuration(s float64) time.Duration {
	ns := s * 1e9
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

type poisson struct{ mean float64 }

func (p poisson) Next(rng *rand.Rand) time.Duration {
	return secondsToDuration(rng.ExpFloat64() * p.mean)
}

type constant struct{ gap time.Duration }

func (c constant) Next(*rand.Rand) time.Duration { return c.gap }

// gamma samples gaps Gamma(shape, scale) with Marsaglia and Tsang's method
// ("A simple method for generating gamma variables", 2000). For shape < 1 it
// samples Gamma(shape+1) and boosts by U^(1/shape).
type gamma struct {
	shape, scale float64
	d, c         float64 // Marsaglia–Tsang constants for max(shape, shape+1 if boosted)
	invShape     float64 // 1/shape, used by the boost; 0 when shape >= 1
}

func newGamma(shape, scale float64) gamma {
	g := gamma{shape: shape, scale: scale}
	a := shape
	if shape < 1 {
		a = shape + 1
		g.invShape = 1 / shape
	}
	g.d = a - 1.0/3
	g.c = 1 / math.Sqrt(9*g.d)
	return g
}

func (g gamma) Next(rng *rand.Rand) time.Duration {
	return secondsToDuration(g.sample(rng) * g.scale)
}

// sample returns a Gamma(shape, 1) variate.
func (g gamma) sample(rng *rand.Rand) float64 {
	var x float64
	for {
		n := rng.NormFloat64()
		v := 1 + g.c*n
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		n2 := n * n
		// Squeeze first: accepts ~98% without computing logarithms.
		if u < 1-0.0331*n2*n2 || math.Log(u) < 0.5*n2+g.d*(1-v+math.Log(v)) {
			x = g.d * v
			break
		}
	}
	if g.invShape != 0 {
		// 1-Float64 is in (0, 1], avoiding a zero gap from U = 0.
		x *= math.Pow(1-rng.Float64(), g.invShape)
	}
	return x
}
