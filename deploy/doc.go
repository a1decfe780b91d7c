// Package deploy holds no code: its tests check what users apply (Prometheus rules and alerts, dashboards, manifests) against promtool and the metrics llmprobe really exports.
package deploy
