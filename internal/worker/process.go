package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/internal/record"
)

// Assignment is what the supervisor tells a worker process, as JSON values
// on its standard input: the first starts the load; each later one moves it
// to a reloaded configuration, its probes that kept their IDs running on
// untouched. Closing that input tells the worker to stop (drain, flush,
// exit); so does the supervisor's death.
type Assignment struct {
	Config         []byte        // the configuration's YAML, as the supervisor validated it
	BaseDir        string        // where its relative paths resolve
	Worker         int           // this worker's index
	Workers        int           // how many share the load
	Drain          time.Duration // in-flight bound after stop
	SampleInterval time.Duration // saturation window and heartbeat period
	Thresholds     Thresholds
	Replica        string   // mixed into the random draws (load.Options)
	IDs            []uint32 // the probes' IDs, in the configuration's pair order
}

// Serve is a worker process' whole life: run the assigned share of the load
// and write records, samples and heartbeats to out until told to stop.
func Serve(in io.Reader, out io.Writer, logger *slog.Logger) error {
	dec := json.NewDecoder(in)
	var a Assignment
	if err := dec.Decode(&a); err != nil {
		return fmt.Errorf("reading the assignment: %w", err)
	}
	cfg, err := config.LoadBytes(a.Config, a.BaseDir)
	if err != nil {
		return fmt.Errorf("assigned configuration: %w", err)
	}
	logger = logger.With("worker", a.Worker)
	q := metrics.NewQueue()
	runner, err := load.New(cfg, load.Options{Worker: a.Worker, Workers: a.Workers, Drain: a.Drain, Replica: a.Replica, IDs: a.IDs}, q, logger)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		// End of input (or anything but an assignment): the supervisor
		// stops us, or is gone.
		defer stop()
		for {
			var next Assignment
			if err := dec.Decode(&next); err != nil {
				return
			}
			cfg, err := config.LoadBytes(next.Config, next.BaseDir)
			if err == nil {
				err = runner.Update(cfg, next.IDs, nil)
			}
			if err != nil {
				// The supervisor planned it: this is not expected. The
				// running load goes on as it was.
				logger.Error("applying a reloaded assignment", "err", err)
			}
		}
	}()
	finished := make(chan struct{})
	go func() {
		runner.Run(ctx)
		runner.Close()
		close(finished)
	}()
	w := &frameWriter{bw: bufio.NewWriterSize(out, 256<<10), q: q, sampler: newSampler(runner), runner: runner, a: a, logger: logger}
	w.enc = record.NewEncoder(w.bw)
	return w.run(finished)
}

// frameWriter owns the pipe to the supervisor: records as they finish, and
// every SampleInterval a sample (with the saturation verdict) and a heartbeat.
type frameWriter struct {
	bw         *bufio.Writer
	enc        *record.Encoder
	q          *metrics.Queue
	sampler    *sampler
	runner     *load.Runner
	a          Assignment
	logger     *slog.Logger
	prev, cur  record.Sample
	verdict    verdict
	heartbeats uint64
}

func (w *frameWriter) run(finished <-chan struct{}) error {
	interval := w.a.SampleInterval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	w.sampler.sample(&w.prev, 0)
	for {
		select {
		case <-w.q.Ready():
			if err := w.records(); err != nil {
				return err
			}
		case <-tick.C:
			if err := w.sample(); err != nil {
				return err
			}
		case <-finished:
			if err := w.records(); err != nil {
				return err
			}
			return w.sample()
		}
	}
}

func (w *frameWriter) records() error {
	for _, it := range w.q.Drain() {
		var err error
		if it.Record == nil {
			err = w.enc.EncodeSend(it.Send)
		} else {
			err = w.enc.EncodeRecord(it.Record)
			record.Put(it.Record)
		}
		if err != nil {
			return fmt.Errorf("writing records: %w", err)
		}
	}
	return w.bw.Flush()
}

func (w *frameWriter) sample() error {
	w.sampler.sample(&w.cur, int64(w.bw.Buffered()))
	w.verdict.update(w.a.Thresholds, &w.prev, &w.cur, w.runner, w.logger)
	if err := w.enc.EncodeSample(&w.cur); err != nil {
		return fmt.Errorf("writing a sample: %w", err)
	}
	w.heartbeats++
	if err := w.enc.EncodeHeartbeat(w.heartbeats, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("writing a heartbeat: %w", err)
	}
	w.prev, w.cur = w.cur, w.prev
	return w.bw.Flush()
}
