// Command accuracy measures how faithfully llmprobe measures an endpoint
// whose truth is known: the reference endpoint (llmprobe simulate) stamps
// every event with its emit time and every stream with its own TTFT, and the
// daemon exports its measurement minus that truth. For a ladder of request
// rates, in-process and with worker processes, it reports bias, lag, the
// client's own queueing, its CPU and memory cost, and whether it kept the
// rate — the median of several runs each. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/netstamp"
)

type options struct {
	rates      []float64
	modes      []int
	duration   time.Duration
	warmup     time.Duration
	repeat     int
	serverCPUs string
	clientCPUs string
	out        string
	binary     string

	ttft, itl  time.Duration
	outTokens  int
	inTokens   int
	arrival    string
	biasLimit  time.Duration
	rateTol    float64
	rssStreams int
	rssITL     time.Duration
	rssTokens  int
	rssSettle  time.Duration
	pause      time.Duration
	api        string
	// timestamps are the event-time sources compared: each (mode, rate,
	// repeat) runs once per source, back to back, with the same seed.
	timestamps []string
	// naive adds, per (rate, repeat), one run of the naive client
	// (naive.go) right after llmprobe's, for CPU per 1,000 tokens side by
	// side.
	naive bool
}

func apiList() string {
	var names []string
	for _, a := range config.APIs {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("accuracy", flag.ContinueOnError)
	rates := fs.String("rates", "100,300,500,700,900", "Comma-separated open-loop request rates (req/s) to climb.")
	modes := fs.String("modes", "0,2", "Comma-separated llmprobe --workers values: 0 sends from the daemon's process, N>0 from N worker processes.")
	fs.DurationVar(&o.duration, "duration", 7*time.Second, "Measured window per run.")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "Time after the daemon is ready before the window opens (excluded from every figure).")
	fs.IntVar(&o.repeat, "repeat", 3, "Runs per (mode, rate); every figure is the median over them.")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "CPU list for the reference endpoint (taskset -c), e.g. 0 or 0-7; empty: not pinned.")
	fs.StringVar(&o.clientCPUs, "client-cpus", "", "CPU list for llmprobe and its workers (taskset -c), e.g. 1 or 8-15; empty: not pinned.")
	fs.StringVar(&o.out, "out", "bench/out/accuracy.json", "JSON output (every run's raw figures); the markdown tables go beside it (.md) and to stdout.")
	fs.StringVar(&o.binary, "binary", "", "A prebuilt llmprobe binary; default: go build ./cmd/llmprobe into a temporary directory.")
	fs.DurationVar(&o.ttft, "ttft", 50*time.Millisecond, "Reference endpoint: time to first token.")
	fs.DurationVar(&o.itl, "itl", 10*time.Millisecond, "Reference endpoint: interval between tokens.")
	fs.IntVar(&o.outTokens, "output-tokens", 64, "Output tokens per request (max_tokens; the endpoint emits exactly this many).")
	fs.IntVar(&o.inTokens, "input-tokens", 16, "Input tokens per synthetic prompt.")
	fs.StringVar(&o.arrival, "arrival", "poisson", "Arrival process: poisson or constant.")
	fs.StringVar(&o.api, "api", "openai-chat", "Wire API llmprobe speaks to the reference endpoint: "+apiList()+".")
	fs.DurationVar(&o.biasLimit, "bias-limit", time.Millisecond, "A rate is clean when TTFT-bias p99 is under this ...")
	fs.Float64Var(&o.rateTol, "rate-tolerance", 0.01, "... and achieved/requested is within this (plus 2σ of the Poisson count), with no drop and no error.")
	fs.IntVar(&o.rssStreams, "rss-streams", 2000, "Closed-loop streams held open to measure RSS per in-flight stream (0: skip).")
	fs.DurationVar(&o.rssITL, "rss-itl", 200*time.Millisecond, "Token interval of the slow endpoint used for the RSS run (keeps streams open).")
	fs.IntVar(&o.rssTokens, "rss-tokens", 256, "Output tokens per stream in the RSS run.")
	fs.DurationVar(&o.rssSettle, "rss-settle", 5*time.Second, "Time after the RSS run's daemon is ready before RSS is read.")
	stamps := fs.String("timestamps", "kernel,user", "Comma-separated event-time sources (the target's timestamps: kernel, user or auto); each (mode, rate, repeat) runs once per source, back to back, same seed.")
	fs.DurationVar(&o.pause, "pause", 500*time.Millisecond, "Pause between runs (the endpoint ends the previous run's streams).")
	fs.BoolVar(&o.naive, "naive", true, "Per rate and repeat, after llmprobe's runs, run the naive Go client (bench/README.md) against the same endpoint with the same seed, for CPU per 1,000 tokens side by side.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.rates, err = parseList(*rates, func(s string) (float64, error) {
		v, err := strconv.ParseFloat(s, 64)
		if err == nil && (v <= 0 || math.IsInf(v, 0) || math.IsNaN(v)) {
			err = fmt.Errorf("rate %q must be > 0", s)
		}
		return v, err
	}); err != nil {
		return nil, fmt.Errorf("-rates: %w", err)
	}
	if o.modes, err = parseList(*modes, func(s string) (int, error) {
		v, err := strconv.Atoi(s)
		if err == nil && v < 0 {
			err = fmt.Errorf("mode %q must be >= 0", s)
		}
		return v, err
	}); err != nil {
		return nil, fmt.Errorf("-modes: %w", err)
	}
	if o.timestamps, err = parseList(*stamps, func(s string) (string, error) {
		if _, err := netstamp.ParseMode(s); err != nil || s == "" {
			return "", fmt.Errorf("source %q must be kernel, user or auto", s)
		}
		return s, nil
	}); err != nil {
		return nil, fmt.Errorf("-timestamps: %w", err)
	}
	for i, s := range o.timestamps {
		if slices.Contains(o.timestamps[:i], s) {
			return nil, fmt.Errorf("-timestamps: %q twice", s)
		}
	}
	switch {
	case o.repeat < 1:
		return nil, fmt.Errorf("-repeat must be >= 1")
	case o.duration <= 0 || o.warmup < 0:
		return nil, fmt.Errorf("-duration must be > 0 and -warmup >= 0")
	case o.arrival != "poisson" && o.arrival != "constant":
		return nil, fmt.Errorf("-arrival must be poisson or constant")
	case !slices.Contains(config.APIs, config.API(o.api)):
		return nil, fmt.Errorf("-api must be one of %s", apiList())
	case o.outTokens < 2 || o.inTokens < 1:
		return nil, fmt.Errorf("-output-tokens must be >= 2 and -input-tokens >= 1")
	}
	return o, nil
}

func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func main() {
	// The naive client is this binary too: the benchmark re-executes itself
	// with it, so that it is started and measured as the daemon is.
	if len(os.Args) > 1 && os.Args[1] == naiveCommand {
		os.Exit(naiveMain(os.Args[2:]))
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	killAll() // on every path: no endpoint or daemon outlives the benchmark
	if err != nil {
		fmt.Fprintln(os.Stderr, "accuracy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	for _, cpus := range []string{o.serverCPUs, o.clientCPUs} {
		if cpus != "" {
			if _, err := exec.LookPath("taskset"); err != nil {
				return fmt.Errorf("CPU sets need taskset (util-linux): %w", err)
			}
		}
	}
	dir, err := os.MkdirTemp("", "llmprobe-accuracy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.binary
	if bin == "" {
		bin = filepath.Join(dir, "llmprobe")
		fmt.Fprintln(os.Stderr, "building llmprobe ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/llmprobe")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if build.Dir, err = moduleRoot(); err != nil {
			return err
		}
		if err := build.Run(); err != nil {
			return fmt.Errorf("building llmprobe: %w", err)
		}
	}

	self := ""
	if o.naive {
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("the naive client re-executes this binary: %w", err)
		}
	}

	report := &Report{Started: time.Now().UTC(), Machine: describeMachine(), Options: optionsJSON(o)}
	perRate := len(o.modes) * len(o.timestamps)
	if o.naive {
		perRate++
	}
	runs := len(o.rates) * o.repeat * perRate
	perRun := o.warmup + o.duration + o.pause + time.Second
	fmt.Fprintf(os.Stderr, "%d runs of ~%s each, ~%s in all (plus the RSS runs)\n", runs, perRun.Round(time.Second), (time.Duration(runs) * perRun).Round(time.Second))

	b := &bench{o: o, bin: bin, dir: dir, self: self}
	sim, simAddr, err := b.startEndpoint(ctx, "endpoint", o.ttft, o.itl)
	if err != nil {
		return err
	}
	defer sim.stop(2 * time.Second)

	// Per rate and repeat, every client back to back against the same
	// endpoint with the same seed: llmprobe in each mode with each source,
	// then the naive client, so that their CPU per 1,000 tokens is compared
	// on runs moments apart.
	n := 0
	for _, rate := range o.rates {
		for rep := 0; rep < o.repeat; rep++ {
			for _, mode := range o.modes {
				// The sources back to back, same seed: the same Poisson
				// schedule against the same endpoint, moments apart.
				for _, src := range o.timestamps {
					n++
					r, err := b.openLoopRun(ctx, sim, simAddr, mode, rate, rep, src)
					if err != nil {
						return fmt.Errorf("workers=%d rate=%g timestamps=%s run %d: %w", mode, rate, src, rep+1, err)
					}
					fmt.Fprintf(os.Stderr, "[%d/%d] workers=%d rate=%g timestamps=%s: achieved %.1f/s, TTFT bias p99 %s, emit lag p99 %s, %.1f ms CPU/1k tokens, saturated=%v\n",
						n, runs, mode, rate, src, float64(r.AchievedRate), ms(r.TTFTBias.P99), ms(r.EmitLag.P99), float64(r.CPUPer1kTokensMs), r.Saturated)
					report.Runs = append(report.Runs, r)
					if err := sleep(ctx, o.pause); err != nil {
						return err
					}
				}
			}
			if !o.naive {
				continue
			}
			n++
			r, err := b.naiveRun(ctx, sim, simAddr, rate, rep)
			if err != nil {
				return fmt.Errorf("naive client rate=%g run %d: %w", rate, rep+1, err)
			}
			fmt.Fprintf(os.Stderr, "[%d/%d] naive client rate=%g: achieved %.1f/s (endpoint), %.1f ms CPU/1k tokens, %.2f cores, errors %s\n",
				n, runs, rate, float64(r.AchievedRate), float64(r.CPUPer1kTokensMs), float64(r.ClientCores), f1(r.ClientErrors))
			report.Naive = append(report.Naive, r)
			if err := sleep(ctx, o.pause); err != nil {
				return err
			}
		}
	}
	sim.stop(2 * time.Second)

	if o.rssStreams > 0 {
		slow, slowAddr, err := b.startEndpoint(ctx, "slow-endpoint", o.ttft, o.rssITL)
		if err != nil {
			return err
		}
		for _, mode := range o.modes {
			r, err := b.rssRun(ctx, slowAddr, mode)
			if err != nil {
				slow.stop(2 * time.Second)
				return fmt.Errorf("RSS run, workers=%d: %w", mode, err)
			}
			fmt.Fprintf(os.Stderr, "RSS workers=%d: %.1f KiB per in-flight stream (%d streams)\n", mode, float64(r.PerStreamKiB), r.Streams)
			report.RSS = append(report.RSS, r)
		}
		slow.stop(2 * time.Second)
	}

	report.Finished = time.Now().UTC()
	report.Machine.LoadAvgEnd = loadAvg()
	report.Summarize(o)
	md := report.Markdown(o)
	fmt.Print(md)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		js, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(js, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(strings.TrimSuffix(o.out, filepath.Ext(o.out))+".md", []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", o.out)
	}
	return nil
}

// moduleRoot is the directory of the go.mod the benchmark runs in.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the llmprobe module (or pass -binary)")
	}
	return filepath.Dir(mod), nil
}

type bench struct {
	o   *options
	bin string
	dir string
	// self is this binary, re-executed as the naive client.
	self string
}

// startEndpoint serves the reference endpoint on loopback with a batch large
// enough never to queue: the endpoint must not be the bottleneck.
func (b *bench) startEndpoint(ctx context.Context, name string, ttft, itl time.Duration) (*proc, string, error) {
	addr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	p, err := start(b.dir, name, b.o.serverCPUs, b.bin, "simulate", "--listen-address="+addr,
		"--ttft="+ttft.String(), "--itl="+itl.String(), "--model=bench", "--max-concurrency=1000000", "--log.level=warn")
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/health", 15*time.Second); err != nil {
		p.stop(time.Second)
		return nil, "", err
	}
	return p, addr, nil
}

// startDaemon runs llmprobe with config yml and waits until it is ready.
func (b *bench) startDaemon(ctx context.Context, name, yml string, workers int) (*proc, string, error) {
	cfg := filepath.Join(b.dir, name+".yml")
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		return nil, "", err
	}
	addr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	p, err := start(b.dir, name, b.o.clientCPUs, b.bin, "--config.file="+cfg, "--web.listen-address="+addr,
		"--workers="+strconv.Itoa(workers), "--shutdown.drain-timeout=1s", "--log.level=warn")
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(ctx, p, "http://"+addr+"/-/ready", 15*time.Second); err != nil {
		p.stop(time.Second)
		return nil, "", err
	}
	return p, addr, nil
}

// openLoopConfig is the daemon's config for one run. The in-flight cap is
// three times what Little's law predicts, so a drop means the client (not
// the cap) fell behind; the seed varies per repeat so that repeats are
// independent draws of the Poisson schedule, and not per timestamp source,
// so that the sources are compared on the same draw.
func (b *bench) openLoopConfig(simAddr string, rate float64, seed int, timestamps string) string {
	streamSeconds := (b.o.ttft + time.Duration(b.o.outTokens-1)*b.o.itl).Seconds()
	maxInFlight := int(math.Ceil(rate*streamSeconds*3)) + 100
	return fmt.Sprintf(`global:
  seed: %d
targets:
  - name: sim
    url: http://%s
    api: %s
    model: bench
    timestamps: %s
scenarios:
  - name: accuracy
    timeout: 60s
    load: {mode: open, arrival: %s, rate: %g, max_in_flight: %d}
    workload: {input_tokens: {value: %d}, output_tokens: {value: %d}}
probes:
  - targets: [sim]
    scenarios: [accuracy]
`, seed, simAddr, b.o.api, timestamps, b.o.arrival, rate, maxInFlight, b.o.inTokens, b.o.outTokens)
}

// window is what both ends looked like at one edge of the measured window.
type window struct {
	daemon, endpoint *Snapshot
	client, server   groupUsage
}

func (b *bench) edge(ctx context.Context, daemonAddr string, daemon, sim *proc, simAddr string) (window, error) {
	var w window
	var err error
	if w.daemon, err = scrape(ctx, "http://"+daemonAddr+"/metrics"); err != nil {
		return w, err
	}
	if w.endpoint, err = scrape(ctx, "http://"+simAddr+"/metrics"); err != nil {
		return w, err
	}
	if w.client, err = readGroup(daemon.pid()); err != nil {
		return w, err
	}
	if w.server, err = readGroup(sim.pid()); err != nil {
		return w, err
	}
	return w, nil
}

func (b *bench) openLoopRun(ctx context.Context, sim *proc, simAddr string, workers int, rate float64, rep int, timestamps string) (RunResult, error) {
	name := fmt.Sprintf("daemon-w%d-r%g-%d-%s", workers, rate, rep, timestamps)
	d, addr, err := b.startDaemon(ctx, name, b.openLoopConfig(simAddr, rate, rep+1, timestamps), workers)
	if err != nil {
		return RunResult{}, err
	}
	defer d.stop(2 * time.Second)
	if err := sleep(ctx, b.o.warmup); err != nil {
		return RunResult{}, err
	}
	a, err := b.edge(ctx, addr, d, sim, simAddr)
	if err != nil {
		return RunResult{}, err
	}
	if err := sleep(ctx, b.o.duration); err != nil {
		return RunResult{}, err
	}
	z, err := b.edge(ctx, addr, d, sim, simAddr)
	if err != nil {
		return RunResult{}, err
	}
	if d.exited() {
		return RunResult{}, fmt.Errorf("daemon exited during the run:\n%s", d.logTail())
	}
	return measure(a, z, workers, rate, rep, timestamps, b.o)
}

// naiveEdge is what the naive client's run looked like at one edge of its
// window: the client serves nothing, so its side is /proc alone.
type naiveEdge struct {
	endpoint       *Snapshot
	client, server groupUsage
}

// naiveRun runs the naive client (naive.go) as a daemon run is run: this
// binary re-executed through start (own process group, -client-cpus), the
// same seed, rate, arrival process, token counts, warm-up and window,
// against the same endpoint. It serves no metrics, so its tokens and
// requests in the window come from the endpoint (see measureNaive) and its
// CPU and RSS from its group in /proc. Stopped with SIGTERM, it prints its
// own counts over the whole run, which are kept beside.
func (b *bench) naiveRun(ctx context.Context, sim *proc, simAddr string, rate float64, rep int) (NaiveResult, error) {
	// A safety bound well past the window: the benchmark stops it first.
	bound := b.o.warmup + b.o.duration + 30*time.Second
	p, err := start(b.dir, fmt.Sprintf("naive-r%g-%d", rate, rep), b.o.clientCPUs, b.self, naiveCommand,
		"-url=http://"+simAddr, "-model=bench", "-rate="+strconv.FormatFloat(rate, 'g', -1, 64), "-seed="+strconv.Itoa(rep+1),
		"-input-tokens="+strconv.Itoa(b.o.inTokens), "-output-tokens="+strconv.Itoa(b.o.outTokens),
		"-arrival="+b.o.arrival, "-duration="+bound.String())
	if err != nil {
		return NaiveResult{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.stop(2 * time.Second)
		}
	}()
	edge := func() (naiveEdge, error) {
		var e naiveEdge
		if p.exited() {
			return e, fmt.Errorf("naive client exited during the run:\n%s", p.logTail())
		}
		var err error
		if e.endpoint, err = scrape(ctx, "http://"+simAddr+"/metrics"); err != nil {
			return e, err
		}
		if e.client, err = readGroup(p.pid()); err != nil {
			return e, err
		}
		if e.server, err = readGroup(sim.pid()); err != nil {
			return e, err
		}
		return e, nil
	}
	if err := sleep(ctx, b.o.warmup); err != nil {
		return NaiveResult{}, err
	}
	a, err := edge()
	if err != nil {
		return NaiveResult{}, err
	}
	if err := sleep(ctx, b.o.duration); err != nil {
		return NaiveResult{}, err
	}
	z, err := edge()
	if err != nil {
		return NaiveResult{}, err
	}
	r, err := measureNaive(a, z, rate, rep, b.o)
	if err != nil {
		return r, err
	}
	stopped = true
	p.stop(2 * time.Second)
	if counts, ok := parseNaiveSummary(p.logTail()); ok {
		r.ClientRequests, r.ClientErrors, r.ClientTokens = Num(counts["requests"]), Num(counts["errors"]), Num(counts["tokens"])
	} else {
		fmt.Fprintf(os.Stderr, "naive client rate=%g run %d: no summary line at exit:\n%s\n", rate, rep+1, p.logTail())
	}
	return r, nil
}

// RSSResult is the memory cost of holding streams open.
type RSSResult struct {
	Workers         int   `json:"workers"`
	Streams         int   `json:"streams"`
	BaselineStreams int   `json:"baseline_streams"`
	InFlight        Num   `json:"in_flight"`
	BaselineInFlt   Num   `json:"baseline_in_flight"`
	RSSBytes        int64 `json:"rss_bytes"`
	BaselineRSS     int64 `json:"baseline_rss_bytes"`
	PerStreamKiB    Num   `json:"rss_per_stream_kib"`
	Processes       int   `json:"processes"`
}

// rssRun holds N closed-loop streams open against a slow endpoint and
// compares the client's RSS with a run holding one stream per worker:
// (RSS at N − RSS at baseline) / (N − baseline) is the memory one more
// in-flight stream costs, without the process' fixed footprint.
func (b *bench) rssRun(ctx context.Context, slowAddr string, workers int) (RSSResult, error) {
	res := RSSResult{Workers: workers, Streams: b.o.rssStreams, BaselineStreams: max(1, workers)}
	if res.Streams <= res.BaselineStreams {
		return res, fmt.Errorf("-rss-streams must exceed the baseline of %d", res.BaselineStreams)
	}
	measureAt := func(streams int) (groupUsage, float64, error) {
		yml := fmt.Sprintf(`targets:
  - name: sim
    url: http://%s
    api: %s
    model: bench
scenarios:
  - name: rss
    timeout: 10m
    load: {mode: closed, concurrency: %d}
    workload: {input_tokens: {value: %d}, output_tokens: {value: %d}}
probes:
  - targets: [sim]
    scenarios: [rss]
`, slowAddr, b.o.api, streams, b.o.inTokens, b.o.rssTokens)
		d, addr, err := b.startDaemon(ctx, fmt.Sprintf("rss-w%d-%d", workers, streams), yml, workers)
		if err != nil {
			return groupUsage{}, 0, err
		}
		defer d.stop(2 * time.Second)
		if err := sleep(ctx, b.o.rssSettle); err != nil {
			return groupUsage{}, 0, err
		}
		s, err := scrape(ctx, "http://"+addr+"/metrics")
		if err != nil {
			return groupUsage{}, 0, err
		}
		u, err := readGroup(d.pid())
		return u, s.Sum["llmprobe_requests_in_flight"], err
	}
	base, baseInFlight, err := measureAt(res.BaselineStreams)
	if err != nil {
		return res, err
	}
	if err := sleep(ctx, b.o.pause); err != nil {
		return res, err
	}
	loaded, inFlight, err := measureAt(res.Streams)
	if err != nil {
		return res, err
	}
	res.InFlight, res.BaselineInFlt = Num(inFlight), Num(baseInFlight)
	res.RSSBytes, res.BaselineRSS, res.Processes = loaded.RSSBytes, base.RSSBytes, loaded.Procs
	if dn := inFlight - baseInFlight; dn > 0 {
		res.PerStreamKiB = Num(float64(loaded.RSSBytes-base.RSSBytes) / dn / 1024)
	} else {
		res.PerStreamKiB = Num(math.NaN())
	}
	return res, nil
}

// Machine describes where the figures were taken.
type Machine struct {
	CPUs         int    `json:"cpus"`
	Model        string `json:"cpu_model"`
	Kernel       string `json:"kernel"`
	GoVersion    string `json:"go_version"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
