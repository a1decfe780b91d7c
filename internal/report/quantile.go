package report

import (
	"math"
	"slices"
)

// Quantiles summarises one quantity, in seconds (or tokens, for counts).
// The quantiles are exact, from every observation: the nearest-rank
// definition (the smallest value with at least q·n observations at or below
// it), so each one is an observed value and lies in the very bucket of a
// Prometheus histogram of the same observations that histogram_quantile
// would interpolate in.
type Quantiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Mean  float64 `json:"mean"`
	Max   float64 `json:"max"`
}

// Summarize sorts values in place and summarises them; all zero when empty.
func Summarize(values []float64) Quantiles {
	if len(values) == 0 {
		return Quantiles{}
	}
	slices.Sort(values)
	var sum float64
	for _, v := range values {
		sum += v
	}
	return Quantiles{
		Count: len(values),
		P50:   Rank(values, 0.50),
		P90:   Rank(values, 0.90),
		P99:   Rank(values, 0.99),
		Mean:  sum / float64(len(values)),
		Max:   values[len(values)-1],
	}
}

// Rank is the nearest-rank q-quantile of sorted (non-empty) values.
func Rank(sorted []float64, q float64) float64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(r, 1), len(sorted))-1]
}
