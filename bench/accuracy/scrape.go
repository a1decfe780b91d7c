package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Snapshot is one scrape, reduced to what the benchmark reads: per family,
// the sum and max of its counter/gauge series and the merged histogram of
// its histogram series, plus values per outcome label.
type Snapshot struct {
	At    time.Time
	Sum   map[string]float64
	Max   map[string]float64
	Hists map[string]*Hist
	// ByOutcome["llmprobe_requests_total"]["success"], summed over the other labels.
	ByOutcome map[string]map[string]float64
}

// protoAccept asks for the delimited protobuf format: only it carries native
// histogram buckets (the text format has the classic ones only).
const protoAccept = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.9,text/plain;version=0.0.4;q=0.1`

var scrapeClient = &http.Client{Timeout: 10 * time.Second}

// scrape fetches and reduces one /metrics page.
func scrape(ctx context.Context, url string) (*Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", protoAccept)
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	at := time.Now()
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decoding %s: %w", url, err)
		}
		fams = append(fams, mf)
	}
	s, err := reduce(fams)
	if err != nil {
		return nil, err
	}
	s.At = at
	return s, nil
}

// reduce folds metric families into a Snapshot.
func reduce(fams []*dto.MetricFamily) (*Snapshot, error) {
	s := &Snapshot{Sum: map[string]float64{}, Max: map[string]float64{}, Hists: map[string]*Hist{}, ByOutcome: map[string]map[string]float64{}}
	for _, mf := range fams {
		name := mf.GetName()
		for _, m := range mf.Metric {
			var v float64
			switch {
			case m.Histogram != nil:
				h, err := histFromDTO(m.Histogram)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				if s.Hists[name], err = s.Hists[name].Add(h); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				continue
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Untyped != nil:
				v = m.Untyped.GetValue()
			default:
				continue
			}
			if cur, ok := s.Max[name]; !ok || v > cur {
				s.Max[name] = v
			}
			s.Sum[name] += v
			for _, l := range m.Label {
				if l.GetName() == "outcome" {
					if s.ByOutcome[name] == nil {
						s.ByOutcome[name] = map[string]float64{}
					}
					s.ByOutcome[name][l.GetValue()] += v
				}
			}
		}
	}
	return s, nil
}

// histDelta is the named histogram observed between two snapshots; an empty
// histogram when the family is absent from both.
func histDelta(a, b *Snapshot, name string) (*Hist, error) {
	hb := b.Hists[name]
	if hb == nil {
		return &Hist{Native: true}, nil
	}
	d, err := hb.Sub(a.Hists[name])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}
