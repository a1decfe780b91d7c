package report

import "testing"

// Nearest rank: each quantile is an observed value, the smallest with at
// least q·n observations at or below it.
func TestSummarizeNearestRank(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	q := Summarize(v)
	if q.Count != 100 || q.P50 != 50 || q.P90 != 90 || q.P99 != 99 || q.Max != 100 || q.Mean != 50.5 {
		t.Errorf("got %+v", q)
	}
	if q := Summarize([]float64{7}); q.P50 != 7 || q.P99 != 7 {
		t.Errorf("one value: %+v", q)
	}
	if q := Summarize([]float64{1, 2, 3}); q.P50 != 2 || q.P90 != 3 {
		t.Errorf("three values: %+v", q)
	}
	if q := Summarize(nil); q != (Quantiles{}) {
		t.Errorf("empty: %+v", q)
	}
}
