package config

// Pair is one (target, scenario) combination under load. The load engine
// plans one load per pair and refers to pairs by their index in Pairs
// (record.Record.Probe).
type Pair struct {
	Target   *Target
	Scenario *Scenario
}

// Pairs lists every probed (target, scenario) pair in a stable order: probes
// in file order; within a probe, its targets in order, each with its
// scenarios in order. Validation guarantees no pair appears twice. The
// pointers point into c.
func (c *Config) Pairs() []Pair {
	targets := make(map[string]*Target, len(c.Targets))
	for i := range c.Targets {
		targets[c.Targets[i].Name] = &c.Targets[i]
	}
	scenarios := make(map[string]*Scenario, len(c.Scenarios))
	for i := range c.Scenarios {
		scenarios[c.Scenarios[i].Name] = &c.Scenarios[i]
	}
	var pairs []Pair
	for _, p := range c.Probes {
		for _, tn := range p.Targets {
			for _, sn := range p.Scenarios {
				t, s := targets[tn], scenarios[sn]
				if t == nil || s == nil {
					continue // only in an unvalidated config
				}
				pairs = append(pairs, Pair{Target: t, Scenario: s})
			}
		}
	}
	return pairs
}
