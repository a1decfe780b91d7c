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
	IDs            []uint32 // the probes' IDs, in cfg.Probes() order
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
	q := load.NewQueue()
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
	bw := bufio.NewWriterSize(out, 256<<10)
	return newLoop(q, runner, &frameOutput{bw: bw, enc: record.NewEncoder(bw)}, a.SampleInterval, a.Thresholds, logger).run(ctx)
}

// frameOutput is a worker process' output: frames on the pipe to the
// supervisor, each sample followed by a heartbeat.
type frameOutput struct {
	bw         *bufio.Writer
	enc        *record.Encoder
	heartbeats uint64
}

func (o *frameOutput) send(s record.Send) error {
	if err := o.enc.EncodeSend(s); err != nil {
		return fmt.Errorf("writing records: %w", err)
	}
	return nil
}

func (o *frameOutput) record(r *record.Record) error {
	if err := o.enc.EncodeRecord(r); err != nil {
		return fmt.Errorf("writing records: %w", err)
	}
	return nil
}

func (o *frameOutput) sample(s *record.Sample) error {
	if err := o.enc.EncodeSample(s); err != nil {
		return fmt.Errorf("writing a sample: %w", err)
	}
	o.heartbeats++
	if err := o.enc.EncodeHeartbeat(o.heartbeats, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("writing a heartbeat: %w", err)
	}
	return o.bw.Flush()
}

func (o *frameOutput) flush() error   { return o.bw.Flush() }
func (o *frameOutput) backlog() int64 { return int64(o.bw.Buffered()) }
