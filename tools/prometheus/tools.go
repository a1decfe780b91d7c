//go:build tools

// Package tools pins Prometheus (and its promtool) as a dependency of this
// module, so that build.sh can `go build` them at exactly that version.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
