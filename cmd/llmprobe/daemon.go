package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/llmprobe/llmprobe/collector"
	"github.com/llmprobe/llmprobe/config"
	"github.com/llmprobe/llmprobe/simulator"
	"github.com/llmprobe/llmprobe/worker"
)

// defaultListenAddress: the 9100–9999 exporter range of Prometheus' default
// port allocations is used up, so llmprobe sits just above it.
const defaultListenAddress = ":10212"

type daemonFlags struct {
	configFile    string
	configCheck   bool
	telemetryPath string
	drain         time.Duration
	workers       int
	web           *web.FlagConfig
	log           *promslog.Config
}

func daemonCommand(app *kingpin.Application, logCfg *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("run", "Probe the configured endpoints and serve metrics (the default command).").Default()
	f := &daemonFlags{log: logCfg}
	cmd.Flag("config.file", "llmprobe configuration file. Without it, llmprobe probes a built-in reference endpoint on loopback.").StringVar(&f.configFile)
	cmd.Flag("config.check", "Validate the configuration file and exit.").BoolVar(&f.configCheck)
	cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetryPath)
	cmd.Flag("shutdown.drain-timeout", "On shutdown or reload, how long in-flight requests may finish before they are canceled.").Default("30s").DurationVar(&f.drain)
	cmd.Flag("workers", "Worker processes that send the load (default: the CPUs this process may use, container-aware); 0 sends it from the daemon's own process.").
		Default(strconv.Itoa(worker.Cores())).IntVar(&f.workers)
	f.web = kingpinflag.AddFlags(cmd, defaultListenAddress)
	return cmd, func(logger *slog.Logger) error { return runDaemon(f, logger) }
}

func runDaemon(f *daemonFlags, logger *slog.Logger) error {
	if f.configCheck {
		if f.configFile == "" {
			return errors.New("--config.check needs --config.file")
		}
		if _, err := config.LoadFile(f.configFile); err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "%s: configuration is valid\n", f.configFile)
		return nil
	}
	logger.Info("starting llmprobe", "version", version.Info(), "build_context", version.BuildContext())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("llmprobe"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if f.workers < 0 {
		return fmt.Errorf("--workers=%d: must be 0 (in-process) or more", f.workers)
	}
	metrics := collector.New(reg)
	opts := worker.Options{Workers: f.workers, Drain: f.drain, Thresholds: worker.DefaultThresholds}
	if f.workers > 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the llmprobe binary to start workers: %w", err)
		}
		opts.Command = []string{exe, "worker", "--log.level=" + f.log.Level.String(), "--log.format=" + f.log.Format.String()}
	}
	pool, err := worker.NewPool(metrics, collector.NewSaturation(reg), opts, logger)
	if err != nil {
		return err
	}
	d := &daemon{flags: f, logger: logger, pool: pool, config: config.NewSafeConfig(reg)}

	if f.configFile == "" {
		simCfg := simulator.DefaultConfig()
		probe, err := config.Default("http://127.0.0.1:0")
		if err != nil {
			return err
		}
		simCfg.Model = probe.Targets[0].Model // serve the model the embedded config asks for
		addr, stopSim, err := simulator.Serve(ctx, "127.0.0.1:0", simCfg, logger.With("component", "reference-endpoint"))
		if err != nil {
			return fmt.Errorf("starting the built-in reference endpoint: %w", err)
		}
		defer stopSim()
		url := "http://" + addr
		logger.Info("no --config.file: probing the built-in reference endpoint", "url", url)
		d.load = func() (*config.Config, error) { return config.Default(url) }
	} else {
		d.load = func() (*config.Config, error) { return config.LoadFile(f.configFile) }
	}
	if err := d.reload(); err != nil {
		return err
	}

	srv := &http.Server{Handler: d.routes(reg), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(srv, f.web, logger) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			d.reload() // logged by the reload; the previous configuration keeps running on error
		case err := <-serveErr:
			pool.Shutdown()
			return err
		case <-ctx.Done():
			logger.Info("shutting down: draining in-flight requests", "bound", f.drain)
			pool.Shutdown()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(shutdownCtx)
		}
	}
}

type daemon struct {
	flags  *daemonFlags
	logger *slog.Logger
	pool   *worker.Pool
	config *config.SafeConfig
	load   func() (*config.Config, error)
	mu     sync.Mutex // serializes reloads
}

// reload loads and validates the configuration and starts its load; on any
// error the running configuration and its load stay.
func (d *daemon) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.config.ReloadFunc(func() (*config.Config, error) {
		cfg, err := d.load()
		if err != nil {
			return nil, err
		}
		return cfg, d.pool.Apply(cfg)
	}, d.logger)
}

func (d *daemon) routes(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(d.flags.telemetryPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(d.logger.Handler(), slog.LevelError), EnableOpenMetrics: true,
	}))
	// Go profiles of the daemon (the supervisor), as the landing page links
	// them; behind --web.config.file's auth like everything else.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if d.config.Get() == nil {
			http.Error(w, "Not ready: no configuration loaded", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		if err := d.reload(); err != nil {
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	mux.HandleFunc("/config", func(w http.ResponseWriter, _ *http.Request) {
		cfg := d.config.Get()
		if cfg == nil {
			http.Error(w, "no configuration loaded", http.StatusServiceUnavailable)
			return
		}
		out, err := cfg.Redacted()
		if err != nil {
			http.Error(w, "cannot render configuration", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(out)
	})
	if d.flags.telemetryPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "llmprobe",
			Description: "Synthetic load and latency measurement for LLM inference endpoints",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: d.flags.telemetryPath, Text: "Metrics"},
				{Address: "/config", Text: "Running configuration", Description: "secrets redacted"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		})
		if err != nil {
			d.logger.Error("landing page", "err", err)
		} else {
			mux.Handle("/", landing)
		}
	}
	return mux
}
