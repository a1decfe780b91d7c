package worker

import (
	"log/slog"
	"sync"
	"time"

	"github.com/llmprobe/llmprobe/collector"
	"github.com/llmprobe/llmprobe/config"
)

// Options configure a Pool.
type Options struct {
	// Drain bounds how long in-flight requests may finish after their
	// generation stops (reload or shutdown) before they are canceled.
	Drain time.Duration
}

// Pool runs the load of the current config and replaces it on reload. A
// replaced generation stops scheduling at once while its in-flight requests
// finish and are recorded; the metrics live in one collector.Metrics across
// generations, so counters continue.
type Pool struct {
	metrics *collector.Metrics
	opts    Options
	logger  *slog.Logger

	mu       sync.Mutex
	current  *inProcess
	probes   map[[2]string]bool // configured (target, scenario) label pairs
	draining sync.WaitGroup
}

// NewPool returns a pool that has not started anything yet.
func NewPool(metrics *collector.Metrics, opts Options, logger *slog.Logger) *Pool {
	return &Pool{metrics: metrics, opts: opts, logger: logger, probes: map[[2]string]bool{}}
}

// Apply starts cfg's load, replacing the running one. On error the running
// load is left untouched.
func (p *Pool) Apply(cfg *config.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pairs := cfg.Pairs()
	probes := make([]*collector.Probe, len(pairs))
	keep := make(map[[2]string]bool, len(pairs))
	for i, pair := range pairs {
		probes[i] = p.metrics.ForProbe(pair.Target.Name, pair.Scenario)
		keep[[2]string{pair.Target.Name, pair.Scenario.Name}] = true
	}
	next, err := startInProcess(cfg, probes, p.opts.Drain, p.logger)
	if err != nil {
		return err
	}
	if old := p.current; old != nil {
		p.retire(old)
	}
	for k := range p.probes {
		if !keep[k] {
			p.metrics.Forget(k[0], k[1])
		}
	}
	p.current, p.probes = next, keep
	p.logger.Info("load started", "probes", len(pairs))
	return nil
}

func (p *Pool) retire(g *inProcess) {
	g.stop()
	p.draining.Add(1)
	go func() {
		defer p.draining.Done()
		<-g.done
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
