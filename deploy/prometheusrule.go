package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v2"
)

// PrometheusRule renders kubernetes/prometheusrule.yaml: the groups of
// prometheus/rules.yml and alerts.yml, as they are, in one Prometheus
// Operator PrometheusRule, so the two never drift (TestGeneratedFiles).
func PrometheusRule(promDir string) ([]byte, error) {
	var groups []any
	for _, f := range []string{"rules.yml", "alerts.yml"} {
		b, err := os.ReadFile(filepath.Join(promDir, f))
		if err != nil {
			return nil, err
		}
		var doc struct {
			Groups []yaml.MapSlice `yaml:"groups"`
		}
		if err := yaml.UnmarshalStrict(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, g := range doc.Groups {
			groups = append(groups, g)
		}
	}
	rule := yaml.MapSlice{
		{Key: "apiVersion", Value: "monitoring.coreos.com/v1"},
		{Key: "kind", Value: "PrometheusRule"},
		{Key: "metadata", Value: yaml.MapSlice{
			{Key: "name", Value: "llmprobe"},
			{Key: "labels", Value: yaml.MapSlice{{Key: "app.kubernetes.io/name", Value: "llmprobe"}}},
		}},
		{Key: "spec", Value: yaml.MapSlice{{Key: "groups", Value: groups}}},
	}
	b, err := yaml.Marshal(rule)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("# Generated from deploy/prometheus/rules.yml and alerts.yml: edit those, then\n" +
		"#   go test ./deploy/ -run TestGeneratedFiles -update\n" +
		"# For the Prometheus Operator: kubectl apply -f prometheusrule.yaml. The\n" +
		"# Prometheus resource's ruleSelector must match its labels.\n")
	out.Write(b)
	return out.Bytes(), nil
}
