package workload

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/llmprobe/llmprobe/internal/config"
)

// Every length is capped at config.MaxTokens. The corpus that synthetic
// prompts are cut from must hold the longest one, so a normal or lognormal
// input length without Max is also cut at mean+6 stddevs (of the length, or
// of its logarithm; a tail mass below 1e-9).

// lengthDist draws token counts from a config.Length. It is read-only after
// construction so one value serves every worker goroutine.
type lengthDist struct {
	dist      config.Distribution
	value     int     // fixed
	lo, hi    int     // clamp bounds, 1 <= lo <= hi
	mean, sd  float64 // normal
	mu, sigma float64 // lognormal: parameters of the log of the length
}

// newLengthDist validates l. A zero Length means def (config fills that in
// when it loads a file; a Workload built in code may leave it out); an empty
// distribution with a Value means fixed. hardMax caps every draw.
func newLengthDist(what string, l, def config.Length, hardMax int) (lengthDist, error) {
	if l == (config.Length{}) {
		l = def
	}
	if l.Min < 0 || l.Max < 0 {
		return lengthDist{}, fmt.Errorf("%s: min and max must not be negative", what)
	}
	if l.Max > 0 && l.Min > l.Max {
		return lengthDist{}, fmt.Errorf("%s: min %d is above max %d", what, l.Min, l.Max)
	}
	d := lengthDist{dist: l.Distribution, lo: max(1, l.Min), hi: hardMax}
	if l.Max > 0 {
		d.hi = min(l.Max, hardMax)
	}
	switch l.Distribution {
	case config.DistFixed, "":
		d.dist = config.DistFixed
		if l.Value < 1 {
			return lengthDist{}, fmt.Errorf("%s: fixed length needs value >= 1, got %d", what, l.Value)
		}
		if l.Value > hardMax {
			return lengthDist{}, fmt.Errorf("%s: fixed length %d is above the limit %d", what, l.Value, hardMax)
		}
		d.value = l.Value
		d.lo, d.hi = l.Value, l.Value
	case config.DistUniform:
		if l.Max < 1 {
			return lengthDist{}, fmt.Errorf("%s: uniform length needs max >= 1", what)
		}
		if l.Max > hardMax {
			return lengthDist{}, fmt.Errorf("%s: uniform max %d is above the limit %d", what, l.Max, hardMax)
		}
	case config.DistNormal, config.DistLognormal:
		if !(l.Mean > 0) || math.IsInf(l.Mean, 0) {
			return lengthDist{}, fmt.Errorf("%s: %s length needs mean > 0, got %v", what, l.Distribution, l.Mean)
		}
		if !(l.Stddev >= 0) || math.IsInf(l.Stddev, 0) {
			return lengthDist{}, fmt.Errorf("%s: %s length needs stddev >= 0, got %v", what, l.Distribution, l.Stddev)
		}
		d.mean, d.sd = l.Mean, l.Stddev
		// Moments of the length → parameters of its logarithm:
		// sigma² = ln(1 + sd²/mean²), mu = ln(mean) − sigma²/2.
		cv := l.Stddev / l.Mean
		d.sigma = math.Sqrt(math.Log1p(cv * cv))
		d.mu = math.Log(l.Mean) - d.sigma*d.sigma/2
		if l.Max == 0 {
			tail := l.Mean + 6*l.Stddev
			if l.Distribution == config.DistLognormal {
				tail = math.Exp(d.mu + 6*d.sigma)
			}
			d.hi = int(math.Min(math.Ceil(tail), float64(hardMax)))
		}
	default:
		return lengthDist{}, fmt.Errorf("%s: unknown length distribution %q", what, l.Distribution)
	}
	if d.lo > d.hi {
		return lengthDist{}, fmt.Errorf("%s: min %d is above the largest possible length %d", what, d.lo, d.hi)
	}
	return d, nil
}

// upper is the largest length draw can return.
func (d *lengthDist) upper() int { return d.hi }

// raiseMin makes every draw at least n (used to fit a shared prefix); the
// caller has checked n <= upper().
func (d *lengthDist) raiseMin(n int) { d.lo = max(d.lo, n) }

func (d *lengthDist) draw(rng *rand.Rand) int {
	var x float64
	switch d.dist {
	case config.DistFixed:
		return d.value
	case config.DistUniform:
		return d.lo + rng.IntN(d.hi-d.lo+1)
	case config.DistNormal:
		x = d.mean + d.sd*rng.NormFloat64()
	case config.DistLognormal:
		x = math.Exp(d.mu + d.sigma*rng.NormFloat64())
	}
	// Clamp in float first: a far tail must not overflow the int conversion.
	x = math.Round(x)
	if !(x >= float64(d.lo)) { // also catches NaN
		return d.lo
	}
	if x > float64(d.hi) {
		return d.hi
	}
	return int(x)
}
