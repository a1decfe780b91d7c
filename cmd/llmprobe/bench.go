package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"go.yaml.in/yaml/v2"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/report"
	"github.com/llmprobe/llmprobe/internal/worker"
	"github.com/llmprobe/llmprobe/simulator"
)

// oneShotFlags are what bench and sweep share with the daemon: the same
// workers, the same seeds.
type oneShotFlags struct {
	configFile string
	workers    int
	replica    string
	drain      time.Duration
	log        *promslog.Config
}

func addOneShotFlags(cmd *kingpin.CmdClause, f *oneShotFlags) {
	cmd.Flag("config.file", "llmprobe configuration file. Without it, the built-in reference endpoint is started on loopback and probed.").StringVar(&f.configFile)
	cmd.Flag("workers", "Worker processes that send the load, as for the daemon; 0 sends it from this process.").
		Default(strconv.Itoa(worker.DefaultWorkers())).IntVar(&f.workers)
	cmd.Flag("load.replica", "Mixed with global.seed into every random draw, as for the daemon.").
		Envar("LLMPROBE_REPLICA").Default(hostname()).StringVar(&f.replica)
	cmd.Flag("shutdown.drain-timeout", "At the end, how long in-flight requests may finish before they are canceled.").Default("30s").DurationVar(&f.drain)
}

type benchFlags struct {
	oneShotFlags
	duration         time.Duration
	warmup           string
	output           string
	failOnSaturation bool
}

func benchCommand(app *kingpin.Application, logCfg *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("bench", "Run the configured probes for a fixed time, print a report and exit (0 unless a probe had no successful request, or --fail-on-saturation and the client saturated).")
	f := &benchFlags{oneShotFlags: oneShotFlags{log: logCfg}}
	addOneShotFlags(cmd, &f.oneShotFlags)
	cmd.Flag("duration", "How long to measure, after the warm-up.").Default("2m").DurationVar(&f.duration)
	cmd.Flag("warmup", "Warm-up of every scenario, replacing the configured ones (e.g. 0s, 10s). Default: as configured.").StringVar(&f.warmup)
	cmd.Flag("output", "Also write the report to this file: CSV if it ends in .csv, else JSON (schema: internal/report/README.md); - writes JSON to standard output instead of the table.").StringVar(&f.output)
	cmd.Flag("fail-on-saturation", "Exit 1 when the client saturated during the run.").BoolVar(&f.failOnSaturation)
	return cmd, func(logger *slog.Logger) error { return runBenchCommand(f, logger) }
}

func runBenchCommand(f *benchFlags, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, stopRef, err := oneShotConfig(ctx, &f.oneShotFlags, logger)
	if err != nil {
		return err
	}
	defer stopRef()
	if f.warmup != "" {
		w, err := model.ParseDuration(f.warmup)
		if err != nil {
			return fmt.Errorf("--warmup=%s: %w", f.warmup, err)
		}
		if cfg, err = editScenarios(cfg, func(_ string, load yaml.MapSlice) yaml.MapSlice {
			return setKey(load, "warmup", w.String())
		}); err != nil {
			return err
		}
	}
	opts := report.BenchOptions{Workers: f.workers, Replica: f.replica, Drain: f.drain, Duration: f.duration, Command: workerCommandLine(f.log)}
	if isTerminal(os.Stderr) {
		opts.Progress = os.Stderr
	}
	rep, _, err := report.Bench(ctx, cfg, opts, logger)
	if err != nil {
		return err
	}
	if f.output == "-" {
		if err := report.WriteJSON(os.Stdout, rep); err != nil {
			return err
		}
	} else {
		if err := report.WriteTable(os.Stdout, rep); err != nil {
			return err
		}
		if f.output != "" {
			if err := writeOutputFile(f.output, rep, func(w io.Writer) error { return report.WriteCSV(w, rep) }); err != nil {
				return err
			}
		}
	}
	return verdictError(rep, f.failOnSaturation)
}

// verdictError is bench's exit status: a probe that measured nothing, or
// (when asked) a saturated client, fails the run.
func verdictError(rep *report.Report, failOnSaturation bool) error {
	if none := rep.NoSuccess(); len(none) > 0 {
		err := fmt.Errorf("no successful request after the warm-up: %s", strings.Join(none, ", "))
		return &reported{err: err, summary: err.Error()}
	}
	if failOnSaturation && rep.Saturation.Saturated {
		return &reported{err: errors.New(rep.Verdict), summary: "the client saturated (--fail-on-saturation)"}
	}
	return nil
}

// writeOutputFile writes --output: CSV when the path ends in .csv, JSON
// otherwise.
func writeOutputFile(path string, v any, writeCSV func(io.Writer) error) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		err = writeCSV(out)
	} else {
		err = report.WriteJSON(out, v)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--output=%s: %w", path, err)
	}
	return nil
}

// oneShotConfig loads --config.file, or starts the built-in reference
// endpoint and returns the embedded configuration probing it, as the daemon
// does without a file.
func oneShotConfig(ctx context.Context, f *oneShotFlags, logger *slog.Logger) (*config.Config, func(), error) {
	if f.workers < 0 {
		return nil, nil, fmt.Errorf("--workers=%d: must be 0 (in-process) or more", f.workers)
	}
	if f.configFile != "" {
		cfg, err := config.LoadFile(f.configFile)
		return cfg, func() {}, err
	}
	simCfg := simulator.DefaultConfig()
	probe, err := config.Default("http://127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	simCfg.Model = probe.Targets[0].Model
	addr, stopSim, err := simulator.Serve(ctx, "127.0.0.1:0", simCfg, logger.With("component", "reference-endpoint"))
	if err != nil {
		return nil, nil, fmt.Errorf("starting the built-in reference endpoint: %w", err)
	}
	logger.Info("no --config.file: probing the built-in reference endpoint", "url", "http://"+addr)
	cfg, err := config.Default("http://" + addr)
	if err != nil {
		stopSim()
		return nil, nil, err
	}
	return cfg, stopSim, nil
}

func workerCommandLine(logCfg *promslog.Config) []string {
	exe, err := os.Executable()
	if err != nil {
		return nil // NewPool finds it again, and says why it cannot
	}
	cmd := []string{exe, "worker"}
	if logCfg != nil && logCfg.Level != nil && logCfg.Format != nil {
		cmd = append(cmd, "--log.level="+logCfg.Level.String(), "--log.format="+logCfg.Format.String())
	}
	return cmd
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// editScenarios rewrites cfg's YAML, passing each scenario's load mapping
// through edit, and loads the result as the daemon would load the file: the
// worker processes get the edited text (config.Source), so the edit must be
// in the YAML, not the decoded struct.
func editScenarios(cfg *config.Config, edit func(scenario string, load yaml.MapSlice) yaml.MapSlice) (*config.Config, error) {
	data, dir := cfg.Source()
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	for i, item := range doc {
		if item.Key != "scenarios" {
			continue
		}
		list, _ := item.Value.([]any)
		for j, s := range list {
			sc, ok := s.(yaml.MapSlice)
			if !ok {
				continue
			}
			name, _ := getKey(sc, "name").(string)
			load, _ := getKey(sc, "load").(yaml.MapSlice)
			list[j] = setKey(sc, "load", edit(name, load))
		}
		doc[i].Value = list
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return config.LoadBytes(out, dir)
}

func getKey(m yaml.MapSlice, key string) any {
	for _, it := range m {
		if it.Key == key {
			return it.Value
		}
	}
	return nil
}

// setKey sets key in m (appending it when absent) and returns m.
func setKey(m yaml.MapSlice, key string, v any) yaml.MapSlice {
	for i, it := range m {
		if it.Key == key {
			m[i].Value = v
			return m
		}
	}
	return append(m, yaml.MapItem{Key: key, Value: v})
}
