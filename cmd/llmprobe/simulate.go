package main

import (
	"errors"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"
)

// Placeholder until the reference endpoint lands (issue 2).
func simulateCommand(app *kingpin.Application) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("simulate", "Serve the reference OpenAI-compatible endpoint.")
	return cmd, func(*slog.Logger) error { return errors.New("simulate: not built yet") }
}
