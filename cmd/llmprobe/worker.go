package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"

	"github.com/llmprobe/llmprobe/worker"
)

// workerCommand is the hidden subcommand the daemon re-executes itself with
// for each worker process: assignment on stdin, frames on fd 3.
func workerCommand(app *kingpin.Application, _ *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("worker", "Run one worker process (started by the daemon).").Hidden()
	return cmd, func(logger *slog.Logger) error {
		// Ctrl-C reaches the whole process group: the daemon decides when a
		// worker stops, by closing its input.
		signal.Ignore(os.Interrupt)
		frames := os.NewFile(3, "frames")
		if frames == nil {
			return errors.New("worker: fd 3 (the frame pipe) is not open; this command is started by the daemon")
		}
		return worker.Serve(os.Stdin, frames, logger)
	}
}
