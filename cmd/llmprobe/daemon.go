package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/metrics"
	"github.com/llmprobe/llmprobe/internal/status"
	"github.com/llmprobe/llmprobe/internal/worker"
	"github.com/llmprobe/llmprobe/simulator"
)

// statusRefresh is how often the status page reloads itself.
const statusRefresh = 5 * time.Second

// defaultListenAddress: the 9100–9999 exporter range of Prometheus' default
// port allocations is used up, so llmprobe sits just above it.
const defaultListenAddress = ":10212"

type daemonFlags struct {
	configFile      string
	configCheck     bool
	telemetryPath   string
	drain           time.Duration
	workers         int
	replica         string
	enableLifecycle bool
	enablePprof     bool
	web             *web.FlagConfig
	log             *promslog.Config
}

func daemonCommand(app *kingpin.Application, logCfg *promslog.Config) (*kingpin.CmdClause, func(*slog.Logger) error) {
	cmd := app.Command("run", "Probe the configured endpoints and serve metrics (the default command).").Default()
	f := &daemonFlags{log: logCfg}
	cmd.Flag("config.file", "llmprobe configuration file. Without it, llmprobe probes a built-in reference endpoint on loopback.").StringVar(&f.configFile)
	cmd.Flag("config.check", "Check the configuration file as start-up would (load, validate, plan the load; nothing is sent) and exit.").BoolVar(&f.configCheck)
	cmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetryPath)
	cmd.Flag("web.enable-lifecycle", "Enable reload and shutdown over HTTP (POST /-/reload, POST /-/quit). SIGHUP reloads and SIGTERM shuts down either way.").BoolVar(&f.enableLifecycle)
	cmd.Flag("web.enable-pprof", "Serve the daemon's Go profiles under /debug/pprof/ (and link them from the landing page).").BoolVar(&f.enablePprof)
	cmd.Flag("shutdown.drain-timeout", "On shutdown or reload, how long in-flight requests may finish before they are canceled.").Default("30s").DurationVar(&f.drain)
	cmd.Flag("workers", "Worker processes that send the load; 0 sends it from the daemon's own process. Default: 0 on up to 2 usable CPUs (container-aware), where in-process measured cheaper for the same accuracy; one per CPU above.").
		Default(strconv.Itoa(worker.DefaultWorkers())).IntVar(&f.workers)
	cmd.Flag("load.replica", "Mixed with global.seed into every random draw (prompts, arrival gaps), so that replicas of one configuration do not send the same sequence in lock-step. Default: the host name (a pod's name on Kubernetes). Give every instance the same value to reproduce a run exactly.").
		Envar("LLMPROBE_REPLICA").Default(hostname()).StringVar(&f.replica)
	f.web = kingpinflag.AddFlags(cmd, defaultListenAddress)
	return cmd, func(logger *slog.Logger) error { return runDaemon(f, logger) }
}

func runDaemon(f *daemonFlags, logger *slog.Logger) error {
	if f.configCheck {
		// A one-shot command, not the daemon: signals keep their default
		// actions.
		return checkConfig(f, logger)
	}
	// Signals before anything else: until signal.Notify, a SIGHUP (a reload
	// request sent as soon as the process exists) would kill the daemon.
	// One sent during start-up waits here and reloads once the first
	// configuration runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(term)

	logger.Info("starting llmprobe", "version", version.Info(), "build_context", version.BuildContext())
	if f.workers < 0 {
		return fmt.Errorf("--workers=%d: must be 0 (in-process) or more", f.workers)
	}
	if err := web.Validate(*f.web.WebConfigFile); err != nil {
		return fmt.Errorf("--web.config.file=%s: %w", *f.web.WebConfigFile, err)
	}
	// Bind before any load starts: a port clash fails start-up at once,
	// before a single request is sent.
	listeners, err := listen(f.web, logger)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("llmprobe"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	registry := metrics.New(reg)
	win := status.NewWindow()
	opts := worker.Options{Workers: f.workers, Drain: f.drain, Thresholds: worker.DefaultThresholds, Replica: f.replica, Tap: win}
	if f.workers > 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the llmprobe binary to start workers: %w", err)
		}
		opts.Command = []string{exe, "worker", "--log.level=" + f.log.Level.String(), "--log.format=" + f.log.Format.String()}
	}
	pool, err := worker.NewPool(registry, metrics.NewSaturation(reg), opts, logger)
	if err != nil {
		return err
	}
	d := &daemon{flags: f, logger: logger, pool: pool, config: config.NewSafeConfig(reg), quit: make(chan struct{}, 1), status: win}

	// Serving starts now (/-/ready answers 503 until a configuration runs).
	srv := &http.Server{Handler: d.routes(reg), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ServeMultiple(listeners, srv, f.web, logger) }()
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
		endpoint := "http://" + addr
		logger.Info("no --config.file: probing the built-in reference endpoint", "url", endpoint)
		d.load = func() (*config.Config, error) { return config.Default(endpoint) }
	} else {
		d.load = func() (*config.Config, error) { return config.LoadFile(f.configFile) }
	}
	if err := d.reload(); err != nil {
		// The reload has logged each problem on its own line.
		n := len(errorLines(err))
		return &reported{err: err, summary: fmt.Sprintf("the configuration was rejected (%d %s, logged above)", n, plural(n, "problem", "problems"))}
	}

	for {
		select {
		case <-hup:
			d.reload() // logged by the reload; the previous configuration keeps running on error
		case err := <-serveErr:
			pool.Shutdown()
			return err
		case <-term:
			return d.shutdown(srv)
		case <-d.quit:
			logger.Info("shutdown requested over HTTP (POST /-/quit)")
			return d.shutdown(srv)
		}
	}
}

// checkConfig is --config.check: everything start-up does short of sending
// a request. The file loads and validates, and its load is planned exactly
// as start-up plans it (HTTP clients with their TLS files, datasets).
func checkConfig(f *daemonFlags, logger *slog.Logger) error {
	if f.configFile == "" {
		return errors.New("--config.check needs --config.file")
	}
	if f.workers < 0 {
		return fmt.Errorf("--workers=%d: must be 0 (in-process) or more", f.workers)
	}
	cfg, err := config.LoadFile(f.configFile)
	if err == nil {
		if err = worker.Plan(cfg, f.workers, logger); err != nil {
			var prefixed config.Errors
			for _, e := range config.ErrorList(err) {
				prefixed = append(prefixed, fmt.Errorf("config file %q: %w", f.configFile, e))
			}
			err = prefixed
		}
	}
	if err != nil {
		// One problem per line on stderr, as promtool check config does.
		lines := errorLines(err)
		for _, line := range lines {
			fmt.Fprintln(os.Stderr, line)
		}
		fmt.Fprintf(os.Stderr, "%s: configuration is invalid (%d %s)\n", f.configFile, len(lines), plural(len(lines), "problem", "problems"))
		return &reported{err: err}
	}
	fmt.Fprintf(os.Stdout, "%s: configuration is valid\n", f.configFile)
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// listen binds every --web.listen-address (or takes systemd's sockets with
// --web.systemd-socket), as exporter-toolkit's ListenAndServe would, but
// before serving, so that start-up can fail on it before the load starts.
func listen(flags *web.FlagConfig, logger *slog.Logger) ([]net.Listener, error) {
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		all, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("--web.systemd-socket: %w", err)
		}
		var ls []net.Listener
		for _, l := range all {
			if l != nil {
				ls = append(ls, l)
			}
		}
		if len(ls) == 0 {
			return nil, errors.New("--web.systemd-socket: no socket activation file descriptors found")
		}
		logger.Info("Listening on systemd activated listeners instead of port listeners.")
		return ls, nil
	}
	if flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0 {
		return nil, errors.New("no --web.listen-address given")
	}
	var ls []net.Listener
	for _, address := range *flags.WebListenAddresses {
		l, err := listenOne(address)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("cannot listen on %s (--web.listen-address): %w", address, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func listenOne(address string) (net.Listener, error) {
	if !strings.HasPrefix(address, "vsock://") {
		return net.Listen("tcp", address)
	}
	u, err := url.Parse(address)
	if err != nil {
		return nil, err
	}
	_, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 32)
	if err != nil {
		return nil, err
	}
	return vsock.Listen(uint32(port), nil)
}

type daemon struct {
	flags  *daemonFlags
	logger *slog.Logger
	pool   *worker.Pool
	config *config.SafeConfig
	load   func() (*config.Config, error)
	mu     sync.Mutex    // serializes reloads
	quit   chan struct{} // POST /-/quit
	status *status.Window
	// The reload state the status page shows; guarded by mu.
	lastAttempt, lastSuccess time.Time
	lastOK                   bool
}

// reload loads and validates the configuration and starts its load; on any
// error the running configuration and its load stay. A configuration equal
// to the running one leaves the running load untouched (no worker restarts,
// no new warm-up).
func (d *daemon) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.config.ReloadApply(d.load, d.pool.Apply, d.logger)
	d.lastAttempt, d.lastOK = time.Now(), err == nil
	if err == nil {
		d.lastSuccess = d.lastAttempt
	}
	return err
}

func (d *daemon) reloadState() status.Reload {
	d.mu.Lock()
	defer d.mu.Unlock()
	return status.Reload{Loaded: d.config.Get() != nil, LastSuccessful: d.lastOK, LastSuccess: d.lastSuccess,
		LastAttempt: d.lastAttempt, ConfigFile: d.flags.configFile}
}

// shutdown stops scheduling, drains in-flight requests within the drain
// bound, and stops serving.
func (d *daemon) shutdown(srv *http.Server) error {
	d.logger.Info("shutting down: draining in-flight requests", "bound", d.flags.drain)
	d.pool.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

func (d *daemon) routes(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(d.flags.telemetryPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(d.logger.Handler(), slog.LevelError), EnableOpenMetrics: true,
	}))
	if d.flags.enablePprof {
		// Go profiles of the daemon (the supervisor), behind
		// --web.config.file's auth like everything else.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
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
	// The lifecycle endpoints answer as Prometheus' do: 405 to any method
	// but POST and PUT, 403 without --web.enable-lifecycle.
	lifecycle := func(action func(w http.ResponseWriter)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost && r.Method != http.MethodPut {
				w.Header().Set("Allow", "POST, PUT")
				http.Error(w, "Only POST or PUT requests allowed", http.StatusMethodNotAllowed)
				return
			}
			if !d.flags.enableLifecycle {
				http.Error(w, "Lifecycle API is not enabled.", http.StatusForbidden)
				return
			}
			action(w)
		}
	}
	mux.HandleFunc("/-/reload", lifecycle(func(w http.ResponseWriter) {
		if err := d.reload(); err != nil {
			// The log has the error in full (already redacted); the
			// response says no more than that it failed, as anyone who
			// can reach the port can read it.
			http.Error(w, "reload failed; see the log", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	}))
	mux.HandleFunc("/-/quit", lifecycle(func(w http.ResponseWriter) {
		fmt.Fprintln(w, "Requesting termination... Goodbye!")
		select {
		case d.quit <- struct{}{}:
		default: // already requested
		}
	}))
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
		landing := web.LandingConfig{
			Name:        "llmprobe",
			Description: "Synthetic load and latency measurement for LLM inference endpoints",
			Version:     version.Info(),
			Profiling:   strconv.FormatBool(d.flags.enablePprof),
			Links: []web.LandingLinks{
				{Address: d.flags.telemetryPath, Text: "Metrics"},
				{Address: "/config", Text: "Running configuration", Description: "secrets redacted"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		}
		if _, err := web.NewLandingPage(landing); err != nil {
			d.logger.Error("landing page", "err", err)
		} else {
			// The landing page, extended with the live status.
			mux.Handle("/", status.Handler(landing, d.status, d.reloadState, statusRefresh))
		}
	}
	return mux
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
