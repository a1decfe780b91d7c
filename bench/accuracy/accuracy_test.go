package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/llmprobe/llmprobe/internal/config"
)

// nativeHist observes values into a client_golang histogram configured as
// llmprobe's are (native, factor 1.1) and returns it as scraped.
func nativeHist(t *testing.T, h prometheus.Histogram) *Hist {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	out, err := histFromDTO(m.GetHistogram())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newNative(buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "x", Buckets: buckets, NativeHistogramBucketFactor: 1.1,
		NativeHistogramMaxBucketNumber: 160, NativeHistogramMinResetDuration: time.Hour,
	})
}

func exactQuantile(vs []float64, q float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

// relClose: within the ~9% width of a schema-3 bucket.
func relClose(got, want float64) bool { return math.Abs(got-want) <= 0.1*math.Abs(want) }

func TestNativeQuantilesWithinBucketResolution(t *testing.T) {
	h := newNative(prometheus.DefBuckets)
	rng := rand.New(rand.NewPCG(1, 2))
	var vs []float64
	for i := 0; i < 20000; i++ {
		v := 0.0005 * math.Exp(rng.NormFloat64()) // lognormal around 0.5ms
		vs = append(vs, v)
		h.Observe(v)
	}
	got := nativeHist(t, h)
	if !got.Native || got.Count != 20000 {
		t.Fatalf("native=%v count=%d", got.Native, got.Count)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if g, w := got.Quantile(q), exactQuantile(vs, q); !relClose(g, w) {
			t.Errorf("p%g = %g, exact %g: off by more than a bucket", q*100, g, w)
		}
	}
	trueMax := exactQuantile(vs, 1)
	if m := got.Max(); m < trueMax || m > trueMax*1.1 {
		t.Errorf("max = %g, want the upper bound of the bucket holding %g", m, trueMax)
	}
}

func TestSubIsTheWindowAlone(t *testing.T) {
	h := newNative(prometheus.DefBuckets)
	only := newNative(prometheus.DefBuckets)
	for i := 1; i <= 1000; i++ { // warm-up: large values that must not leak into the window
		h.Observe(float64(i) * 0.01)
	}
	a := nativeHist(t, h)
	for i := 1; i <= 500; i++ {
		v := 0.001 + float64(i)*1e-6
		h.Observe(v)
		only.Observe(v)
	}
	z := nativeHist(t, h)
	d, err := z.Sub(a)
	if err != nil {
		t.Fatal(err)
	}
	want := nativeHist(t, only)
	if d.Count != 500 || math.Abs(d.Sum-want.Sum) > 1e-9 {
		t.Fatalf("window count=%d sum=%g, want 500 and %g", d.Count, d.Sum, want.Sum)
	}
	for _, q := range []float64{0.5, 0.99} {
		if d.Quantile(q) != want.Quantile(q) {
			t.Errorf("p%g of the difference %g != p%g of the window alone %g", q*100, d.Quantile(q), q*100, want.Quantile(q))
		}
	}
	if d.Max() > 0.0016 {
		t.Errorf("max %g: warm-up values leaked into the window", d.Max())
	}
	if _, err := a.Sub(z); err == nil {
		t.Error("a histogram that went backwards must be an error, not a negative window")
	}
}

func TestNegativeAndZeroValuesOrdered(t *testing.T) {
	h := newNative([]float64{-0.001, 0, 0.001})
	for i := 0; i < 30; i++ {
		h.Observe(-0.002) // bias can be negative: the client saw it before the endpoint stamped it
		h.Observe(-0.0005)
	}
	for i := 0; i < 10; i++ {
		h.Observe(0)
	}
	for i := 0; i < 30; i++ {
		h.Observe(0.003)
	}
	got := nativeHist(t, h)
	if p := got.Quantile(0.25); !relClose(p, -0.002) {
		t.Errorf("p25 = %g, want ≈ -0.002 (most negative first)", p)
	}
	if p := got.Quantile(0.5); !relClose(p, -0.0005) {
		t.Errorf("p50 = %g, want ≈ -0.0005", p)
	}
	if p := got.Quantile(0.65); math.Abs(p) > 1e-3 {
		t.Errorf("p65 = %g, want in the zero bucket", p)
	}
	if p := got.Quantile(0.99); !relClose(p, 0.003) {
		t.Errorf("p99 = %g, want ≈ 0.003", p)
	}
	if m := got.Max(); m < 0.003 || m > 0.0033 {
		t.Errorf("max = %g", m)
	}
}

func TestReduceIndexNestsBuckets(t *testing.T) {
	for schema := int32(0); schema <= 8; schema++ {
		for delta := int32(1); delta <= schema; delta++ {
			for i := int32(-200); i <= 200; i++ {
				j := reduceIndex(i, delta)
				lo, hi := upperBound(schema, i-1), upperBound(schema, i)
				clo, chi := upperBound(schema-delta, j-1), upperBound(schema-delta, j)
				if lo < clo*(1-1e-12) || hi > chi*(1+1e-12) {
					t.Fatalf("schema %d bucket %d (%g,%g] is not inside schema %d bucket %d (%g,%g]", schema, i, lo, hi, schema-delta, j, clo, chi)
				}
			}
		}
	}
}

func TestSubAcrossResolutionCut(t *testing.T) {
	// The exporter halves its resolution when buckets run out: the earlier
	// snapshot is finer than the later one. The difference must be taken at
	// the coarser schema and conserve counts.
	early := &Hist{Native: true, Schema: 3, Count: 4, Sum: 4, Pos: map[int32]uint64{1: 1, 2: 1, 3: 2}}
	late := &Hist{Native: true, Schema: 2, Count: 10, Sum: 10, Pos: map[int32]uint64{1: 3, 2: 5, 40: 2}}
	d, err := late.Sub(early)
	if err != nil {
		t.Fatal(err)
	}
	// Schema 3 buckets 1,2 → schema 2 bucket 1; bucket 3 → 2.
	want := map[int32]uint64{1: 1, 2: 3, 40: 2}
	if d.Schema != 2 || len(d.Pos) != len(want) {
		t.Fatalf("diff = schema %d %v, want schema 2 %v", d.Schema, d.Pos, want)
	}
	for i, n := range want {
		if d.Pos[i] != n {
			t.Errorf("bucket %d = %d, want %d", i, d.Pos[i], n)
		}
	}
}

func TestClassicDiffAndInterpolation(t *testing.T) {
	a := &Hist{Bounds: []float64{0.001, 0.002, 0.004}, Cum: []uint64{10, 10, 10}, Count: 10}
	z := &Hist{Bounds: []float64{0.001, 0.002, 0.004}, Cum: []uint64{10, 60, 110}, Count: 112}
	d, err := z.Sub(a)
	if err != nil {
		t.Fatal(err)
	}
	// Window: 50 in (1ms,2ms], 50 in (2ms,4ms], 2 above 4ms.
	if p := d.Quantile(0.25); math.Abs(p-0.001-0.001*(25.5/50)) > 1e-9 {
		t.Errorf("p25 = %g, want linear interpolation inside (1ms,2ms]", p)
	}
	if p := d.Quantile(0.999); p != 0.004 {
		t.Errorf("p99.9 = %g, want the highest finite bound for a rank in +Inf", p)
	}
	if m := d.Max(); !math.IsInf(m, 1) {
		t.Errorf("max = %g, want +Inf (observations above the last bound)", m)
	}
	if q := (&Hist{Native: true}).Quantile(0.5); !math.IsNaN(q) {
		t.Errorf("empty quantile = %g, want NaN", q)
	}
}

func TestReduceSumsSeriesAndOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmprobe_requests_total"}, []string{"outcome"})
	sat := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "llmprobe_client_saturated"}, []string{"worker"})
	lag := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lag", NativeHistogramBucketFactor: 1.1}, []string{"worker"})
	reg.MustRegister(req, sat, lag)
	req.WithLabelValues("success").Add(7)
	req.WithLabelValues("timeout").Add(2)
	sat.WithLabelValues("0").Set(0)
	sat.WithLabelValues("1").Set(1)
	lag.WithLabelValues("0").Observe(0.001)
	lag.WithLabelValues("1").Observe(0.002)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reduce(fams)
	if err != nil {
		t.Fatal(err)
	}
	if s.Sum["llmprobe_requests_total"] != 9 || s.ByOutcome["llmprobe_requests_total"]["success"] != 7 {
		t.Errorf("requests sum=%v success=%v", s.Sum["llmprobe_requests_total"], s.ByOutcome["llmprobe_requests_total"]["success"])
	}
	if s.Max["llmprobe_client_saturated"] != 1 {
		t.Error("one saturated worker must show in Max")
	}
	if h := s.Hists["lag"]; h == nil || h.Count != 2 || !relClose(h.Max(), 0.002) {
		t.Errorf("merged per-worker histogram = %+v", h)
	}
}

func TestParseStatCommWithSpacesAndParens(t *testing.T) {
	line := "4242 (llm (probe) x) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 123 456789 1234 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.pgrp != 4240 || st.utime != 250 || st.stime != 75 || st.rssPages != 1234 {
		t.Errorf("parsed %+v", st)
	}
	if _, err := parseStat([]byte("4242 (x S 1")); err == nil {
		t.Error("malformed stat accepted")
	}
}

func row(rate float64, clean bool) Row { return Row{Rate: rate, Clean: clean} }

func TestHighestCleanRate(t *testing.T) {
	cases := []struct {
		rows []Row
		want float64
	}{
		{[]Row{row(100, true), row(300, true), row(500, false), row(700, true)}, 300}, // a clean rate above a failure does not count
		{[]Row{row(700, true), row(100, true), row(300, true)}, 700},                  // order of the ladder does not matter
		{[]Row{row(100, false), row(300, true)}, 0},
		{nil, 0},
	}
	for _, c := range cases {
		if got := highestCleanRate(c.rows); got != c.want {
			t.Errorf("highestCleanRate(%v) = %g, want %g", c.rows, got, c.want)
		}
	}
}

func TestCleanCriteria(t *testing.T) {
	good := RunResult{TTFTBias: Quant{P99: 0.0009}, RateRatio: 1.004, RateTolerance: 0.01}
	if !good.clean(time.Millisecond) {
		t.Fatal("a run within every limit must be clean")
	}
	for name, mutate := range map[string]func(*RunResult){
		"bias p99 at the limit": func(r *RunResult) { r.TTFTBias.P99 = 0.001 },
		"bias undefined":        func(r *RunResult) { r.TTFTBias.P99 = Num(math.NaN()) },
		"rate short":            func(r *RunResult) { r.RateRatio = 0.985 },
		"a drop":                func(r *RunResult) { r.Dropped = 1 },
		"an error":              func(r *RunResult) { r.Errors = 1 },
	} {
		r := good
		mutate(&r)
		if r.clean(time.Millisecond) {
			t.Errorf("%s: judged clean", name)
		}
	}
}

func TestRateToleranceAddsPoissonNoise(t *testing.T) {
	if got := rateTolerance(0.01, "constant", 700, 8); got != 0.01 {
		t.Errorf("constant arrivals: %g, want the bare tolerance", got)
	}
	// 700 req/s × 8 s = 5600 arrivals: σ = 1/√5600 ≈ 1.34%.
	if got := rateTolerance(0.01, "poisson", 700, 8); math.Abs(got-(0.01+2/math.Sqrt(5600))) > 1e-12 {
		t.Errorf("poisson: %g", got)
	}
}

func TestMedianRunFigureByFigure(t *testing.T) {
	runs := []RunResult{
		{TTFTBias: Quant{P99: 3}, CPUPer1kTokensMs: 10, ClientRSSBytes: 100},
		{TTFTBias: Quant{P99: 1}, CPUPer1kTokensMs: Num(math.NaN()), ClientRSSBytes: 300, Saturated: true},
		{TTFTBias: Quant{P99: 2}, CPUPer1kTokensMs: 30, ClientRSSBytes: 200},
	}
	m := medianRun(runs)
	if m.TTFTBias.P99 != 2 || m.CPUPer1kTokensMs != 20 || m.ClientRSSBytes != 200 || !m.Saturated {
		t.Errorf("median = bias p99 %v, cpu %v, rss %v, saturated %v; want 2, 20 (NaN skipped), 200, true",
			m.TTFTBias.P99, m.CPUPer1kTokensMs, m.ClientRSSBytes, m.Saturated)
	}
	if runs[0].TTFTBias.P99 != 3 {
		t.Error("medianRun modified its input")
	}
}

func TestNumJSONNullForUndefined(t *testing.T) {
	b, err := json.Marshal(Quant{P50: 0.5, P99: Num(math.NaN()), Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"p50":0.5,"p99":null,"max":1}` {
		t.Errorf("got %s", b)
	}
	var q Quant
	if err := json.Unmarshal(b, &q); err != nil || !math.IsNaN(float64(q.P99)) || q.Max != 1 {
		t.Errorf("round trip: %+v, %v", q, err)
	}
}

func TestParseFlagsRejectsBadLadders(t *testing.T) {
	for _, args := range [][]string{{"-rates", "100,-5"}, {"-rates", ""}, {"-modes", "0,x"}, {"-repeat", "0"}, {"-arrival", "bursty"}, {"-api", "grpc"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%s accepted", strings.Join(args, " "))
		}
	}
	o, err := parseFlags([]string{"-rates", "100, 300", "-modes", "0,8", "-server-cpus", "0-7", "-client-cpus", "8-15", "-api", "anthropic-messages"})
	if err != nil || len(o.rates) != 2 || o.rates[1] != 300 || o.modes[1] != 8 || o.clientCPUs != "8-15" || o.api != "anthropic-messages" {
		t.Errorf("parsed %+v, %v", o, err)
	}
}

func TestParseFlagsTimestampSources(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || !slices.Equal(o.timestamps, []string{"kernel", "user"}) {
		t.Fatalf("default: %v, %v; want kernel then user", o.timestamps, err)
	}
	if o, err = parseFlags([]string{"-timestamps", "user, auto"}); err != nil || !slices.Equal(o.timestamps, []string{"user", "auto"}) {
		t.Errorf("-timestamps 'user, auto': %v, %v", o.timestamps, err)
	}
	for _, v := range []string{"", "Kernel", "kernel,bogus", "kernel,kernel"} {
		if _, err := parseFlags([]string{"-timestamps", v}); err == nil {
			t.Errorf("-timestamps %q accepted", v)
		}
	}
}

// The generated daemon config names the source on the target and passes
// the daemon's own validation, so a run never measures a silent default.
func TestOpenLoopConfigCarriesTimestamps(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{o: o}
	for _, src := range []string{"kernel", "user"} {
		cfg, err := config.LoadBytes([]byte(b.openLoopConfig("127.0.0.1:9", 300, 7, src)), t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := cfg.Targets[0].Timestamps; got != src {
			t.Errorf("target timestamps = %q, want %q", got, src)
		}
		if cfg.Global.Seed != 7 {
			t.Errorf("seed = %d, want 7 for both sources", cfg.Global.Seed)
		}
	}
}

func fakeRun(src string, rate float64, rep int, biasP99, emitP99 float64) RunResult {
	return RunResult{Workers: 0, RequestedRate: rate, Repeat: rep, Seed: rep + 1, Timestamps: src,
		AchievedRate: Num(rate), RateRatio: 1, RateTolerance: 0.05,
		TTFTBias: Quant{P50: Num(biasP99 / 4), P99: Num(biasP99), Max: Num(biasP99 * 2)},
		EmitLag:  Quant{P50: Num(emitP99 / 4), P99: Num(emitP99), Max: Num(emitP99 * 2)},
		ReadLag:  Quant{P50: Num(math.NaN()), P99: Num(math.NaN()), Max: Num(math.NaN())}, ReadLagEvents: 0,
		TTFTBiasMean: Num(biasP99 / 3), EmitLagMean: Num(emitP99 / 3), RequestLegMean: Num(biasP99/3 - emitP99/3),
		CPUPer1kTokensMs: 20, EndpointLateness: Quant{P99: 0.0005}}
}

// Summarize keeps one ladder per (mode, source) and pairs the sources per
// rate, in -timestamps order, each figure the median of that source's runs
// alone; the markdown shows the pair in one row.
func TestSummarizePutsSourcesSideBySide(t *testing.T) {
	o, err := parseFlags([]string{"-rates", "100,300", "-modes", "0", "-repeat", "2"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{}
	for _, rate := range o.rates {
		for r := 0; r < 2; r++ {
			k := fakeRun("kernel", rate, r, 0.0002*float64(r+1), 0.0001*float64(r+1))
			k.ReadLag, k.ReadLagEvents = Quant{P50: 0.00005, P99: 0.0003, Max: 0.001}, 1000
			rep.Runs = append(rep.Runs, k, fakeRun("user", rate, r, 0.002*float64(r+1), 0.001*float64(r+1)))
		}
	}
	rep.Summarize(o)
	if len(rep.Modes) != 2 || rep.Modes[0].Timestamps != "kernel" || rep.Modes[1].Timestamps != "user" {
		t.Fatalf("ladders: %+v", rep.Modes)
	}
	for _, m := range rep.Modes {
		if len(m.Rows) != 2 || m.Rows[0].Runs != 2 || m.Rows[0].Timestamps != m.Timestamps {
			t.Errorf("%s ladder rows: %+v", m.Timestamps, m.Rows)
		}
	}
	if len(rep.SideBySide) != 2 {
		t.Fatalf("side by side: %d comparisons, want one per rate", len(rep.SideBySide))
	}
	c := rep.SideBySide[1]
	if c.Rate != 300 || len(c.Sources) != 2 || c.Sources[0].Timestamps != "kernel" || c.Sources[1].Timestamps != "user" {
		t.Fatalf("comparison at 300: %+v", c)
	}
	// Medians of (0.2, 0.4) ms and (2, 4) ms: the sources never mix.
	if k, u := float64(c.Sources[0].TTFTBias.P99), float64(c.Sources[1].TTFTBias.P99); math.Abs(k-0.0003) > 1e-12 || math.Abs(u-0.003) > 1e-12 {
		t.Errorf("TTFT bias p99 kernel %g, user %g; want 0.0003 and 0.003", k, u)
	}
	md := rep.Markdown(o)
	for _, want := range []string{
		"each cell kernel / user",
		"| 300 | 300.0 / 300.0 | 0.075 / 0.750 | 0.300 / 3.000 | 0.038 / 0.375 | 0.150 / 1.500 | 0.050, 0.300 (1000) / none | 0.050 / 0.500 | 20.0 / 20.0 | 0.500 / 0.500 |",
		"#### kernel timestamps", "#### user timestamps",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		SideBySide []struct {
			Sources []struct {
				Timestamps string `json:"timestamps"`
				EmitLag    Quant  `json:"emit_lag_seconds"`
			} `json:"sources"`
		} `json:"side_by_side"`
	}
	if err := json.Unmarshal(js, &back); err != nil || len(back.SideBySide) != 2 || back.SideBySide[0].Sources[1].Timestamps != "user" {
		t.Errorf("JSON side_by_side: %+v, %v", back, err)
	}
}
