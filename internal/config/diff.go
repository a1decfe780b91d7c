package config

import "reflect"

// Unchanged lists the probes (target name, scenario name) that next
// configures exactly as running does: the same target and scenario
// settings, the same global settings, from the same directory, with every
// file the configurations name unchanged. A reload keeps those running
// untouched (their connections, warm-up and schedule go on); the others
// restart. running is compared through a fresh decoding of its source, never
// read itself (the load engine caches state in parts of it).
func Unchanged(running, next *Config) map[[2]string]bool {
	out := map[[2]string]bool{}
	if running == nil || running.source == nil || running.baseDir != next.baseDir || !sameFiles(running.stamps, next.stamps) {
		return out
	}
	fresh, err := LoadBytes(running.source, running.baseDir)
	if err != nil || !reflect.DeepEqual(fresh.Global, next.Global) {
		return out
	}
	was := map[[2]string]Probe{}
	for _, p := range fresh.Probes() {
		was[[2]string{p.Target.Name, p.Scenario.Name}] = p
	}
	for _, p := range next.Probes() {
		k := [2]string{p.Target.Name, p.Scenario.Name}
		if old, ok := was[k]; ok && reflect.DeepEqual(*old.Target, *p.Target) && reflect.DeepEqual(*old.Scenario, *p.Scenario) {
			out[k] = true
		}
	}
	return out
}
