package workload

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/llmprobe/llmprobe/internal/config"
)

// Fixed seeds keep the statistical tests deterministic: a wrong sampler
// fails every run, a right one never flakes.
func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func mustNew(t testing.TB, w config.Workload, seed int64) *Generator {
	t.Helper()
	g, err := New(w, seed)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestWordList(t *testing.T) {
	if len(words) < 450 || len(words) > 600 {
		t.Errorf("%d words, want about 500", len(words))
	}
	seen := map[string]bool{}
	for _, w := range words {
		if w == "" || strings.ContainsFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) {
			t.Errorf("word %q is not a plain lowercase word", w)
		}
		if seen[w] {
			t.Errorf("duplicate word %q", w)
		}
		seen[w] = true
	}
}

func moments(xs []int) (mean, sd float64) {
	var s, s2 float64
	for _, x := range xs {
		s += float64(x)
		s2 += float64(x) * float64(x)
	}
	n := float64(len(xs))
	mean = s / n
	return mean, math.Sqrt(math.Max(s2/n-mean*mean, 0))
}

func TestLengthDistributions(t *testing.T) {
	cases := []struct {
		name             string
		l                config.Length
		wantMean, wantSD float64
		lo, hi           int // every draw within
	}{
		{"fixed", config.Length{Distribution: config.DistFixed, Value: 100}, 100, 0, 100, 100},
		{"empty distribution is fixed", config.Length{Value: 37}, 37, 0, 37, 37},
		// Discrete uniform on [a,b]: sd = sqrt(((b-a+1)^2-1)/12).
		{"uniform", config.Length{Distribution: config.DistUniform, Min: 10, Max: 90}, 50, math.Sqrt((81*81 - 1) / 12.0), 10, 90},
		{"normal", config.Length{Distribution: config.DistNormal, Mean: 500, Stddev: 50}, 500, 50, 1, config.MaxTokens},
		{"lognormal", config.Length{Distribution: config.DistLognormal, Mean: 400, Stddev: 300}, 400, 300, 1, config.MaxTokens},
		{"lognormal zero stddev", config.Length{Distribution: config.DistLognormal, Mean: 64, Stddev: 0}, 64, 0, 64, 64},
		// Clamping to [Min, Max]: a normal cut at one sigma either side has
		// mean 200 (symmetric) and a smaller spread; only the bounds and the
		// mean are asserted here (sd -1 skips the spread check).
		{"normal clamped", config.Length{Distribution: config.DistNormal, Mean: 200, Stddev: 100, Min: 100, Max: 300}, 200, -1, 100, 300},
		// A normal around 2 would go below 1 often: lengths are never < 1.
		{"normal never below 1", config.Length{Distribution: config.DistNormal, Mean: 2, Stddev: 5}, -1, -1, 1, config.MaxTokens},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := mustNew(t, config.Workload{InputTokens: tc.l, OutputTokens: tc.l}, 1)
			rng := newRNG(7)
			const n = 100_000
			in, out := make([]int, n), make([]int, n)
			for i := range n {
				p := g.Next(rng)
				in[i], out[i] = p.InputTokens, p.MaxTokens
			}
			for _, xs := range [][]int{in, out} {
				for _, x := range xs {
					if x < tc.lo || x > tc.hi {
						t.Fatalf("draw %d outside [%d, %d]", x, tc.lo, tc.hi)
					}
				}
				mean, sd := moments(xs)
				// Standard error of the mean is sd/sqrt(n) ≈ 1/316 sd; allow
				// 1% of the mean plus rounding, and 3% on the spread.
				if tc.wantMean >= 0 && math.Abs(mean-tc.wantMean) > 0.01*tc.wantMean+0.5 {
					t.Errorf("mean %.2f, want %.2f", mean, tc.wantMean)
				}
				if tc.wantSD >= 0 && math.Abs(sd-tc.wantSD) > 0.03*tc.wantSD+0.5 {
					t.Errorf("stddev %.2f, want %.2f", sd, tc.wantSD)
				}
			}
		})
	}
}

func TestUnsetLengthsUseDefaults(t *testing.T) {
	g := mustNew(t, config.Workload{}, 1)
	rng := newRNG(1)
	for range 100 {
		if p := g.Next(rng); p.InputTokens != config.DefaultInputTokens.Value || p.MaxTokens != config.DefaultOutputTokens.Value {
			t.Fatalf("got %d in / %d out, want defaults %d / %d", p.InputTokens, p.MaxTokens, config.DefaultInputTokens.Value, config.DefaultOutputTokens.Value)
		}
	}
}

func TestLengthErrors(t *testing.T) {
	cases := []struct {
		w    config.Workload
		want string
	}{
		{config.Workload{InputTokens: config.Length{Distribution: "zipf", Mean: 3}}, `input_tokens: unknown length distribution "zipf"`},
		{config.Workload{InputTokens: config.Length{Distribution: config.DistFixed}, OutputTokens: config.Length{Value: 1}}, "input_tokens: fixed length needs value >= 1, got 0"},
		{config.Workload{InputTokens: config.Length{Distribution: config.DistUniform, Min: 9, Max: 3}}, "input_tokens: min 9 is above max 3"},
		{config.Workload{OutputTokens: config.Length{Distribution: config.DistNormal, Mean: 0, Stddev: 3}}, "output_tokens: normal length needs mean > 0, got 0"},
		{config.Workload{InputTokens: config.Length{Distribution: config.DistLognormal, Mean: 10, Stddev: -1}}, "input_tokens: lognormal length needs stddev >= 0, got -1"},
		{config.Workload{InputTokens: config.Length{Value: config.MaxTokens + 1}}, "input_tokens: fixed length 1048577 is above the limit 1048576"},
		{config.Workload{InputTokens: config.Length{Value: 64}, SharedPrefixTokens: 65}, "shared_prefix_tokens 65 is longer than the longest input (64 tokens)"},
		{config.Workload{InputTokens: config.Length{Distribution: config.DistUniform, Min: 1, Max: 10}, SharedPrefixTokens: 11}, "shared_prefix_tokens 11 is longer than the longest input (10 tokens)"},
		{config.Workload{SharedPrefixTokens: 8, Dataset: &config.Dataset{Path: "testdata/rows.jsonl", Format: config.DatasetRows}}, "shared_prefix_tokens applies to synthetic prompts only, not to a dataset"},
	}
	for _, tc := range cases {
		_, err := New(tc.w, 1)
		if err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) error %v, want %q", tc.w, err, tc.want)
		}
	}
}

func TestSyntheticPromptsMatchTheirLength(t *testing.T) {
	known := map[string]bool{}
	for _, w := range words {
		known[w] = true
	}
	g := mustNew(t, config.Workload{InputTokens: config.Length{Distribution: config.DistUniform, Min: 1, Max: 3000}}, 3)
	rng := newRNG(1)
	for range 2000 {
		p := g.Next(rng)
		f := strings.Fields(p.Text)
		if len(f) != p.InputTokens {
			t.Fatalf("prompt has %d words, InputTokens %d", len(f), p.InputTokens)
		}
		if strings.Join(f, " ") != p.Text {
			t.Fatalf("prompt is not single-space separated words without edges: %q...", p.Text[:min(len(p.Text), 40)])
		}
		for _, w := range f {
			if !known[w] {
				t.Fatalf("word %q is not from the word list", w)
			}
		}
	}
}

func TestSyntheticPromptsDiffer(t *testing.T) {
	g := mustNew(t, config.Workload{InputTokens: config.Length{Value: 200}}, 3)
	rng := newRNG(2)
	seen := map[string]bool{}
	for range 1000 {
		seen[g.Next(rng).Text] = true
	}
	// 1000 draws among ~2^18 offsets: expect a couple of collisions at most.
	if len(seen) < 990 {
		t.Errorf("%d distinct prompts in 1000", len(seen))
	}
}

func TestDeterministicForSeed(t *testing.T) {
	w := config.Workload{
		InputTokens:        config.Length{Distribution: config.DistLognormal, Mean: 300, Stddev: 200},
		OutputTokens:       config.Length{Distribution: config.DistNormal, Mean: 100, Stddev: 20},
		SharedPrefixTokens: 16,
	}
	a, b := mustNew(t, w, 99), mustNew(t, w, 99)
	ra, rb := newRNG(5), newRNG(5)
	for i := range 500 {
		if pa, pb := a.Next(ra), b.Next(rb); pa != pb {
			t.Fatalf("draw %d differs for the same seeds", i)
		}
	}
	// Another corpus seed gives other text under the same draw sequence.
	c := mustNew(t, w, 100)
	if a.Next(newRNG(1)).Text == c.Next(newRNG(1)).Text {
		t.Error("corpus seeds 99 and 100 gave the same prompt")
	}
}

func TestSharedPrefix(t *testing.T) {
	const prefix = 50
	g := mustNew(t, config.Workload{
		InputTokens:        config.Length{Distribution: config.DistUniform, Min: 10, Max: 400},
		SharedPrefixTokens: prefix,
	}, 11)
	rng := newRNG(3)
	var first []string
	afterPrefix := map[string]bool{}
	for range 2000 {
		p := g.Next(rng)
		f := strings.Fields(p.Text)
		if len(f) != p.InputTokens {
			t.Fatalf("prompt has %d words, InputTokens %d", len(f), p.InputTokens)
		}
		if p.InputTokens < prefix+1 || p.InputTokens > 400 {
			t.Fatalf("InputTokens %d outside [%d, 400]", p.InputTokens, prefix+1)
		}
		if first == nil {
			first = f[:prefix]
		}
		if strings.Join(f[:prefix], " ") != strings.Join(first, " ") {
			t.Fatalf("prompt does not start with the shared prefix")
		}
		afterPrefix[strings.Join(f[prefix:min(len(f), prefix+8)], " ")] = true
	}
	// The unique parts come from ~2600 segments (2^20/400): nearly all
	// of 2000 draws should start their unique part differently.
	if len(afterPrefix) < 1000 {
		t.Errorf("only %d distinct continuations after the prefix in 2000 prompts", len(afterPrefix))
	}
}

func TestSyntheticNextDoesNotAllocate(t *testing.T) {
	for name, w := range map[string]config.Workload{
		"plain":  {InputTokens: config.Length{Distribution: config.DistLognormal, Mean: 500, Stddev: 300}},
		"prefix": {InputTokens: config.Length{Distribution: config.DistNormal, Mean: 500, Stddev: 100}, SharedPrefixTokens: 100},
	} {
		g := mustNew(t, w, 1)
		rng := newRNG(1)
		if a := testing.AllocsPerRun(1000, func() { _ = g.Next(rng) }); a != 0 {
			t.Errorf("%s: %v allocations per Next, want 0", name, a)
		}
	}
}

func TestShareGPT(t *testing.T) {
	g := mustNew(t, config.Workload{Dataset: &config.Dataset{Path: "testdata/sharegpt.jsonl", Format: config.DatasetShareGPT}}, 1)
	want := []Prompt{
		{"What is the capital of France?", 6, 6},
		{"Name three colors.", 3, 3},           // system turn skipped, first reply only
		{"Say hello", 2, 1},                    // role/content keys; empty reply still asks for 1 token
		{"Describe this\nimage briefly", 4, 5}, // messages alias, content parts
	}
	if g.DatasetRows() != len(want) || g.SkippedRows() != 4 {
		t.Fatalf("%d rows, %d skipped; want %d and 4", g.DatasetRows(), g.SkippedRows(), len(want))
	}
	for i, p := range want {
		if g.rows[i] != p {
			t.Errorf("row %d = %+v, want %+v", i, g.rows[i], p)
		}
	}
	// Next picks every row, at random.
	seen := map[string]int{}
	rng := newRNG(4)
	for range 4000 {
		p := g.Next(rng)
		seen[p.Text]++
		if p.MaxTokens < 1 {
			t.Fatalf("MaxTokens %d", p.MaxTokens)
		}
	}
	for _, p := range want {
		if c := seen[p.Text]; c < 800 || c > 1200 {
			t.Errorf("row %q picked %d times in 4000, want ~1000", p.Text, c)
		}
	}
}

func TestShareGPTExplicitOutputOverridesReplies(t *testing.T) {
	g := mustNew(t, config.Workload{
		OutputTokens: config.Length{Value: 42},
		Dataset:      &config.Dataset{Path: "testdata/sharegpt.jsonl"}, // format defaults to sharegpt
	}, 1)
	// The row without a reply is usable now that the output length is known.
	if g.DatasetRows() != 5 || g.SkippedRows() != 3 {
		t.Fatalf("%d rows, %d skipped; want 5 and 3", g.DatasetRows(), g.SkippedRows())
	}
	rng := newRNG(1)
	for range 100 {
		if p := g.Next(rng); p.MaxTokens != 42 {
			t.Fatalf("MaxTokens %d, want 42", p.MaxTokens)
		}
	}
}

func TestRows(t *testing.T) {
	g := mustNew(t, config.Workload{Dataset: &config.Dataset{Path: "testdata/rows.jsonl", Format: config.DatasetRows}}, 1)
	// Skipped: the empty prompt, and "four five" (output_tokens 0 and no
	// workload output_tokens to fall back on).
	if g.DatasetRows() != 2 || g.SkippedRows() != 2 {
		t.Fatalf("%d rows, %d skipped; want 2 and 2", g.DatasetRows(), g.SkippedRows())
	}
	got := map[string]Prompt{}
	rng := newRNG(1)
	for range 300 {
		p := g.Next(rng)
		got[p.Text] = p
		if len(strings.Fields(p.Text)) != p.InputTokens {
			t.Fatalf("%q: InputTokens %d", p.Text, p.InputTokens)
		}
	}
	want := map[string]Prompt{
		"one two three":        {"one two three", 3, 7},
		"six seven eight nine": {"six seven eight nine", 4, 3}, // last line has no newline
	}
	if len(got) != len(want) {
		t.Fatalf("got prompts %v", got)
	}
	for k, p := range want {
		if got[k] != p {
			t.Errorf("%q: got %+v, want %+v", k, got[k], p)
		}
	}
}

func TestRowsExplicitOutput(t *testing.T) {
	g := mustNew(t, config.Workload{
		OutputTokens: config.Length{Distribution: config.DistUniform, Min: 5, Max: 6},
		Dataset:      &config.Dataset{Path: "testdata/rows.jsonl", Format: config.DatasetRows},
	}, 1)
	if g.DatasetRows() != 3 || g.SkippedRows() != 1 {
		t.Fatalf("%d rows, %d skipped; want 3 and 1", g.DatasetRows(), g.SkippedRows())
	}
	rng := newRNG(1)
	for range 100 {
		if p := g.Next(rng); p.MaxTokens < 5 || p.MaxTokens > 6 {
			t.Fatalf("%q: MaxTokens %d, want the configured 5..6", p.Text, p.MaxTokens)
		}
	}
}

func TestSharedPrefixLongPromptsRunOn(t *testing.T) {
	// Prompts longer than a segment (2^15 words) continue into the next
	// segments; they must still start with the prefix, count right, and
	// differ after it.
	const prefix, n = 20, 50_000
	g := mustNew(t, config.Workload{InputTokens: config.Length{Value: n}, SharedPrefixTokens: prefix}, 1)
	rng := newRNG(9)
	var head string
	tails := map[string]bool{}
	for range 50 {
		p := g.Next(rng)
		f := strings.Fields(p.Text)
		if len(f) != n || p.InputTokens != n {
			t.Fatalf("%d words, InputTokens %d, want %d", len(f), p.InputTokens, n)
		}
		h := strings.Join(f[:prefix], " ")
		if head == "" {
			head = h
		}
		if h != head {
			t.Fatal("prompt does not start with the shared prefix")
		}
		tails[strings.Join(f[prefix:prefix+16], " ")] = true
	}
	if len(tails) < 25 {
		t.Errorf("%d distinct continuations in 50 prompts", len(tails))
	}
}

func TestSharedPrefixAsLongAsThePrompt(t *testing.T) {
	// Config allows prefix == the (fixed) input length: every prompt is then
	// the prefix alone, as configured.
	g := mustNew(t, config.Workload{InputTokens: config.Length{Value: 40}, SharedPrefixTokens: 40}, 1)
	rng := newRNG(1)
	first := g.Next(rng)
	for range 100 {
		if p := g.Next(rng); p != first || p.InputTokens != 40 {
			t.Fatalf("got %+v, want the 40-word prefix every time", p)
		}
	}
}

func TestDatasetErrors(t *testing.T) {
	cases := []struct {
		ds   config.Dataset
		want string
	}{
		{config.Dataset{Path: "testdata/malformed.jsonl", Format: config.DatasetRows},
			"dataset testdata/malformed.jsonl:3: malformed JSON: invalid character '}' looking for beginning of object key string"},
		{config.Dataset{Path: "testdata/badtype.jsonl", Format: config.DatasetRows},
			"dataset testdata/badtype.jsonl:1: unexpected row: json: cannot unmarshal string into Go struct field plainRow.output_tokens of type int"},
		{config.Dataset{Path: "testdata/empty.jsonl", Format: config.DatasetRows},
			"dataset testdata/empty.jsonl: no usable rows (2 skipped: no prompt, or no output length while workload output_tokens is unset)"},
		{config.Dataset{Path: "testdata/rows.jsonl", Format: "csv"},
			`dataset testdata/rows.jsonl: unknown format "csv"`},
		{config.Dataset{Path: "testdata/missing.jsonl", Format: config.DatasetRows},
			"dataset: open testdata/missing.jsonl: no such file or directory"},
	}
	for _, tc := range cases {
		_, err := New(config.Workload{Dataset: &tc.ds}, 1)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error\n  %v\nwant\n  %s", tc.ds.Path, err, tc.want)
		}
	}
}

func TestCountWords(t *testing.T) {
	for _, s := range []string{"", " ", "a", " a  b\tc\n", "héllo wörld", "x\u00a0y", "one,two three"} {
		if got, want := countWords(s), len(strings.Fields(s)); got != want {
			t.Errorf("countWords(%q) = %d, want %d", s, got, want)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	for _, bc := range []struct {
		name string
		w    config.Workload
	}{
		{"synthetic/fixed", config.Workload{InputTokens: config.Length{Value: 512}, OutputTokens: config.Length{Value: 128}}},
		{"synthetic/lognormal", config.Workload{InputTokens: config.Length{Distribution: config.DistLognormal, Mean: 500, Stddev: 300}}},
		{"synthetic/shared-prefix", config.Workload{InputTokens: config.Length{Distribution: config.DistUniform, Min: 200, Max: 2000}, SharedPrefixTokens: 128}},
		{"dataset/sharegpt", config.Workload{Dataset: &config.Dataset{Path: "testdata/sharegpt.jsonl"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := mustNew(b, bc.w, 1)
			rng := newRNG(1)
			b.ReportAllocs()
			var n int
			for b.Loop() {
				n += g.Next(rng).InputTokens
			}
			_ = n
		})
	}
}

func BenchmarkNew(b *testing.B) {
	w := config.Workload{InputTokens: config.Length{Distribution: config.DistUniform, Min: 100, Max: 4000}, SharedPrefixTokens: 256}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(w, 1); err != nil {
			b.Fatal(err)
		}
	}
}
