package worker

import (
	"fmt"
	"log/slog"
	"os"

	promconfig "github.com/prometheus/common/config"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/load"
)

// Plan builds cfg's load the way start-up and every reload do, split across
// workers (0 counts as 1: the load runs in the daemon's own process), and
// releases it at once: nothing is sent. Whatever would otherwise fail only
// once the load starts, or only inside a worker process (an unreadable CA
// file, a dataset that does not parse), fails here. --config.check and
// Pool.Apply both call it, so that the check passes exactly what start-up
// accepts.
func Plan(cfg *config.Config, workers int, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := checkTLSFiles(cfg); err != nil {
		return err
	}
	runner, err := load.New(cfg, load.Options{Workers: max(1, workers)}, nil, logger)
	if err != nil {
		return err
	}
	runner.Close()
	return nil
}

// checkTLSFiles reads the TLS files of every probed target as its HTTP client
// will, and names the field at fault: the client's own error says which file
// it could not read, not which setting named it.
func checkTLSFiles(cfg *config.Config) error {
	index := make(map[*config.Target]int, len(cfg.Targets))
	for i := range cfg.Targets {
		index[&cfg.Targets[i]] = i
	}
	seen := map[int]bool{}
	var errs []error
	for _, probe := range cfg.Probes() {
		i, ok := index[probe.Target]
		if !ok || seen[i] {
			continue
		}
		seen[i] = true
		t := probe.Target
		hc := &t.HTTPClientConfig
		path := fmt.Sprintf("targets[%d].http_client_config", i)
		errs = append(errs, checkTLS(t.Name, path+".tls_config", &hc.TLSConfig)...)
		if hc.OAuth2 != nil {
			errs = append(errs, checkTLS(t.Name, path+".oauth2.tls_config", &hc.OAuth2.TLSConfig)...)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return config.Errors(errs) // one problem per line (config.ErrorList)
}

func checkTLS(target, path string, tc *promconfig.TLSConfig) []error {
	var errs []error
	for _, f := range []struct{ field, what, file string }{
		{"ca_file", "CA cert", tc.CAFile}, {"cert_file", "client certificate", tc.CertFile}, {"key_file", "client key", tc.KeyFile},
	} {
		if f.file == "" {
			continue
		}
		if _, err := os.ReadFile(f.file); err != nil {
			// Worded as the client words it, then the field and why.
			errs = append(errs, fmt.Errorf("target %q: http client: unable to read %s: %s.%s: %w", target, f.what, path, f.field, err))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	// Readable: now what the client makes of them (a CA file holding no
	// certificate, a key that does not match its certificate).
	if _, err := promconfig.NewTLSConfig(tc); err != nil {
		return []error{fmt.Errorf("target %q: http client: %s: %w", target, path, err)}
	}
	return nil
}
