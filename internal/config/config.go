// Package config holds llmprobe's YAML schema: what to probe (targets), how to
// load it (scenarios), which scenario runs against which target (probes), with
// defaults applied and everything validated at load time.
package config

import (
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Config is the whole configuration file.
type Config struct {
	Global    GlobalConfig  `yaml:"global,omitempty"`
	Targets   []Target      `yaml:"targets"`
	Scenarios []Scenario    `yaml:"scenarios"`
	Matrices  []ProbeMatrix `yaml:"probes"`

	// source is the YAML this config was loaded from and baseDir the
	// directory its relative paths resolve against: worker processes load
	// the very same bytes.
	source  []byte
	baseDir string
	// stamps are the files it names as they were when it was loaded: a
	// reload restarts what uses a file that changed since.
	stamps []fileStamp
}

// Source returns the YAML the config was loaded from and its base directory.
func (c *Config) Source() (data []byte, baseDir string) { return c.source, c.baseDir }

// GlobalConfig holds settings shared by every probe.
type GlobalConfig struct {
	// Seed makes workloads and arrival processes reproducible. Worker seeds
	// are derived from it.
	Seed int64 `yaml:"seed,omitempty"`
	// LateDispatchThreshold: a send later than this after its intended time
	// counts as a late dispatch (client saturation signal).
	LateDispatchThreshold model.Duration `yaml:"late_dispatch_threshold,omitempty"`
}

// API selects the request and response format spoken to a target.
type API string

const (
	APIOpenAIChat        API = "openai-chat"        // POST {url}/v1/chat/completions
	APIOpenAICompletions API = "openai-completions" // POST {url}/v1/completions
)

// Target is one inference endpoint.
type Target struct {
	Name string `yaml:"name"`
	// URL is the base URL; the API path (/v1/chat/completions or
	// /v1/completions) is appended to it.
	URL   string `yaml:"url"`
	API   API    `yaml:"api,omitempty"`
	Model string `yaml:"model"`
	// HTTPClientConfig is Prometheus' common HTTP client config: auth with
	// credentials_file, TLS, proxy. Secrets in it are redacted when shown.
	HTTPClientConfig config.HTTPClientConfig `yaml:"http_client_config,omitempty"`
	// Headers are extra request headers (never secrets: use
	// http_client_config's authorization for those).
	Headers map[string]string `yaml:"headers,omitempty"`
	// Body holds extra JSON body fields merged into every request, e.g.
	// ignore_eos: true. They may not override the fields llmprobe sets
	// itself (model, messages/prompt, stream, stream_options, max_tokens).
	Body map[string]interface{} `yaml:"body,omitempty"`
	// ContinuousUsageStats asks for usage in every streamed chunk (vLLM's
	// stream_options.continuous_usage_stats), so a chunk carrying several
	// tokens (speculative decoding) spreads its gap over exactly that many.
	// Servers that do not know the option may reject it.
	ContinuousUsageStats bool `yaml:"continuous_usage_stats,omitempty"`
	// HonorRetryAfter: when the target answers 429 or 503 with a
	// Retry-After header, hold back its arrivals for that long (at most
	// MaxRetryAfter, default 5m), counting them as backed off instead of
	// sending them. Off by default: for a self-hosted engine a 503 is what
	// the SLO should see; for a SaaS API a rate limit is to be respected.
	HonorRetryAfter bool           `yaml:"honor_retry_after,omitempty"`
	MaxRetryAfter   model.Duration `yaml:"max_retry_after,omitempty"`
}

// DefaultMaxRetryAfter and MaxMaxRetryAfter bound a target's back-off.
const (
	DefaultMaxRetryAfter = model.Duration(5 * time.Minute)
	MaxMaxRetryAfter     = model.Duration(time.Hour)
)

// RetryAfterCap is the longest back-off one Retry-After may impose.
func (t *Target) RetryAfterCap() time.Duration {
	if t.MaxRetryAfter <= 0 {
		return time.Duration(DefaultMaxRetryAfter)
	}
	return time.Duration(t.MaxRetryAfter)
}

// Scenario is a load shape, a workload, SLOs and a timeout.
type Scenario struct {
	Name string `yaml:"name"`
	// Stream asks for a streamed (SSE) response; default true. TTFT and ITL
	// exist only for streamed requests.
	Stream   *bool          `yaml:"stream,omitempty"`
	Load     Load           `yaml:"load"`
	Workload Workload       `yaml:"workload"`
	SLOs     []SLO          `yaml:"slos,omitempty"`
	Timeout  model.Duration `yaml:"timeout,omitempty"`
}

// Streamed reports whether requests of this scenario ask for a stream.
func (s *Scenario) Streamed() bool { return s.Stream == nil || *s.Stream }

// LoadMode is open loop (arrivals at a rate, independent of responses) or
// closed loop (fixed concurrency: a new request when one finishes).
type LoadMode string

const (
	LoadOpen   LoadMode = "open"
	LoadClosed LoadMode = "closed"
)

// Arrival is the inter-arrival distribution of an open-loop load.
type Arrival string

const (
	ArrivalPoisson  Arrival = "poisson"
	ArrivalConstant Arrival = "constant"
	ArrivalGamma    Arrival = "gamma"
)

// Load is the load shape of a scenario, per target it runs against.
type Load struct {
	Mode    LoadMode `yaml:"mode,omitempty"`
	Arrival Arrival  `yaml:"arrival,omitempty"`
	// Rate in requests per second (open loop).
	Rate float64 `yaml:"rate,omitempty"`
	// Burstiness is the gamma shape parameter: 1 is Poisson, <1 burstier,
	// >1 more regular (arrival: gamma only).
	Burstiness float64 `yaml:"burstiness,omitempty"`
	// Concurrency is the number of requests kept in flight (closed loop).
	Concurrency int `yaml:"concurrency,omitempty"`
	// MaxInFlight caps concurrent requests of an open loop; an arrival that
	// finds the cap full is counted as dropped, never queued.
	MaxInFlight int `yaml:"max_in_flight,omitempty"`
	// Warmup: requests intended before this much time after start are sent
	// but kept out of latency histograms and SLO counters.
	Warmup model.Duration `yaml:"warmup,omitempty"`
}

// Distribution names a length distribution.
type Distribution string

const (
	DistFixed     Distribution = "fixed"
	DistUniform   Distribution = "uniform"
	DistNormal    Distribution = "normal"
	DistLognormal Distribution = "lognormal"
)

// Length is a token-count distribution. fixed uses Value; uniform uses Min and
// Max; normal and lognormal use Mean and Stddev (of the length itself, not of
// its logarithm), clamped to [Min, Max] where those are set.
type Length struct {
	Distribution Distribution `yaml:"distribution,omitempty"`
	Value        int          `yaml:"value,omitempty"`
	Min          int          `yaml:"min,omitempty"`
	Max          int          `yaml:"max,omitempty"`
	Mean         float64      `yaml:"mean,omitempty"`
	Stddev       float64      `yaml:"stddev,omitempty"`
}

// DatasetFormat names the layout of a JSONL prompt file.
type DatasetFormat string

const (
	// DatasetShareGPT: {"conversations":[{"from":"human","value":...},
	// {"from":"gpt","value":...}, ...]}; the first human turn is the prompt
	// and the reply's length (in words) sets max_tokens.
	DatasetShareGPT DatasetFormat = "sharegpt"
	// DatasetRows: {"prompt": "...", "output_tokens": 128}.
	DatasetRows DatasetFormat = "rows"
)

// Dataset is a JSONL prompt file used instead of synthetic prompts.
type Dataset struct {
	Path   string        `yaml:"path"`
	Format DatasetFormat `yaml:"format,omitempty"`
}

// Workload describes the prompts and output lengths a scenario sends.
type Workload struct {
	InputTokens  Length `yaml:"input_tokens,omitempty"`
	OutputTokens Length `yaml:"output_tokens,omitempty"`
	// SharedPrefixTokens starts every synthetic prompt with the same N
	// tokens, to exercise prefix caching.
	SharedPrefixTokens int      `yaml:"shared_prefix_tokens,omitempty"`
	Dataset            *Dataset `yaml:"dataset,omitempty"`
}

// SLO is one objective: a request is good when it succeeds and every threshold
// set here is met. Unset thresholds are not checked.
type SLO struct {
	Name  string         `yaml:"name"`
	TTFT  model.Duration `yaml:"ttft,omitempty"`
	TPOT  model.Duration `yaml:"tpot,omitempty"`
	NTPOT model.Duration `yaml:"ntpot,omitempty"`
	E2E   model.Duration `yaml:"e2e,omitempty"`
}

// ProbeMatrix is one entry of `probes:`: it probes each listed scenario
// against each listed target (one probe per target × scenario).
type ProbeMatrix struct {
	Targets   []string `yaml:"targets"`
	Scenarios []string `yaml:"scenarios"`
}
