package worker

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"
)

// The test binary doubles as the worker process: the supervisor under test
// re-executes it with this variable set, as the daemon re-executes itself
// with its hidden worker subcommand.
const beWorker = "LLMPROBE_TEST_BE_WORKER"

// starveWorker makes such a worker a starved client: one core, and busy
// goroutines competing with its senders and readers for it.
const starveWorker = "LLMPROBE_TEST_STARVE_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(beWorker) == "1" {
		if os.Getenv(starveWorker) == "1" {
			runtime.GOMAXPROCS(1)
			for i := 0; i < 4; i++ {
				go func() {
					for x := uint64(0); ; x++ {
						if x == 1<<63 {
							fmt.Fprint(io.Discard, x) // keeps the loop from being optimised away
						}
					}
				}()
			}
		}
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
