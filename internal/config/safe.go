package config

import (
	"bytes"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/config"
)

// SafeConfig holds the running configuration; ReloadApply swaps it only
// when the new one loads, validates and starts.
type SafeConfig struct {
	mu sync.RWMutex
	c  *Config

	reloadSuccess prometheus.Gauge
	reloadSeconds prometheus.Gauge
}

// NewSafeConfig returns an empty SafeConfig whose reload metrics are
// registered on reg (nil: not registered).
func NewSafeConfig(reg prometheus.Registerer) *SafeConfig {
	f := promauto.With(reg)
	return &SafeConfig{
		reloadSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "llmprobe_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful.",
		}),
		reloadSeconds: f.NewGauge(prometheus.GaugeOpts{
			Name: "llmprobe_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
}

// Get returns the running configuration (nil before the first successful
// load). Callers must not modify it.
func (sc *SafeConfig) Get() *Config {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.c
}

func (sc *SafeConfig) set(c *Config) {
	sc.mu.Lock()
	sc.c = c
	sc.mu.Unlock()
	sc.succeeded()
}

func (sc *SafeConfig) succeeded() {
	sc.reloadSuccess.Set(1)
	sc.reloadSeconds.SetToCurrentTime()
}

// ReloadApply loads a configuration and, unless it is the running one, hands
// it to apply (which starts its load; nil: nothing to start) and then makes
// it the running configuration. One equal to the running configuration (the
// same bytes, or the same settings once decoded, from the same directory,
// with every file it names unchanged) is not applied: the running load goes
// on untouched, the reload counts as successful, and applied is false. On
// any error the running configuration stays, the success gauge drops to 0,
// and the error is returned and logged, one line per problem.
func (sc *SafeConfig) ReloadApply(load func() (*Config, error), apply func(*Config) error, logger *slog.Logger) (applied bool, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fail := func(err error) (bool, error) {
		sc.reloadSuccess.Set(0)
		for _, line := range errorLines(err) {
			logger.Error("Error loading config", "err", line)
		}
		return false, err
	}
	c, err := load()
	if err != nil {
		return fail(err)
	}
	sc.mu.RLock()
	running := sc.c
	sc.mu.RUnlock()
	// Each configuration stamped the files it names when it was loaded.
	if running != nil && sameFiles(running.stamps, c.stamps) && sameSettings(running, c) {
		sc.succeeded()
		logger.Info("configuration unchanged; the running load goes on untouched", "probes", len(running.Probes()))
		return false, nil
	}
	if apply != nil {
		if err := apply(c); err != nil {
			return fail(err)
		}
	}
	sc.set(c)
	logger.Info("Loaded config", "probes", len(c.Probes()))
	return true, nil
}

// errorLines is every problem err reports, one per element (ErrorList), and
// any that still spans lines cut into them: a log line never carries a
// literal "\n".
func errorLines(err error) []string {
	var lines []string
	for _, e := range ErrorList(err) {
		lines = append(lines, strings.Split(e.Error(), "\n")...)
	}
	return lines
}

// sameSettings reports whether b configures exactly what a does: the same
// source bytes from the same directory, or, where the bytes differ (a
// comment, the order of keys, quoting), the same decoded settings. a may be
// running: it is only compared through a fresh decoding of its source, never
// read itself (the load engine caches state in parts of it).
func sameSettings(a, b *Config) bool {
	if a.baseDir != b.baseDir || a.source == nil || b.source == nil {
		return false
	}
	if bytes.Equal(a.source, b.source) {
		return true
	}
	fresh, err := LoadBytes(a.source, a.baseDir)
	if err != nil {
		return false
	}
	x, y := *fresh, *b
	x.source, y.source = nil, nil
	x.stamps, y.stamps = nil, nil // compared by ReloadApply, as they were at each load
	return reflect.DeepEqual(x, y)
}

// fileStamp is what a file a configuration names looked like: a rewritten or
// replaced dataset, CA or credentials file makes a reload of unchanged YAML
// apply again.
type fileStamp struct {
	path string
	info os.FileInfo // nil when it could not be read
	err  string
}

// stampFiles stats every file c names: datasets, and the TLS and credentials
// files of its targets' HTTP clients.
func stampFiles(c *Config) []fileStamp {
	var paths []string
	add := func(p ...string) {
		for _, f := range p {
			if f != "" {
				paths = append(paths, f)
			}
		}
	}
	addTLS := func(t *config.TLSConfig) { add(t.CAFile, t.CertFile, t.KeyFile) }
	for i := range c.Targets {
		hc := &c.Targets[i].HTTPClientConfig
		addTLS(&hc.TLSConfig)
		add(hc.BearerTokenFile)
		if hc.BasicAuth != nil {
			add(hc.BasicAuth.UsernameFile, hc.BasicAuth.PasswordFile)
		}
		if hc.Authorization != nil {
			add(hc.Authorization.CredentialsFile)
		}
		if hc.OAuth2 != nil {
			add(hc.OAuth2.ClientSecretFile, hc.OAuth2.ClientCertificateKeyFile)
			addTLS(&hc.OAuth2.TLSConfig)
		}
		if hc.HTTPHeaders != nil {
			for _, name := range sortedKeys(hc.HTTPHeaders.Headers) {
				add(hc.HTTPHeaders.Headers[name].Files...)
			}
		}
	}
	for i := range c.Scenarios {
		if d := c.Scenarios[i].Workload.Dataset; d != nil {
			add(d.Path)
		}
	}
	stamps := make([]fileStamp, len(paths))
	for i, p := range paths {
		stamps[i].path = p
		if fi, err := os.Stat(p); err != nil {
			stamps[i].err = err.Error()
		} else {
			stamps[i].info = fi
		}
	}
	return stamps
}

func sameFiles(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.path != y.path || x.err != y.err || (x.info == nil) != (y.info == nil) {
			return false
		}
		if x.info != nil && (!os.SameFile(x.info, y.info) || x.info.Size() != y.info.Size() ||
			!x.info.ModTime().Equal(y.info.ModTime()) || x.info.Mode() != y.info.Mode()) {
			return false
		}
	}
	return true
}
