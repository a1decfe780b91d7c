package config

// Probe is one target × scenario under load: the unit that every metric,
// record and lifecycle refers to. The load engine plans one load per probe
// and records name probes by the ID the pool gives them.
type Probe struct {
	Target   *Target
	Scenario *Scenario
}

// Probes lists every probe in a stable order: matrices in file order; within
// one, its targets in order, each with its scenarios in order. Validation
// guarantees no probe appears twice. The pointers point into c.
func (c *Config) Probes() []Probe {
	targets := make(map[string]*Target, len(c.Targets))
	for i := range c.Targets {
		targets[c.Targets[i].Name] = &c.Targets[i]
	}
	scenarios := make(map[string]*Scenario, len(c.Scenarios))
	for i := range c.Scenarios {
		scenarios[c.Scenarios[i].Name] = &c.Scenarios[i]
	}
	var probes []Probe
	for _, m := range c.Matrices {
		for _, tn := range m.Targets {
			for _, sn := range m.Scenarios {
				t, s := targets[tn], scenarios[sn]
				if t == nil || s == nil {
					continue // only in an unvalidated config
				}
				probes = append(probes, Probe{Target: t, Scenario: s})
			}
		}
	}
	return probes
}
