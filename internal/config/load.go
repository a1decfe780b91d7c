package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

// Defaults applied while decoding. Fields that depend on other fields of the
// same scenario (arrival, max_in_flight, burstiness, lengths) are filled in by
// Scenario.UnmarshalYAML once the whole scenario is known.
var (
	DefaultGlobalConfig = GlobalConfig{
		Seed:                  1,
		LateDispatchThreshold: model.Duration(5 * time.Millisecond),
	}
	DefaultTarget = Target{
		API:              APIOpenAIChat,
		HTTPClientConfig: config.DefaultHTTPClientConfig,
	}
	DefaultScenario = Scenario{
		Timeout: model.Duration(60 * time.Second),
	}
	DefaultOpenLoopMaxInFlight = 1000
	DefaultBurstiness          = 1.0
	DefaultInputTokens         = Length{Distribution: DistFixed, Value: 128}
	DefaultOutputTokens        = Length{Distribution: DistFixed, Value: 64}
	DefaultDatasetFormat       = DatasetShareGPT
)

// MaxFileBytes bounds the configuration file, checked before it is parsed:
// a configuration is a few KiB; 4 MiB leaves room for large bodies
// (MaxBodyBytes each) on a few targets.
const MaxFileBytes = 4 << 20

// LoadFile reads, decodes and validates the file at path. (It is not named
// Load: that is the load-shape type.) Relative paths inside it
// (dataset files, credentials and TLS files) are resolved against the file's
// directory, made absolute so that workers started elsewhere find them.
//
// An error is an Errors: one problem per element, each led by
// `config file "path": ` and the field path (ErrorList gives them).
func LoadFile(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, Errors{err}
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, Errors{fmt.Errorf("config file %q: %w", path, err)}
	}
	c, err := LoadBytes(data, dir)
	if err != nil {
		return nil, prefixed(fmt.Sprintf("config file %q", path), err)
	}
	return c, nil
}

// readFile reads path, refusing one over MaxFileBytes before reading it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	tooLarge := fmt.Errorf("config file %q: %w", path, fileTooLarge())
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileBytes {
		return nil, tooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, tooLarge
	}
	return data, nil
}

func fileTooLarge() error {
	return fieldErrorf("", "the file is larger than %d bytes (4 MiB), the most a configuration may be", MaxFileBytes)
}

// LoadBytes decodes data strictly (an unknown field is an error), applies
// defaults, resolves relative file paths against baseDir and validates.
// Every problem found is reported: the error is an Errors of *FieldError,
// each led by the path of the field at fault (see README.md, "Errors"),
// none quoting a secret.
func LoadBytes(data []byte, baseDir string) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, Errors{fileTooLarge()}
	}
	secrets := newScrubber()
	c, err := decode(data, secrets)
	if err != nil {
		return nil, secrets.errors(err)
	}
	if err := c.finish(baseDir); err != nil {
		return nil, secrets.errors(err)
	}
	c.source, c.baseDir = data, baseDir
	c.stamps = stampFiles(c)
	return c, nil
}

//go:embed default.yml
var defaultYAML []byte

// Default is the built-in configuration used when the daemon starts without
// --config.file: the embedded default.yml, whose one target points at
// referenceURL (the reference endpoint).
func Default(referenceURL string) (*Config, error) {
	// Substituted in the text, not the decoded struct, so that Source gives
	// worker processes the configuration actually running.
	data := bytes.Replace(defaultYAML, []byte(defaultURLPlaceholder), []byte(referenceURL), 1)
	c, err := LoadBytes(data, "")
	if err != nil {
		return nil, prefixed("default config", err)
	}
	return c, nil
}

// defaultURLPlaceholder is the target URL written in default.yml.
const defaultURLPlaceholder = "http://127.0.0.1:0"

// decode checks data against the schema (field paths for unknown fields,
// wrong types, bad durations and URLs; secrets collected into secrets),
// then decodes it. Positionless errors of the decode (those the schema
// check did not already report) are named after the section they come from.
func decode(data []byte, secrets *scrubber) (*Config, error) {
	schema, err := checkSchema(data, secrets)
	if err != nil {
		return nil, Errors{&FieldError{Problem: err.Error()}}
	}
	// Preset here too: an empty document never reaches Config.UnmarshalYAML.
	c := &Config{Global: DefaultGlobalConfig}
	err = yaml.UnmarshalStrict(data, c)
	var errs Errors
	for _, p := range schema.problems {
		errs = append(errs, p)
	}
	for _, e := range ErrorList(err) {
		var te *yaml.TypeError
		var fe *FieldError
		switch {
		case errors.As(e, &te):
			for _, line := range te.Errors {
				// The schema check says the same with a field path.
				if len(schema.problems) > 0 && (strings.Contains(line, " not found in type ") || strings.Contains(line, ": cannot unmarshal ") || (schema.dupes && strings.Contains(line, " already set in "))) {
					continue
				}
				errs = append(errs, &FieldError{Problem: yamlLine(line)})
			}
		case errors.As(e, &fe):
			if !schema.covers(fe.Field) {
				errs = append(errs, fe)
			}
		default:
			errs = append(errs, &FieldError{Problem: e.Error()})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

var (
	yamlFieldTwice = regexp.MustCompile(`^(line \d+): field (\S+) already set in type .*$`)
	yamlKeyTwice   = regexp.MustCompile(`^(line \d+): key (.*) already set in map$`)
	yamlGoType     = regexp.MustCompile(` into \S+$`)
)

// yamlLine rewrites one of yaml's type errors without Go type names.
func yamlLine(line string) string {
	switch {
	case yamlFieldTwice.MatchString(line):
		return yamlFieldTwice.ReplaceAllString(line, "$1: field $2 is set twice")
	case yamlKeyTwice.MatchString(line):
		return yamlKeyTwice.ReplaceAllString(line, "$1: key $2 is set twice")
	}
	return yamlGoType.ReplaceAllString(line, " here")
}

// finish resolves paths, normalizes and validates a decoded config.
func (c *Config) finish(baseDir string) error {
	for i := range c.Targets {
		t := &c.Targets[i]
		t.HTTPClientConfig.SetDirectory(baseDir)
		// The API path is appended to the URL: a trailing slash would double.
		t.URL = strings.TrimRight(t.URL, "/")
	}
	return c.validate(baseDir)
}

// UnmarshalYAML applies the global defaults, and collects decoding errors
// that yaml reports without a position (bad durations, http_client_config
// checks) under the index of the target or scenario they come from.
func (c *Config) UnmarshalYAML(unmarshal func(interface{}) error) error {
	var s struct {
		Global    decodeGlobal     `yaml:"global,omitempty"`
		Targets   []decodeTarget   `yaml:"targets"`
		Scenarios []decodeScenario `yaml:"scenarios"`
		Matrices  []ProbeMatrix    `yaml:"probes"`
	}
	s.Global.g = DefaultGlobalConfig
	err := unmarshal(&s)
	var errs Errors
	if err != nil {
		errs = append(errs, err)
	}
	c.Global = s.Global.g
	if s.Global.err != nil {
		errs = append(errs, fieldErrorf("global", "%v", s.Global.err))
	}
	c.Targets = make([]Target, len(s.Targets))
	for i, t := range s.Targets {
		c.Targets[i] = t.t
		if t.err != nil {
			// Only http_client_config's checks fail here (the schema
			// check reports bad URLs with their own path first).
			var ue *url.Error
			problem := t.err.Error()
			if errors.As(t.err, &ue) {
				problem = urlProblem(ue)
			}
			errs = append(errs, &FieldError{Field: fmt.Sprintf("targets[%d].http_client_config", i), Problem: problem})
		}
	}
	c.Scenarios = make([]Scenario, len(s.Scenarios))
	for i, sc := range s.Scenarios {
		c.Scenarios[i] = sc.s
		if sc.err != nil {
			errs = append(errs, fieldErrorf(fmt.Sprintf("scenarios[%d]", i), "%v", sc.err))
		}
	}
	c.Matrices = s.Matrices
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// decodeGlobal keeps the global section's positionless decoding error (a bad
// duration) instead of aborting the whole decode.
type decodeGlobal struct {
	g   GlobalConfig
	err error
}

func (d *decodeGlobal) UnmarshalYAML(unmarshal func(interface{}) error) error {
	return keepUntyped(d.g.UnmarshalYAML(unmarshal), &d.err)
}

// decodeTarget keeps a target's positionless decoding error instead of
// aborting the whole decode, so that its index can be named.
type decodeTarget struct {
	t   Target
	err error
}

func (d *decodeTarget) UnmarshalYAML(unmarshal func(interface{}) error) error {
	return keepUntyped(d.t.UnmarshalYAML(unmarshal), &d.err)
}

type decodeScenario struct {
	s   Scenario
	err error
}

func (d *decodeScenario) UnmarshalYAML(unmarshal func(interface{}) error) error {
	return keepUntyped(d.s.UnmarshalYAML(unmarshal), &d.err)
}

// keepUntyped passes yaml type errors (which carry line numbers) back to the
// decoder and stores any other error in *kept.
func keepUntyped(err error, kept *error) error {
	var te *yaml.TypeError
	if err == nil || errors.As(err, &te) {
		return err
	}
	*kept = err
	return nil
}

// UnmarshalYAML applies the global defaults to fields left unset.
func (g *GlobalConfig) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*g = DefaultGlobalConfig
	type global GlobalConfig
	return unmarshal((*global)(g))
}

// UnmarshalYAML applies the target defaults: api openai-chat and Prometheus'
// default HTTP client config (follow redirects, HTTP/2 enabled).
func (t *Target) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*t = DefaultTarget
	type target Target
	return unmarshal((*target)(t))
}

// UnmarshalYAML applies the scenario defaults, including those that depend on
// other fields of the scenario (see applyDefaults).
func (s *Scenario) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*s = DefaultScenario
	type scenario Scenario
	if err := unmarshal((*scenario)(s)); err != nil {
		return err
	}
	s.applyDefaults()
	return nil
}

func (s *Scenario) applyDefaults() {
	if s.Stream == nil {
		stream := true
		s.Stream = &stream
	}
	l := &s.Load
	if l.Mode == "" {
		l.Mode = LoadOpen
	}
	if l.Mode == LoadOpen {
		if l.Arrival == "" {
			l.Arrival = ArrivalPoisson
		}
		if l.MaxInFlight == 0 {
			l.MaxInFlight = DefaultOpenLoopMaxInFlight
		}
		if l.Arrival == ArrivalGamma && l.Burstiness == 0 {
			l.Burstiness = DefaultBurstiness
		}
	}
	w := &s.Workload
	if w.Dataset != nil && w.Dataset.Format == "" {
		w.Dataset.Format = DefaultDatasetFormat
	}
	// With a dataset, unset lengths stay unset: prompts and output lengths
	// come from the dataset's rows.
	w.InputTokens.applyDefault(DefaultInputTokens, w.Dataset == nil)
	w.OutputTokens.applyDefault(DefaultOutputTokens, w.Dataset == nil)
}

// applyDefault: a length with only value set is fixed; an entirely unset one
// becomes def when useDefault.
func (l *Length) applyDefault(def Length, useDefault bool) {
	switch {
	case *l == Length{}:
		if useDefault {
			*l = def
		}
	case l.Distribution == "" && l.Value != 0:
		l.Distribution = DistFixed
	}
}
