package main

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"

	"github.com/llmprobe/llmprobe/internal/worker"
)

// workerCommand is the hidden subcommand the daemon re-executes itself with
// for each worker process: assignment on stdin, frames on fd 3.
func workerCommand(app *kingpin.Application, _ *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("worker", "Run one worker process (started by the daemon).").Hidden()
	return cmd, func(logger *slog.Logger) error {
		// Signals sent to the whole process group (Ctrl-C, a terminal
		// hang-up, timeout(1) or an init sending SIGTERM to the group) are the
		// daemon's to act on: it stops workers by closing their input, after
		// the drain. A worker that died of them would be restarted mid-stop,
		// its in-flight requests lost.
		signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		frames := os.NewFile(3, "frames")
		if frames == nil {
			return errors.New("worker: fd 3 (the frame pipe) is not open; this command is started by the daemon")
		}
		return worker.Serve(os.Stdin, frames, logger)
	}
}
