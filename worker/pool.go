package worker

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/llmprobe/llmprobe/collector"
	"github.com/llmprobe/llmprobe/config"
)

// Options configure a Pool.
type Options struct {
	// Workers is the number of worker processes; 0 runs the load inside the
	// daemon's own process.
	Workers int
	// Drain bounds how long in-flight requests may finish after their
	// generation stops (reload or shutdown) before they are canceled.
	Drain time.Duration
	// SampleInterval is the saturation window and the heartbeat period.
	SampleInterval time.Duration
	// Thresholds decide client saturation.
	Thresholds Thresholds
	// Replica is mixed into every random draw of this instance (load.Options).
	Replica string
	// Command starts a worker process: the daemon's own binary with its
	// hidden worker subcommand, unless set (tests).
	Command []string
}

// generation is the load of one configuration, wherever it runs.
type generation interface {
	stop()                     // stop scheduling; in-flight requests drain
	finished() <-chan struct{} // closed once every request sent is recorded
}

// Pool runs the load of the current config and replaces it on reload. A
// replaced generation stops scheduling at once while its in-flight requests
// finish and are recorded; the metrics live across generations, so counters
// continue.
type Pool struct {
	metrics *collector.Metrics
	sat     *collector.Saturation
	opts    Options
	logger  *slog.Logger

	mu       sync.Mutex
	current  generation
	probes   map[[2]string]bool // configured (target, scenario) label pairs
	draining sync.WaitGroup
}

// NewPool returns a pool that has not started anything yet.
func NewPool(metrics *collector.Metrics, sat *collector.Saturation, opts Options, logger *slog.Logger) (*Pool, error) {
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = time.Second
	}
	if opts.Workers > 0 && len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the llmprobe binary to start workers: %w", err)
		}
		opts.Command = []string{exe, "worker"}
	}
	return &Pool{metrics: metrics, sat: sat, opts: opts, logger: logger, probes: map[[2]string]bool{}}, nil
}

// Apply starts cfg's load, replacing the running one. On error the running
// load is left untouched.
func (p *Pool) Apply(cfg *config.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pairs := cfg.Pairs()
	n := max(1, p.opts.Workers)
	// Series are resolved (and configuration gauges set) only once the
	// configuration has been planned: a rejected reload leaves /metrics as
	// it was, with no series of its own behind.
	resolve := func() ([]*collector.Probe, []*collector.Worker) {
		probes := make([]*collector.Probe, len(pairs))
		var rate float64
		for i, pair := range pairs {
			probes[i] = p.metrics.ForProbe(pair.Target.Name, pair.Scenario)
			if pair.Scenario.Load.Mode != config.LoadClosed {
				rate += pair.Scenario.Load.Rate
			}
		}
		workers := make([]*collector.Worker, n)
		for i := range workers {
			workers[i] = p.sat.Worker(strconv.Itoa(i), rate/float64(n))
		}
		return probes, workers
	}
	keep := make(map[[2]string]bool, len(pairs))
	for _, pair := range pairs {
		keep[[2]string{pair.Target.Name, pair.Scenario.Name}] = true
	}
	var next generation
	if p.opts.Workers == 0 {
		// startInProcess plans the load itself; Plan's TLS check, which
		// names the field at fault, comes first.
		if err := checkTLSFiles(cfg); err != nil {
			return err
		}
		g, err := startInProcess(cfg, resolve, p.opts, p.logger)
		if err != nil {
			return err
		}
		next = g
	} else {
		// Plan once here, so that what would only fail inside the workers
		// (an unreadable CA file, a dataset that does not parse) fails the
		// reload instead of sending every worker into a restart loop.
		if err := Plan(cfg, n, p.logger); err != nil {
			return err
		}
		probes, workers := resolve()
		data, dir := cfg.Source()
		next = startProcesses(&procPlan{
			exe: p.opts.Command[0], args: p.opts.Command[1:], env: workerEnv(Cores(), n),
			assign: Assignment{Config: data, BaseDir: dir, Workers: n, Drain: p.opts.Drain, Replica: p.opts.Replica,
				SampleInterval: p.opts.SampleInterval, Thresholds: p.opts.Thresholds},
			probes: probes, workers: workers, cores: max(1, (Cores()+n-1)/n), logger: p.logger,
		})
	}
	if p.current != nil {
		p.retire(p.current)
	}
	for k := range p.probes {
		if !keep[k] {
			p.metrics.Forget(k[0], k[1])
		}
	}
	p.current, p.probes = next, keep
	p.logger.Info("load started", "probes", len(pairs), "workers", p.opts.Workers)
	return nil
}

func (p *Pool) retire(g generation) {
	g.stop()
	p.draining.Add(1)
	go func() {
		defer p.draining.Done()
		<-g.finished()
	}()
}

// Shutdown stops scheduling and returns once every request sent has been
// recorded (in-flight ones finish or are canceled after the drain bound).
func (p *Pool) Shutdown() {
	p.mu.Lock()
	if p.current != nil {
		p.retire(p.current)
		p.current = nil
	}
	p.mu.Unlock()
	p.draining.Wait()
}
