package main

import (
	"context"
	"log/slog"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/llmprobe/llmprobe/simulator"
)

// durationValue lets a kingpin flag fill a model.Duration. It takes
// Prometheus durations ("50ms", "1m") and, unlike the YAML file, Go's finer
// ones ("250us", "1.5ms") for sub-millisecond knobs.
type durationValue struct{ d *model.Duration }

func (v durationValue) Set(s string) error {
	d, err := model.ParseDuration(s)
	if err != nil {
		td, terr := time.ParseDuration(s)
		if terr != nil || td < 0 {
			return err
		}
		d = model.Duration(td)
	}
	*v.d = d
	return nil
}

func (v durationValue) String() string { return time.Duration(*v.d).String() }

// simulateCommand serves the reference endpoint. Flags override the YAML
// file, which overrides the defaults.
func simulateCommand(app *kingpin.Application, _ *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("simulate", "Serve the reference OpenAI-compatible endpoint (simulated engine with ground-truth timestamps and faults).")
	listen := cmd.Flag("listen-address", "Address to serve on.").Default("127.0.0.1:9801").String()
	configFile := cmd.Flag("config.file", "Simulator YAML config (optional).").String()

	// Overrides, applied only when given on the command line.
	var o simulator.Config
	var set struct{ model, seed, ttft, prefill, itl, itlJitter, maxConc, slowdown, perEvent, outTokens, reasoning bool }
	cmd.Flag("model", "Served model name.").IsSetByUser(&set.model).StringVar(&o.Model)
	cmd.Flag("seed", "Seed of every random draw.").IsSetByUser(&set.seed).Int64Var(&o.Seed)
	cmd.Flag("ttft", "Base time from admission to first token.").IsSetByUser(&set.ttft).SetValue(durationValue{&o.TTFT})
	cmd.Flag("prefill-per-token", "Added to TTFT per input token.").IsSetByUser(&set.prefill).SetValue(durationValue{&o.PrefillPerToken})
	cmd.Flag("itl", "Mean interval between tokens.").IsSetByUser(&set.itl).SetValue(durationValue{&o.ITL})
	cmd.Flag("itl-jitter", "Standard deviation of the token interval (normal distribution).").IsSetByUser(&set.itlJitter).SetValue(durationValue{&o.ITLJitter.Stddev})
	cmd.Flag("max-concurrency", "Sequences decoded at once; more requests queue.").IsSetByUser(&set.maxConc).IntVar(&o.MaxConcurrency)
	cmd.Flag("batch-slowdown", "Token intervals stretch by 1 + this × running/max-concurrency.").IsSetByUser(&set.slowdown).Float64Var(&o.BatchSlowdown)
	cmd.Flag("tokens-per-event", "Tokens per SSE event (speculative decoding).").IsSetByUser(&set.perEvent).IntVar(&o.TokensPerEvent)
	cmd.Flag("default-output-tokens", "Output length when a request sets no max_tokens.").IsSetByUser(&set.outTokens).IntVar(&o.DefaultOutputTokens)
	cmd.Flag("reasoning-tokens", "first N tokens sent as reasoning (reasoning_content in chat, thinking_delta in Messages, reasoning_text in Responses).").IsSetByUser(&set.reasoning).IntVar(&o.ReasoningTokens)

	return cmd, func(logger *slog.Logger) error {
		cfg := simulator.DefaultConfig()
		if *configFile != "" {
			var err error
			if cfg, err = simulator.LoadConfigFile(*configFile); err != nil {
				return err
			}
		}
		if set.model {
			cfg.Model = o.Model
		}
		if set.seed {
			cfg.Seed = o.Seed
		}
		if set.ttft {
			cfg.TTFT = o.TTFT
		}
		if set.prefill {
			cfg.PrefillPerToken, cfg.PrefillTokensPerSecond = o.PrefillPerToken, 0
		}
		if set.itl {
			cfg.ITL = o.ITL
		}
		if set.itlJitter {
			cfg.ITLJitter = simulator.Jitter{Distribution: simulator.JitterNormal, Stddev: o.ITLJitter.Stddev}
		}
		if set.maxConc {
			cfg.MaxConcurrency = o.MaxConcurrency
		}
		if set.slowdown {
			cfg.BatchSlowdown = o.BatchSlowdown
		}
		if set.perEvent {
			cfg.TokensPerEvent = o.TokensPerEvent
		}
		if set.outTokens {
			cfg.DefaultOutputTokens = o.DefaultOutputTokens
		}
		if set.reasoning {
			cfg.ReasoningTokens = o.ReasoningTokens
		}
		if err := cfg.Validate(); err != nil {
			return err
		}

		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer cancel()
		addr, stop, err := simulator.Serve(ctx, *listen, cfg, logger)
		if err != nil {
			return err
		}
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				logger.Warn("simulator listens beyond loopback; it is a test endpoint with no authentication", "address", addr)
			}
		}
		logger.Info("simulator serving", "address", addr, "model", cfg.Model, "ttft", cfg.TTFT, "itl", cfg.ITL,
			"max_concurrency", cfg.MaxConcurrency, "seed", cfg.Seed)
		<-ctx.Done()
		logger.Info("simulator shutting down")
		stop()
		return nil
	}
}
