package workload

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/llmprobe/llmprobe/internal/config"
)

// loadDataset reads a JSONL file: one JSON object per line, blank lines
// ignored. Rows without a usable prompt are skipped and counted; malformed
// JSON fails the load, naming the file and line.
func (g *Generator) loadDataset(ds config.Dataset) error {
	var parse func([]byte) (Prompt, bool, error)
	switch ds.Format {
	case config.DatasetShareGPT, "":
		parse = g.parseShareGPT
	case config.DatasetRows:
		parse = g.parseRow
	default:
		return fmt.Errorf("dataset %s: unknown format %q", ds.Path, ds.Format)
	}
	f, err := os.Open(ds.Path)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()

	// bufio.Reader rather than Scanner: ShareGPT lines can be megabytes long
	// and Scanner fails on lines above its buffer.
	r := bufio.NewReaderSize(f, 1<<20)
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("dataset %s:%d: %w", ds.Path, lineNo, err)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF")) // UTF-8 byte order mark
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			p, ok, perr := parse(trimmed)
			if perr != nil {
				var syn *json.SyntaxError
				if errors.As(perr, &syn) {
					return fmt.Errorf("dataset %s:%d: malformed JSON: %v", ds.Path, lineNo, perr)
				}
				return fmt.Errorf("dataset %s:%d: unexpected row: %v", ds.Path, lineNo, perr)
			}
			if ok {
				g.rows = append(g.rows, p)
			} else {
				g.skipped++
			}
		}
		if err != nil { // io.EOF, after the last line without a newline
			break
		}
	}
	if len(g.rows) == 0 {
		return fmt.Errorf("dataset %s: no usable rows (%d skipped: no prompt, or no output length while workload output_tokens is unset)", ds.Path, g.skipped)
	}
	return nil
}

// text is a message body: a JSON string, or an OpenAI content-parts array
// whose text parts are joined. Anything else (null, numbers, images only)
// reads as empty, making the row unusable rather than the file malformed.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	*t = ""
	var s string
	if json.Unmarshal(b, &s) == nil {
		*t = text(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(b, &parts) == nil {
		var sb strings.Builder
		for _, p := range parts {
			if p.Type == "text" || p.Type == "" {
				if sb.Len() > 0 && p.Text != "" {
					sb.WriteByte('\n')
				}
				sb.WriteString(p.Text)
			}
		}
		*t = text(sb.String())
	}
	return nil
}

type shareGPTTurn struct {
	From    string `json:"from"`
	Value   text   `json:"value"`
	Role    string `json:"role"`
	Content text   `json:"content"`
}

type shareGPTRow struct {
	Conversations []shareGPTTurn `json:"conversations"`
	Messages      []shareGPTTurn `json:"messages"` // OpenAI-style alias
}

// parseShareGPT takes the first human turn as the prompt, and sizes the
// output by the first reply after it unless output_tokens is configured.
func (g *Generator) parseShareGPT(line []byte) (Prompt, bool, error) {
	var row shareGPTRow
	if err := json.Unmarshal(line, &row); err != nil {
		return Prompt{}, false, err
	}
	turns := row.Conversations
	if len(turns) == 0 {
		turns = row.Messages
	}
	human := -1
	for i, t := range turns {
		if isHuman(t.speaker()) {
			human = i
			break
		}
	}
	if human < 0 {
		return Prompt{}, false, nil
	}
	prompt := strings.TrimSpace(turns[human].text())
	if prompt == "" {
		return Prompt{}, false, nil
	}
	p := Prompt{Text: prompt, InputTokens: countWords(prompt)}
	if g.outputExplicit {
		return p, true, nil // MaxTokens 0: drawn from output_tokens by Next
	}
	for _, t := range turns[human+1:] {
		if isReply(t.speaker()) {
			p.MaxTokens = max(1, countWords(t.text()))
			return p, true, nil
		}
	}
	return Prompt{}, false, nil // no reply to size the output by
}

func (t *shareGPTTurn) speaker() string {
	if t.From != "" {
		return t.From
	}
	return t.Role
}

func (t *shareGPTTurn) text() string {
	if t.Value != "" {
		return string(t.Value)
	}
	return string(t.Content)
}

func isHuman(s string) bool {
	return strings.EqualFold(s, "human") || strings.EqualFold(s, "user")
}

func isReply(s string) bool {
	for _, r := range [...]string{"gpt", "assistant", "chatgpt", "bard", "bing", "model"} {
		if strings.EqualFold(s, r) {
			return true
		}
	}
	return false
}

type plainRow struct {
	Prompt       text `json:"prompt"`
	OutputTokens int  `json:"output_tokens"`
}

// parseRow reads {"prompt": "...", "output_tokens": N}. A row without a
// positive output_tokens is usable only when workload output_tokens is set
// (as a ShareGPT row without a reply): no hidden default length.
func (g *Generator) parseRow(line []byte) (Prompt, bool, error) {
	var row plainRow
	if err := json.Unmarshal(line, &row); err != nil {
		return Prompt{}, false, err
	}
	prompt := strings.TrimSpace(string(row.Prompt))
	if prompt == "" || (row.OutputTokens <= 0 && !g.outputExplicit) {
		return Prompt{}, false, nil
	}
	return Prompt{Text: prompt, InputTokens: countWords(prompt), MaxTokens: max(0, row.OutputTokens)}, true, nil
}

// countWords counts as strings.Fields splits, without allocating.
func countWords(s string) int {
	n, in := 0, false
	for _, r := range s {
		if unicode.IsSpace(r) {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}
