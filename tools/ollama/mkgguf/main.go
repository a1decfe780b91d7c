// Command mkgguf writes a tiny random-weight llama model as GGUF, for tests
// that need a real engine to run and no real model:
//
//	go run ./mkgguf -o tiny.gguf
//
// The weights are random (seeded, so the file is the same every time) and
// F32; the model is 2 layers of width 64 over a 446-token SentencePiece
// vocabulary, under 1 MB. Its output is gibberish by design, with one
// property tests rely on: it never ends a reply by itself. Every embedding
// carries a large constant in dimension 0 that the layers' small weights
// cannot cancel, and the output rows of the tokens it must never emit
// (end of sequence, the other control tokens, the raw bytes, which could
// split a UTF-8 character across chunks, and the bare word boundary) weigh
// that dimension strongly negative. So a reply always runs to the requested
// length (num_predict / max_tokens) and every token is plain ASCII text:
// one token per streamed chunk.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

const (
	embd    = 64
	layers  = 2
	heads   = 4
	kvHeads = 2
	headDim = embd / heads
	ff      = 128
	ctxLen  = 4096
	marker  = 4.0   // dimension 0 of every embedding
	forbid  = -20.0 // dimension 0 of a never-emitted token's output row
	spread  = 0.5   // scale of the other embedding and output weights
	inner   = 0.02  // scale of attention and MLP weights
)

// SentencePiece token types, as llama.cpp reads them.
const (
	typeNormal  = 1
	typeUnknown = 2
	typeControl = 3
	typeByte    = 6
)

type vocab struct {
	tokens []string
	scores []float32
	types  []int32
	emit   []bool // may the model generate it
}

func (v *vocab) add(tok string, score float32, typ int32, emit bool) {
	v.tokens = append(v.tokens, tok)
	v.scores = append(v.scores, score)
	v.types = append(v.types, typ)
	v.emit = append(v.emit, emit)
}

func buildVocab() *vocab {
	v := &vocab{}
	v.add("<unk>", 0, typeUnknown, false) // 0
	v.add("<s>", 0, typeControl, false)   // 1: BOS
	v.add("</s>", 0, typeControl, false)  // 2: EOS
	for b := range 256 {                  // byte fallback: any prompt encodes
		v.add(fmt.Sprintf("<0x%02X>", b), 0, typeByte, false)
	}
	v.add("\u2581", -1, typeNormal, false) // the word boundary alone: a bare space
	for c := 'a'; c <= 'z'; c++ {
		v.add(string(c), -2, typeNormal, true)
	}
	for c := '0'; c <= '9'; c++ {
		v.add(string(c), -2, typeNormal, false)
	}
	for _, c := range ".,!?'-:;()" {
		v.add(string(c), -2, typeNormal, false)
	}
	// Syllables, alone and starting a word: what the model says.
	for _, c := range "bdfgklmnprstvz" {
		for _, w := range "aeiou" {
			s := string(c) + string(w)
			v.add(s, -1, typeNormal, true)
			v.add("\u2581"+s, -0.5, typeNormal, true)
		}
	}
	return v
}

type writer struct {
	rng     *rand.Rand
	tensors []*ggml.Tensor
}

func (w *writer) tensor(name string, values []float32, shape ...uint64) {
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, values)
	w.tensors = append(w.tensors, &ggml.Tensor{
		Name:     name,
		Kind:     uint32(ggml.TensorTypeF32),
		Shape:    shape,
		WriterTo: bytes.NewReader(buf.Bytes()),
	})
}

func (w *writer) normal(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(w.rng.NormFloat64() * scale)
	}
	return v
}

func ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

func main() {
	out := flag.String("o", "tiny.gguf", "output file")
	seed := flag.Uint64("seed", 1, "random seed of the weights")
	flag.Parse()

	v := buildVocab()
	n := len(v.tokens)
	w := &writer{rng: rand.New(rand.NewPCG(*seed, 0x6c6c6d70726f6265))}

	// GGUF shapes list the fastest-varying dimension first: a [embd, n]
	// matrix is n rows of embd values.
	emb := w.normal(embd*n, spread)
	outw := w.normal(embd*n, spread)
	for t := range n {
		emb[t*embd] = marker
		outw[t*embd] = 0
		if !v.emit[t] {
			outw[t*embd] = forbid
		}
	}
	w.tensor("token_embd.weight", emb, embd, uint64(n))
	w.tensor("output.weight", outw, embd, uint64(n))
	w.tensor("output_norm.weight", ones(embd), embd)
	for l := range layers {
		p := fmt.Sprintf("blk.%d.", l)
		w.tensor(p+"attn_norm.weight", ones(embd), embd)
		w.tensor(p+"attn_q.weight", w.normal(embd*heads*headDim, inner), embd, heads*headDim)
		w.tensor(p+"attn_k.weight", w.normal(embd*kvHeads*headDim, inner), embd, kvHeads*headDim)
		w.tensor(p+"attn_v.weight", w.normal(embd*kvHeads*headDim, inner), embd, kvHeads*headDim)
		w.tensor(p+"attn_output.weight", w.normal(heads*headDim*embd, inner), heads*headDim, embd)
		w.tensor(p+"ffn_norm.weight", ones(embd), embd)
		w.tensor(p+"ffn_gate.weight", w.normal(embd*ff, inner), embd, ff)
		w.tensor(p+"ffn_up.weight", w.normal(embd*ff, inner), embd, ff)
		w.tensor(p+"ffn_down.weight", w.normal(ff*embd, inner), ff, embd)
	}

	kv := ggml.KV{
		"general.architecture":                   "llama",
		"general.name":                           "llmprobe-tiny",
		"general.file_type":                      uint32(ggml.FileTypeF32),
		"llama.vocab_size":                       uint32(n),
		"llama.context_length":                   uint32(ctxLen),
		"llama.embedding_length":                 uint32(embd),
		"llama.block_count":                      uint32(layers),
		"llama.feed_forward_length":              uint32(ff),
		"llama.attention.head_count":             uint32(heads),
		"llama.attention.head_count_kv":          uint32(kvHeads),
		"llama.attention.layer_norm_rms_epsilon": float32(1e-5),
		"llama.rope.dimension_count":             uint32(headDim),
		"llama.rope.freq_base":                   float32(10000),
		"tokenizer.ggml.model":                   "llama",
		"tokenizer.ggml.tokens":                  v.tokens,
		"tokenizer.ggml.scores":                  v.scores,
		"tokenizer.ggml.token_type":              v.types,
		"tokenizer.ggml.unknown_token_id":        uint32(0),
		"tokenizer.ggml.bos_token_id":            uint32(1),
		"tokenizer.ggml.eos_token_id":            uint32(2),
		"tokenizer.ggml.add_bos_token":           true,
		"tokenizer.ggml.add_eos_token":           false,
	}

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkgguf:", err)
		os.Exit(1)
	}
	if err := ggml.WriteGGUF(f, kv, w.tensors); err != nil {
		fmt.Fprintln(os.Stderr, "mkgguf:", err)
		os.Exit(1)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "mkgguf:", err)
		os.Exit(1)
	}
	// Read it back with Ollama's own decoder: a file it cannot read fails
	// here, not later inside `ollama create`.
	r, err := os.Open(*out)
	if err == nil {
		defer r.Close()
		_, err = ggml.Decode(r, -1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkgguf: reading back:", err)
		os.Exit(1)
	}
}
