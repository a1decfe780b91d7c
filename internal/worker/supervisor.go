package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/internal/record"
)

// Restart backoff after a worker dies: doubling from the first to the last,
// and back to the first once a worker has run healthily for resetAfter.
const (
	firstBackoff = 100 * time.Millisecond
	lastBackoff  = 10 * time.Second
	resetAfter   = time.Minute
	// A worker silent for this many sample intervals is hung: killed and
	// restarted.
	hungAfterIntervals = 5
	// stopGrace is added to the drain bound before a stopping worker that
	// has not exited is killed.
	stopGrace = 5 * time.Second
)

// processes is one generation of worker processes sharing one plan.
type processes struct {
	cancel context.CancelFunc
	done   chan struct{}
	plan   *procPlan
}

func (g *processes) stop()                     { g.cancel() }
func (g *processes) finished() <-chan struct{} { return g.done }

// update sends every running worker the reloaded assignment (a worker that
// restarts later starts from it): probes that keep their IDs run on
// untouched in every worker.
func (g *processes) update(cfg *config.Config, ids []uint32, resolve resolveFunc) error {
	p := g.plan
	probes, _ := resolve()
	p.probes.set(ids, probes)
	data, dir := cfg.Source()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.assign.Config, p.assign.BaseDir, p.assign.IDs = data, dir, ids
	for i, in := range p.stdins {
		if in == nil {
			continue
		}
		a := p.assign
		a.Worker = i
		if err := json.NewEncoder(in).Encode(a); err != nil {
			// Its restart will start from the new assignment.
			p.logger.Error("sending a reloaded assignment", "worker", i, "err", err)
		}
	}
	return nil
}

// procPlan is what every worker of a generation shares.
type procPlan struct {
	exe     string
	args    []string
	env     []string
	probes  *probeTable
	workers []*metrics.Worker
	cores   int
	logger  *slog.Logger
	tap     Tap // nil unless bench or the status page listens

	mu     sync.Mutex
	assign Assignment       // the latest: restarted workers start from it
	stdins []io.WriteCloser // each running worker's input, nil while it is not
}

// startProcesses starts n supervised worker processes for the plan.
func startProcesses(p *procPlan) *processes {
	ctx, cancel := context.WithCancel(context.Background())
	g := &processes{cancel: cancel, done: make(chan struct{}), plan: p}
	p.stdins = make([]io.WriteCloser, len(p.workers))
	var wg sync.WaitGroup
	for i := range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.keep(ctx, i)
		}()
	}
	go func() { wg.Wait(); close(g.done) }()
	return g
}

// keep runs worker i until ctx ends, restarting it with backoff whenever it
// dies or hangs. Every restart is counted and logged; the metrics it fed
// carry on, so no counter goes backwards.
func (p *procPlan) keep(ctx context.Context, i int) {
	backoff := firstBackoff
	logger := p.logger.With("worker", i)
	for {
		began := time.Now()
		err := p.runOnce(ctx, i, logger)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > resetAfter {
			backoff = firstBackoff
		}
		p.workers[i].Restarts.Inc()
		logger.Error("worker process ended; restarting", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, lastBackoff)
	}
}

// proc is one run of a worker process, from its start to its exit.
type proc struct {
	plan   *procPlan
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	logger *slog.Logger
	in     *intake
	// lastFrame is the monotonic time since started of the last frame read:
	// a wall-clock step must not make a healthy worker look hung.
	started   time.Time
	lastFrame atomic.Int64
	exited    chan struct{}
}

// runOnce starts worker i, carries its frames into the metrics until it
// exits, and returns why it exited.
func (p *procPlan) runOnce(ctx context.Context, i int, logger *slog.Logger) error {
	recR, recW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer recR.Close()
	cmd := exec.Command(p.exe, p.args...)
	cmd.Env = p.env
	cmd.Stdout = os.Stderr // a worker writes nothing there; anything that does is a diagnostic
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{recW} // fd 3: frames
	stdin, err := cmd.StdinPipe()
	if err != nil {
		recW.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		recW.Close()
		return fmt.Errorf("starting worker: %w", err)
	}
	recW.Close()
	p.mu.Lock()
	a := p.assign
	a.Worker = i
	if err := json.NewEncoder(stdin).Encode(a); err != nil {
		logger.Error("sending the assignment", "err", err)
	}
	p.stdins[i] = stdin
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.stdins[i] = nil
		p.mu.Unlock()
	}()

	w := &proc{plan: p, cmd: cmd, stdin: stdin, logger: logger, started: time.Now(), exited: make(chan struct{}),
		in: newIntake(p.probes, p.workers[i], p.cores, func() bool { return ctx.Err() == nil }, p.tap, i, a.Thresholds)}
	go w.watch(ctx)
	w.read(recR)
	waitErr := cmd.Wait()
	close(w.exited)
	w.in.close()
	if waitErr == nil {
		waitErr = errors.New("exited")
	}
	return waitErr
}

// watch stops the worker when the generation ends (close its input, kill it
// if it outlives the drain bound) and kills it when it stops reporting.
func (w *proc) watch(ctx context.Context) {
	interval := w.plan.assign.SampleInterval
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-w.exited:
			return
		case <-ctx.Done():
			w.stdin.Close()
			select {
			case <-w.exited:
			case <-time.After(w.plan.assign.Drain + stopGrace):
				w.logger.Error("worker did not stop within the drain bound; killing it")
				w.cmd.Process.Kill()
			}
			return
		case <-tick.C:
			if silent := time.Since(w.started) - time.Duration(w.lastFrame.Load()); silent > hungAfterIntervals*interval {
				w.logger.Error("worker hung: no heartbeat; killing it", "silent", silent)
				w.cmd.Process.Kill()
				return
			}
		}
	}
}

// read decodes frames into the intake until the worker closes its end.
func (w *proc) read(r io.Reader) {
	dec := record.NewDecoder(r)
	var rec record.Record
	var sample record.Sample
	for {
		kind, err := dec.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// A worker that writes what this build cannot read is
				// broken: end it, and the restart brings a sane one.
				w.plan.logger.Error("unreadable worker frames; killing the worker", "err", err)
				w.cmd.Process.Kill()
			}
			io.Copy(io.Discard, r) // until the worker's end closes
			return
		}
		w.lastFrame.Store(int64(time.Since(w.started)))
		switch kind {
		case record.KindRecord:
			if err := dec.DecodeRecord(&rec); err != nil {
				w.plan.logger.Error("bad record frame", "err", err)
				continue
			}
			w.in.record(&rec)
		case record.KindSend:
			s, err := dec.DecodeSend()
			if err != nil {
				w.plan.logger.Error("bad send frame", "err", err)
				continue
			}
			w.in.send(s)
		case record.KindSample:
			if err := dec.DecodeSample(&sample); err != nil {
				w.plan.logger.Error("bad sample frame", "err", err)
				continue
			}
			w.in.sample(&sample)
		case record.KindHeartbeat:
			dec.DecodeHeartbeat()
		}
	}
}

// workerEnv is the environment of worker processes: the daemon's, with
// GOMAXPROCS set to the worker's share of the cores.
func workerEnv(cores, workers int) []string {
	per := max(1, (cores+workers-1)/workers)
	return append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(per))
}
