package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/load"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

// calls notes what a worker loop handed its output, in order.
type calls struct {
	seq      []byte // 's' send, 'r' record, 'S' sample, 'f' flush
	records  []record.Record
	samples  int
	failWith error // returned from the first record, if set
}

func (c *calls) send(record.Send) error { c.seq = append(c.seq, 's'); return nil }
func (c *calls) record(r *record.Record) error {
	c.seq = append(c.seq, 'r')
	c.records = append(c.records, *r)
	return c.failWith
}
func (c *calls) sample(s *record.Sample) error {
	c.seq = append(c.seq, 'S')
	c.samples++
	return nil
}
func (c *calls) flush() error   { c.seq = append(c.seq, 'f'); return nil }
func (c *calls) backlog() int64 { return 0 }

func runLoop(t *testing.T, out output, d time.Duration) error {
	t.Helper()
	ep := newEndpoint(t, 2*time.Millisecond, time.Millisecond)
	q := load.NewQueue()
	runner, err := load.New(loadConfig(t, ep.URL, "{mode: open, arrival: constant, rate: 50}"), load.Options{Workers: 1, Drain: 2 * time.Second}, q, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- newLoop(q, runner, out, 50*time.Millisecond, DefaultThresholds, discardLogger()).run(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d + 10*time.Second):
		t.Fatal("the loop did not end within the drain bound after its context")
		return nil
	}
}

// The one loop both modes run hands every send to its output before that
// request's record, ends every batch with a flush, drains every request
// once its context ends, and ends with a sample taken after the last record.
func TestLoopPassesEverythingOnInOrder(t *testing.T) {
	c := &calls{}
	if err := runLoop(t, c, 400*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	sends, recs := 0, 0
	for i, k := range c.seq {
		switch k {
		case 's':
			sends++
		case 'r':
			if recs++; recs > sends {
				t.Fatalf("call %d: record %d before its send (%s)", i, recs, c.seq)
			}
		}
	}
	if sends < 5 || recs != sends {
		t.Fatalf("%d sends, %d records; want at least 5, every one recorded", sends, recs)
	}
	if c.samples < 2 || c.seq[len(c.seq)-1] != 'S' {
		t.Fatalf("%d samples, last call %q; want a final sample", c.samples, c.seq[len(c.seq)-1])
	}
	for i := 1; i < len(c.seq); i++ {
		if c.seq[i] == 'S' && c.seq[i-1] != 'f' && c.seq[i-1] != 'S' {
			t.Fatalf("call %d: a sample right after an unflushed batch (%s)", i, c.seq)
		}
	}
	for _, r := range c.records {
		if r.Outcome != prober.OutcomeSuccess || r.Probe != 0 { // the one probe's ID is 0
			t.Fatalf("record: outcome %v, probe %d", r.Outcome, r.Probe)
		}
	}
}

// An output that fails (the supervisor's end of the pipe is gone) ends the
// loop with its error.
func TestLoopEndsOnAnOutputError(t *testing.T) {
	broken := errors.New("broken pipe")
	if err := runLoop(t, &calls{failWith: broken}, 2*time.Second); !errors.Is(err, broken) {
		t.Fatalf("loop ended with %v, want %v", err, broken)
	}
}
