package simulator

import (
	"math"
	"math/rand/v2"
	"time"
)

// sampler turns a configured mean and jitter into random durations. Its
// parameters are derived once so that a draw is a few float operations.
type sampler struct {
	dist   JitterDistribution
	mean   float64 // ns
	stddev float64 // ns
	// lognormal: parameters of the underlying normal.
	mu, sigma float64
}

func newSampler(mean time.Duration, j Jitter) sampler {
	s := sampler{dist: j.Distribution, mean: float64(mean), stddev: float64(j.Stddev)}
	if s.dist == "" || s.stddev == 0 || s.mean == 0 {
		s.dist = JitterNone
	}
	if s.dist == JitterLognormal {
		// Chosen so that the lognormal's own mean and stddev are the
		// configured ones.
		s.sigma = math.Sqrt(math.Log1p(s.stddev * s.stddev / (s.mean * s.mean)))
		s.mu = math.Log(s.mean) - s.sigma*s.sigma/2
	}
	return s
}

func (s *sampler) draw(r *rand.Rand) time.Duration {
	var v float64
	switch s.dist {
	case JitterUniform:
		// Half-width √3·σ gives standard deviation σ.
		v = s.mean + (2*r.Float64()-1)*math.Sqrt(3)*s.stddev
	case JitterNormal:
		v = s.mean + r.NormFloat64()*s.stddev
	case JitterLognormal:
		v = math.Exp(s.mu + r.NormFloat64()*s.sigma)
	default:
		return time.Duration(s.mean)
	}
	if v < 0 {
		v = 0
	}
	return time.Duration(v)
}

// latencyModel is the configured engine's timing, shared by all requests.
type latencyModel struct {
	seed      uint64
	ttft      sampler
	itl       sampler
	prefill   float64 // ns per input token
	slowdown  float64
	capacity  float64
	perEvent  int
	reasoning int
	faults    Faults
}

func newLatencyModel(cfg *Config) *latencyModel {
	return &latencyModel{
		seed:      uint64(cfg.Seed),
		ttft:      newSampler(time.Duration(cfg.TTFT), cfg.TTFTJitter),
		itl:       newSampler(time.Duration(cfg.ITL), cfg.ITLJitter),
		prefill:   prefillNs(cfg),
		slowdown:  cfg.BatchSlowdown,
		capacity:  float64(cfg.MaxConcurrency),
		perEvent:  cfg.TokensPerEvent,
		reasoning: cfg.ReasoningTokens,
		faults:    cfg.Faults,
	}
}

func prefillNs(cfg *Config) float64 {
	if cfg.PrefillTokensPerSecond > 0 {
		return 1e9 / cfg.PrefillTokensPerSecond
	}
	return float64(cfg.PrefillPerToken)
}

// rng returns the random source of request number seq: the same seed and
// sequence number always give the same draws, whatever else runs
// concurrently.
func (m *latencyModel) rng(seq uint64) *rand.Rand {
	return rand.New(rand.NewPCG(m.seed, seq))
}

// pickFault draws the request's fault from the configured probabilities.
// It is always drawn (one Float64) so that later draws do not depend on
// whether faults are configured.
func (m *latencyModel) pickFault(r *rand.Rand) faultKind {
	return m.faults.pick(r.Float64())
}

// firstTokenDelay is admission → first token: base + prefill + jitter.
func (m *latencyModel) firstTokenDelay(r *rand.Rand, inputTokens int) time.Duration {
	return m.ttft.draw(r) + time.Duration(float64(inputTokens)*m.prefill)
}

// eventGap is the time to generate the next k tokens while running
// sequences share the engine.
func (m *latencyModel) eventGap(r *rand.Rand, k int, running int64) time.Duration {
	var d time.Duration
	for range k {
		d += m.itl.draw(r)
	}
	if m.slowdown > 0 {
		d = time.Duration(float64(d) * (1 + m.slowdown*float64(running)/m.capacity))
	}
	return d
}
