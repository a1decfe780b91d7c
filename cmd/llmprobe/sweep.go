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
)

type sweepFlags struct {
	oneShotFlags
	scenario     string
	rates        string
	from, to     float64
	steps        int
	stepDuration time.Duration
	warmup       string
	goodput      float64
	plot         string
	output       string
}

func sweepCommand(app *kingpin.Application, logCfg *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("sweep", "Climb a ladder of rates (concurrencies for a closed-loop scenario) for one scenario, report each step and the knee: the highest rate at which every SLO objective holds with the client not saturated.")
	f := &sweepFlags{oneShotFlags: oneShotFlags{log: logCfg}}
	addOneShotFlags(cmd, &f.oneShotFlags)
	cmd.Flag("scenario", "The scenario to sweep, against every target it probes. Default: the first probe's.").StringVar(&f.scenario)
	cmd.Flag("rates", "The ladder, comma-separated (e.g. 1,2,4,8); concurrencies for a closed-loop scenario. Or --from/--to/--steps.").StringVar(&f.rates)
	cmd.Flag("from", "The ladder's first value (with --to and --steps).").Float64Var(&f.from)
	cmd.Flag("to", "The ladder's last value.").Float64Var(&f.to)
	cmd.Flag("steps", "How many values from --from to --to, evenly spaced.").Default("5").IntVar(&f.steps)
	cmd.Flag("step-duration", "How long each step measures, after its warm-up.").Default("30s").DurationVar(&f.stepDuration)
	cmd.Flag("warmup", "Warm-up of each step, replacing the scenario's. Default: as configured.").StringVar(&f.warmup)
	cmd.Flag("goodput", "Share of requests that must meet every threshold of every SLO objective for a step to hold.").Default("0.99").Float64Var(&f.goodput)
	cmd.Flag("plot", "Also draw TTFT p99 and goodput against the ladder into this file (.svg or .png).").StringVar(&f.plot)
	cmd.Flag("output", "Also write the sweep to this file: CSV if it ends in .csv, else JSON; - writes JSON to standard output instead of the tables.").StringVar(&f.output)
	return cmd, func(logger *slog.Logger) error { return runSweepCommand(f, logger) }
}

// ladder is the values a sweep climbs, in order.
func ladder(rates string, from, to float64, steps int) ([]float64, error) {
	if rates != "" {
		var out []float64
		for _, s := range strings.Split(rates, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("--rates: %q is not a positive number", s)
			}
			if len(out) > 0 && v <= out[len(out)-1] {
				return nil, fmt.Errorf("--rates: %v after %v: the ladder must climb", v, out[len(out)-1])
			}
			out = append(out, v)
		}
		return out, nil
	}
	if from <= 0 || to <= from || steps < 2 {
		return nil, errors.New("give --rates, or --from > 0, --to > --from and --steps ≥ 2")
	}
	out := make([]float64, steps)
	for i := range out {
		out[i] = from + (to-from)*float64(i)/float64(steps-1)
	}
	return out, nil
}

func runSweepCommand(f *sweepFlags, logger *slog.Logger) error {
	values, err := ladder(f.rates, f.from, f.to, f.steps)
	if err != nil {
		return err
	}
	if f.goodput <= 0 || f.goodput > 1 {
		return fmt.Errorf("--goodput=%v: must be in (0, 1]", f.goodput)
	}
	if f.plot != "" {
		if ext := strings.ToLower(filepath.Ext(f.plot)); ext != ".svg" && ext != ".png" {
			return fmt.Errorf("--plot=%s: write .svg or .png", f.plot)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	base, stopRef, err := oneShotConfig(ctx, &f.oneShotFlags, logger)
	if err != nil {
		return err
	}
	defer stopRef()
	opts := report.BenchOptions{Workers: f.workers, Replica: f.replica, Drain: f.drain, Duration: f.stepDuration, Command: workerCommandLine(f.log)}
	var warmup *model.Duration
	if f.warmup != "" {
		w, err := model.ParseDuration(f.warmup)
		if err != nil {
			return fmt.Errorf("--warmup=%s: %w", f.warmup, err)
		}
		warmup = &w
	}
	sw, err := sweep(ctx, base, f.scenario, values, warmup, f.goodput, opts, logger, func(st report.Step) {
		if f.output != "-" {
			fmt.Fprintf(os.Stdout, "── step %s ──\n", report.FormatFloat(st.Value))
			report.WriteTable(os.Stdout, st.Report)
		}
	})
	if err != nil {
		return err
	}
	if f.output == "-" {
		err = report.WriteJSON(os.Stdout, sw)
	} else {
		fmt.Fprintln(os.Stdout)
		err = report.WriteChart(os.Stdout, sw)
	}
	if err != nil {
		return err
	}
	if f.output != "" && f.output != "-" {
		if err := writeOutputFile(f.output, sw, func(w io.Writer) error { return report.WriteSweepCSV(w, sw) }); err != nil {
			return err
		}
	}
	if f.plot != "" && len(sw.Steps) > 0 {
		if err := report.WritePlot(f.plot, sw); err != nil {
			return fmt.Errorf("--plot=%s: %w", f.plot, err)
		}
	}
	return nil
}

// sweep runs one bench per value of the ladder on scenario (its rate, or
// its concurrency in closed loop), only the probes of that scenario, and
// stops early once two steps in a row missed the goodput target.
func sweep(ctx context.Context, base *config.Config, scenario string, values []float64, warmup *model.Duration, target float64,
	opts report.BenchOptions, logger *slog.Logger, each func(report.Step)) (*report.Sweep, error) {
	probes := base.Probes()
	if len(probes) == 0 {
		return nil, errors.New("the configuration has no probes")
	}
	if scenario == "" {
		scenario = probes[0].Scenario.Name
	}
	var sc *config.Scenario
	var targets []string
	for _, p := range probes {
		if p.Scenario.Name == scenario {
			sc = p.Scenario
			targets = append(targets, p.Target.Name)
		}
	}
	if sc == nil {
		return nil, fmt.Errorf("--scenario=%s: no probe runs that scenario", scenario)
	}
	closed := sc.Load.Mode == config.LoadClosed
	sw := &report.Sweep{Schema: report.SweepSchema, Scenario: scenario, Unit: "req/s", GoodputTarget: target, Steps: []report.Step{}}
	if closed {
		sw.Unit = "concurrency"
		for _, v := range values {
			if v != float64(int(v)) {
				return nil, fmt.Errorf("scenario %s is closed loop: its ladder is concurrencies, and %v is not a whole number", scenario, v)
			}
		}
	}
	for i, v := range values {
		if ctx.Err() != nil {
			break
		}
		cfg, err := stepConfig(base, scenario, targets, v, closed, warmup)
		if err != nil {
			return nil, fmt.Errorf("step %v: %w", v, err)
		}
		logger.Info("sweep step", "step", i+1, "of", len(values), "value", v, "unit", sw.Unit)
		rep, _, err := report.Bench(ctx, cfg, opts, logger)
		if err != nil {
			return nil, fmt.Errorf("step %v: %w", v, err)
		}
		st := report.NewStep(v, rep, target)
		sw.Steps = append(sw.Steps, st)
		if each != nil {
			each(st)
		}
		if sw.Collapsed() && i < len(values)-1 {
			sw.StoppedEarly = true
			logger.Info("goodput collapsed for two steps: stopping the sweep", "at", v)
			break
		}
	}
	sw.Finish()
	return sw, nil
}

// stepConfig is base with only scenario's probes, its load set to v.
func stepConfig(base *config.Config, scenario string, targets []string, v float64, closed bool, warmup *model.Duration) (*config.Config, error) {
	cfg, err := editScenarios(base, func(name string, load yaml.MapSlice) yaml.MapSlice {
		if name != scenario {
			return load
		}
		if closed {
			load = setKey(load, "concurrency", int(v))
		} else {
			load = setKey(load, "rate", v)
		}
		if warmup != nil {
			load = setKey(load, "warmup", warmup.String())
		}
		return load
	})
	if err != nil {
		return nil, err
	}
	// Only the swept probes: a second document key "probes" replaces the
	// matrix.
	data, dir := cfg.Source()
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	doc = setKey(doc, "probes", []any{yaml.MapSlice{{Key: "targets", Value: targets}, {Key: "scenarios", Value: []string{scenario}}}})
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return config.LoadBytes(out, dir)
}
