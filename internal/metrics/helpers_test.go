package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// histogramOf returns the single histogram series of the named family.
func histogramOf(t *testing.T, g prometheus.Gatherer, name string) *dto.Histogram {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if len(mf.Metric) != 1 {
				t.Fatalf("%s: %d series, want 1", name, len(mf.Metric))
			}
			return mf.Metric[0].GetHistogram()
		}
	}
	t.Fatalf("%s not gathered", name)
	return nil
}
