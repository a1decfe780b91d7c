// Package workload makes the prompts a scenario sends: synthetic word
// prompts with configured length distributions, or rows of a JSONL dataset.
//
// A token here is a whitespace-separated word: the reference endpoint counts
// input tokens that way, and the words used are single tokens in common
// tokenizers, so lengths carry over to real engines closely.
package workload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/llmprobe/llmprobe/internal/config"
)

// Prompt is one request's input and the output length asked for.
type Prompt struct {
	Text        string
	InputTokens int // words in Text
	MaxTokens   int
}

// Corpus sizing. Synthetic prompts are substrings of one corpus built at New,
// so Next allocates nothing and prompts differ from each other.
const (
	// offsetWords: without a shared prefix a prompt starts at any of
	// offsetWords+1 word offsets, so two identical prompts (an accidental
	// prefix-cache hit) are rare: 1 in 2^18 per pair.
	offsetWords = 1 << 18
	// The shared-prefix layout: segments of segWords words, each the prefix
	// then random words. As many segments as fit prefixCorpusWords, within
	// [minPrefixSegments, maxPrefixSegments], never past maxCorpusWords.
	// A segment holds the longest prompt unless that is over
	// maxSegmentWords (and prefix+1024): such rare long prompts run on into
	// the following segments, prefix copy included, so that memory stays
	// about 2^20 words plus the longest prompt instead of growing with
	// segments × longest.
	prefixCorpusWords = 1 << 20
	minPrefixSegments = 32
	maxPrefixSegments = 4096
	maxSegmentWords   = 1 << 15
	maxCorpusWords    = 1 << 23
	corpusSeedStream  = 0x6c6c6d70726f6265 // "llmprobe": PCG stream, fixed so corpora depend on the seed only
)

// Generator hands out prompts. It is read-only after New, so one Generator
// serves any number of goroutines, each passing its own rng.
type Generator struct {
	input, output  lengthDist
	outputExplicit bool // workload.output_tokens was set: it overrides dataset lengths

	// Synthetic prompts: corpus holds words separated by single spaces;
	// starts[i] is the byte offset of word i, and starts[len] is
	// len(corpus)+1, so words [o, o+n) are corpus[starts[o]:starts[o+n]-1].
	corpus string
	starts []int32
	// With a shared prefix the corpus is blocks of segWords words, each the
	// same prefix followed by its own random words; a prompt starts at one of
	// the first segments blocks. Without, segWords is 0 and prompts start
	// anywhere.
	segWords, segments int

	// Dataset prompts; with outputExplicit, MaxTokens is drawn per Next.
	rows    []Prompt
	skipped int
}

// New builds a Generator for w. Synthetic corpora, the shared prefix
// included, are deterministic from seed: give every worker of one probe the
// same seed so they share the prefix (and could share one Generator); the
// workers' own rngs already make their prompt choices differ. A dataset is
// read and parsed here, once.
//
// Shared prefix: every synthetic prompt's first w.SharedPrefixTokens words
// are the same, and input lengths count the prefix. Draws are raised to at
// least prefix+1 words so each prompt has a unique part, unless the longest
// length is the prefix itself (then every prompt is the prefix, as asked).
// A prompt must be one contiguous substring for Next to allocate nothing, so
// the corpus repeats the prefix in front of each of a bounded number of
// segments (32 to 4096, about 2^20 words in all). Two prompts from the same
// segment share more than the prefix, with chance 1/segments per pair: the
// price of zero allocations, kept small by the segment count. Prompts longer
// than 2^15 words (and than prefix+1024) continue into the next segment, so
// they contain a second copy of the prefix text; the cacheable prefix, the
// start, is still exactly the shared one.
func New(w config.Workload, seed int64) (*Generator, error) {
	g := &Generator{outputExplicit: w.OutputTokens != (config.Length{})}
	var err error
	if g.output, err = newLengthDist("output_tokens", w.OutputTokens, config.DefaultOutputTokens, config.MaxTokens); err != nil {
		return nil, err
	}
	if w.SharedPrefixTokens < 0 {
		return nil, fmt.Errorf("shared_prefix_tokens must not be negative, got %d", w.SharedPrefixTokens)
	}
	if w.Dataset != nil {
		if w.SharedPrefixTokens > 0 {
			return nil, errors.New("shared_prefix_tokens applies to synthetic prompts only, not to a dataset")
		}
		if err := g.loadDataset(*w.Dataset); err != nil {
			return nil, err
		}
		return g, nil
	}
	if g.input, err = newLengthDist("input_tokens", w.InputTokens, config.DefaultInputTokens, config.MaxTokens); err != nil {
		return nil, err
	}
	longest := g.input.upper()
	prefix := w.SharedPrefixTokens
	if prefix > longest {
		return nil, fmt.Errorf("shared_prefix_tokens %d is longer than the longest input (%d tokens)", prefix, longest)
	}
	if prefix > 0 {
		g.input.raiseMin(min(prefix+1, longest))
	}
	g.buildCorpus(rand.New(rand.NewPCG(uint64(seed), corpusSeedStream)), prefix, longest)
	return g, nil
}

func (g *Generator) buildCorpus(rng *rand.Rand, prefix, longest int) {
	total := longest + offsetWords
	if prefix > 0 {
		g.segWords = min(longest, max(maxSegmentWords, prefix+1024))
		g.segments = min(max(prefixCorpusWords/g.segWords, minPrefixSegments), maxPrefixSegments, max(1, maxCorpusWords/g.segWords))
		// Whole extra segments after the last start let the longest prompt
		// from any start fit.
		extra := (longest - 1) / g.segWords
		total = (g.segments + extra) * g.segWords
	}
	prefixWords := make([]string, prefix)
	for i := range prefixWords {
		prefixWords[i] = words[rng.IntN(len(words))]
	}
	var b strings.Builder
	b.Grow(total * 7) // the average word is under 6 bytes, plus a space
	g.starts = make([]int32, total+1)
	for i := range total {
		if i > 0 {
			b.WriteByte(' ')
		}
		// Offsets are int32 to halve the table; the corpus is far below 2 GiB
		// (under 2^24 words of at most 12 bytes).
		g.starts[i] = int32(b.Len())
		w := words[rng.IntN(len(words))]
		if g.segWords > 0 && i%g.segWords < prefix {
			w = prefixWords[i%g.segWords]
		}
		b.WriteString(w)
	}
	g.corpus = b.String()
	g.starts[total] = int32(len(g.corpus) + 1)
}

// Next returns a prompt drawn with rng, which the caller owns. Synthetic
// prompts are substrings of the corpus and dataset prompts are shared, so
// Next allocates nothing.
func (g *Generator) Next(rng *rand.Rand) Prompt {
	if g.rows != nil {
		p := g.rows[rng.IntN(len(g.rows))]
		if g.outputExplicit {
			p.MaxTokens = g.output.draw(rng)
		}
		return p
	}
	n := g.input.draw(rng)
	var o int
	if g.segWords > 0 {
		o = rng.IntN(g.segments) * g.segWords
	} else {
		o = rng.IntN(len(g.starts) - n) // len(starts)-1 words, n of them taken
	}
	return Prompt{
		Text:        g.corpus[g.starts[o] : g.starts[o+n]-1],
		InputTokens: n,
		MaxTokens:   g.output.draw(rng),
	}
}

// DatasetRows is the number of usable dataset rows (0 for synthetic prompts).
func (g *Generator) DatasetRows() int { return len(g.rows) }

// SkippedRows is the number of dataset rows skipped for want of a usable
// prompt (or of a reply to size the output, when output_tokens is not set).
func (g *Generator) SkippedRows() int { return g.skipped }
