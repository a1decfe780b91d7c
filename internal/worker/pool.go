package worker

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/metrics"
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
	// Tap, if set, also sees every record and sample (see Tap).
	Tap Tap
}

// generation is the load of one configuration, wherever it runs.
type generation interface {
	stop()                     // stop scheduling; in-flight requests drain
	finished() <-chan struct{} // closed once every request sent is recorded
	// update moves the running load to a reloaded cfg in place: probes
	// whose IDs run already go on untouched, the others start, and probes
	// not in ids stop (draining). resolve is called once the new probes are
	// planned, before any of them sends.
	update(cfg *config.Config, ids []uint32, resolve resolveFunc) error
}

// resolveFunc resolves a configuration's series (in cfg.Probes() order) and sets its
// configuration gauges: only once the configuration is known to run.
type resolveFunc func() ([]*metrics.Probe, []*metrics.Worker)

// Pool runs the load of the current config. A reload updates it in place,
// probe by probe (Apply); only a change of the global settings or of a named
// file replaces the generation, which then stops scheduling at once while
// its in-flight requests finish and are recorded. The metrics live across
// generations, so counters continue.
type Pool struct {
	reg    *metrics.Metrics
	sat    *metrics.Saturation
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	current  generation
	running  *config.Config     // the configuration current runs
	labels   map[[2]string]bool // the (target, scenario) labels of the configured probes
	ids      map[[2]string]uint32
	lastID   uint32
	draining sync.WaitGroup
}

// NewPool returns a pool that has not started anything yet.
func NewPool(m *metrics.Metrics, sat *metrics.Saturation, opts Options, logger *slog.Logger) (*Pool, error) {
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
	return &Pool{reg: m, sat: sat, opts: opts, logger: logger, labels: map[[2]string]bool{}, ids: map[[2]string]uint32{}}, nil
}

// Apply starts cfg's load. A reload keeps running, untouched, every probe
// that cfg configures exactly as the running configuration does (its
// connections, warm-up and schedule go on), restarts those that changed,
// starts the new ones and stops the removed ones, in the running workers;
// only a change of the global settings or of a file the configuration names
// restarts everything. On error the running load is left untouched.
func (p *Pool) Apply(cfg *config.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	probes := cfg.Probes()
	n := max(1, p.opts.Workers)
	// Series are resolved (and configuration gauges set) only once the
	// configuration has been planned: a rejected reload leaves /metrics as
	// it was, with no series of its own behind.
	resolve := func() ([]*metrics.Probe, []*metrics.Worker) {
		series := make([]*metrics.Probe, len(probes))
		var rate float64
		for i, probe := range probes {
			series[i] = p.reg.ForProbe(probe.Target.Name, probe.Scenario)
			if probe.Scenario.Load.Mode != config.LoadClosed {
				rate += probe.Scenario.Load.Rate
			}
		}
		workers := make([]*metrics.Worker, n)
		for i := range workers {
			workers[i] = p.sat.Worker(strconv.Itoa(i), rate/float64(n))
		}
		return series, workers
	}
	// A probe that runs on unchanged keeps its ID; any other gets a new one,
	// so that its new run's counts (from zero) are never taken for the old
	// run's.
	unchanged := map[[2]string]bool{}
	if p.current != nil {
		unchanged = config.Unchanged(p.running, cfg)
	}
	keep := make(map[[2]string]bool, len(probes))
	ids := make([]uint32, len(probes))
	nextIDs := make(map[[2]string]uint32, len(probes))
	lastID := p.lastID
	kept := 0
	for i, probe := range probes {
		k := [2]string{probe.Target.Name, probe.Scenario.Name}
		keep[k] = true
		if id, ok := p.ids[k]; ok && unchanged[k] {
			ids[i] = id
			kept++
		} else {
			lastID++
			ids[i] = lastID
		}
		nextIDs[k] = ids[i]
	}
	if p.opts.Tap != nil {
		p.opts.Tap.Probes(ids, probes)
	}
	if p.opts.Workers == 0 {
		// The runner plans the load itself; Plan's TLS check, which names
		// the field at fault, comes first.
		if err := checkTLSFiles(cfg); err != nil {
			return err
		}
	} else if err := Plan(cfg, n, p.logger); err != nil {
		// Planned here, so that what would only fail inside the workers (an
		// unreadable CA file, a dataset that does not parse) fails the
		// reload instead of sending every worker into a restart loop.
		return err
	}
	if p.current != nil && len(unchanged) > 0 {
		if err := p.current.update(cfg, ids, resolve); err != nil {
			return err
		}
	} else {
		next, err := p.start(cfg, ids, resolve, n)
		if err != nil {
			return err
		}
		if p.current != nil {
			p.retire(p.current)
		}
		p.current = next
	}
	for k := range p.labels {
		if !keep[k] {
			p.reg.Forget(k[0], k[1])
		}
	}
	p.labels, p.ids, p.lastID, p.running = keep, nextIDs, lastID, cfg
	p.logger.Info("load started", "probes", len(probes), "unchanged", kept, "workers", p.opts.Workers)
	return nil
}

// start begins a new generation for cfg.
func (p *Pool) start(cfg *config.Config, ids []uint32, resolve resolveFunc, n int) (generation, error) {
	if p.opts.Workers == 0 {
		return startInProcess(cfg, ids, resolve, p.opts, p.logger)
	}
	probes, workers := resolve()
	table := newProbeTable()
	table.set(ids, probes)
	data, dir := cfg.Source()
	return startProcesses(&procPlan{
		exe: p.opts.Command[0], args: p.opts.Command[1:], env: workerEnv(Cores(), n),
		assign: Assignment{Config: data, BaseDir: dir, Workers: n, Drain: p.opts.Drain, Replica: p.opts.Replica,
			SampleInterval: p.opts.SampleInterval, Thresholds: p.opts.Thresholds, IDs: ids},
		probes: table, workers: workers, cores: max(1, (Cores()+n-1)/n), logger: p.logger, tap: p.opts.Tap,
	}), nil
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
