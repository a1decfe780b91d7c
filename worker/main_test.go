package worker

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
)

// The test binary doubles as the worker process: the supervisor under test
// re-executes it with this variable set, as the daemon re-executes itself
// with its hidden worker subcommand.
const beWorker = "LLMPROBE_TEST_BE_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(beWorker) == "1" {
		logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
		if err := Serve(os.Stdin, os.NewFile(3, "frames"), logger); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
