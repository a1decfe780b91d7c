// Command llmprobe keeps steady synthetic load on LLM inference endpoints and
// exports what it measures for Prometheus. main only wires: flags, logger,
// subcommands.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
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
	for _, c := range []command{daemonCommand, simulateCommand, workerCommand} {
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
		logger.Error("exiting", "err", err)
		os.Exit(1)
	}
}
