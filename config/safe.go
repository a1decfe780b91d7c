package config

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// SafeConfig holds the running configuration; Reload swaps it only when the
// new file loads and validates.
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

// Set installs c (for instance Default's) as the running configuration and
// counts it as a successful load.
func (sc *SafeConfig) Set(c *Config) {
	sc.mu.Lock()
	sc.c = c
	sc.mu.Unlock()
	sc.reloadSuccess.Set(1)
	sc.reloadSeconds.SetToCurrentTime()
}

// Reload loads the file at path. On success it becomes the running
// configuration; on failure the running one stays, the success gauge drops to
// 0 and the error is returned (and logged).
func (sc *SafeConfig) Reload(path string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return sc.ReloadFunc(func() (*Config, error) { return nil, errors.New("no config file to reload") }, logger)
	}
	return sc.ReloadFunc(func() (*Config, error) { return LoadFile(path) }, logger.With("file", path))
}

// ReloadFunc is Reload with any loader, e.g. one returning Default(url) for a
// daemon started without a config file.
func (sc *SafeConfig) ReloadFunc(load func() (*Config, error), logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, err := load()
	if err != nil {
		sc.reloadSuccess.Set(0)
		logger.Error("Error loading config", "err", err)
		return err
	}
	sc.Set(c)
	logger.Info("Loaded config", "pairs", len(c.Pairs()))
	return nil
}
