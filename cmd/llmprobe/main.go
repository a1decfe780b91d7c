// Command llmprobe keeps steady synthetic load on LLM inference endpoints and
// exports what it measures for Prometheus. main only wires: flags, logger,
// subcommands.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/llmprobe/llmprobe/internal/config"
)

// A subcommand registers its flags and returns what runs it.
type command func(app *kingpin.Application, logCfg *promslog.Config) (*kingpin.CmdClause, func(logger *slog.Logger) error)

func main() {
	app := kingpin.New("llmprobe", "Synthetic load and latency measurement for LLM inference endpoints, for Prometheus.")
	app.Version(version.Print("llmprobe"))
	app.HelpFlag.Short('h')
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)

	runners := map[string]func(*slog.Logger) error{}
	for _, c := range []command{daemonCommand, benchCommand, sweepCommand, simulateCommand, workerCommand} {
		clause, run := c(app, logCfg)
		runners[clause.FullCommand()] = run
	}
	selected := kingpin.MustParse(app.Parse(os.Args[1:]))
	logger := promslog.New(logCfg)
	run, ok := runners[selected]
	if !ok {
		fmt.Fprintln(os.Stderr, "llmprobe: no command selected")
		os.Exit(2)
	}
	if err := run(logger); err != nil {
		var done *reported
		if errors.As(err, &done) {
			if done.summary != "" {
				logger.Error("exiting", "err", done.summary)
			}
		} else {
			for _, line := range errorLines(err) {
				logger.Error("exiting", "err", line)
			}
		}
		os.Exit(1)
	}
}

// reported is an error whose every problem has been logged or printed
// already: main only says why it exits (summary, if any) and exits 1.
type reported struct {
	err     error
	summary string
}

func (r *reported) Error() string { return r.err.Error() }
func (r *reported) Unwrap() error { return r.err }

// errorLines is every problem err reports, one per element: a
// configuration's (config.ErrorList), and any that still spans lines cut into
// them, so that no log line carries a literal "\n".
func errorLines(err error) []string {
	var lines []string
	for _, e := range config.ErrorList(err) {
		lines = append(lines, strings.Split(e.Error(), "\n")...)
	}
	return lines
}
