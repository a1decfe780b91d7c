package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedPrometheusConfigsCheck runs `promtool check config` of each
// shipped Prometheus configuration with the promtool of every version it is
// for, rule files included:
//   - deploy/prometheus/prometheus.yml: Prometheus 2.x and 3.x (its header
//     says so; it leaves out the 3.x-only always_scrape_classic_histograms);
//   - deploy/compose/prometheus.yml: Prometheus 3.x (the compose file runs
//     prom/prometheus v3), checked with its rule files where the compose
//     file mounts them (/etc/prometheus/, here a temp dir).
func TestShippedPrometheusConfigsCheck(t *testing.T) {
	versions := prometheusVersions(t)
	promtool := map[string]string{}
	for _, v := range versions {
		promtool[v.name] = v.promtool
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(repo, "deploy/prometheus")

	// The compose container's /etc/prometheus/, laid out as
	// deploy/compose/docker-compose.yml mounts it.
	etc := t.TempDir()
	compose, err := os.ReadFile(filepath.Join(repo, "deploy/compose/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(compose), "/etc/prometheus/rules.yml") {
		t.Fatal("deploy/compose/prometheus.yml no longer loads /etc/prometheus/rules.yml: update this test")
	}
	writeFile(t, etc, "prometheus.yml", strings.ReplaceAll(string(compose), "/etc/prometheus/", etc+"/"))
	for _, f := range []string{"rules.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join(rules, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, etc, f, string(b))
	}

	for _, c := range []struct {
		file, dir string
		versions  []string
	}{
		{"deploy/prometheus/prometheus.yml", rules, []string{"2", "3"}},
		{"deploy/compose/prometheus.yml", etc, []string{"3"}},
	} {
		for _, v := range c.versions {
			cmd := exec.Command(promtool[v], "check", "config", "prometheus.yml")
			cmd.Dir = c.dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("promtool %s.x check config %s: %v\n%s", v, c.file, err, out)
				continue
			}
			for _, f := range []string{"rules.yml", "alerts.yml"} {
				if !strings.Contains(string(out), f) {
					t.Errorf("promtool %s.x check config %s did not check %s:\n%s", v, c.file, f, out)
				}
			}
		}
	}
}
