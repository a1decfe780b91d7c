package main

import (
	"log/slog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
)

func sweepCommand(app *kingpin.Application, logCfg *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("sweep", "Climb a ladder of rates for one scenario and report the knee.")
	return cmd, func(logger *slog.Logger) error { return nil }
}
