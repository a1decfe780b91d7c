package simulator

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"
)

// Config is the simulated engine: its latency model, capacity and faults.
// Zero values of optional fields mean "off" or "use the default" as noted.
type Config struct {
	// Model is the served model name; requests naming another model get
	// 404 (as vLLM answers), requests naming none are served.
	Model string `yaml:"model,omitempty"`
	// Seed drives every random draw (jitter, fault selection). Request n of
	// a server (in arrival order) always draws the same numbers.
	Seed int64 `yaml:"seed,omitempty"`

	// TTFT is the base time from admission (end of queue wait) to the first
	// generated token.
	TTFT       model.Duration `yaml:"ttft,omitempty"`
	TTFTJitter Jitter         `yaml:"ttft_jitter,omitempty"`
	// PrefillPerToken is added to TTFT for each input token. YAML
	// durations stop at milliseconds; for realistic sub-millisecond costs
	// use PrefillTokensPerSecond instead (at most one of the two).
	PrefillPerToken model.Duration `yaml:"prefill_per_token,omitempty"`
	// PrefillTokensPerSecond is the prefill throughput: each input token
	// adds 1/rate seconds to TTFT. 0 means unset.
	PrefillTokensPerSecond float64 `yaml:"prefill_tokens_per_second,omitempty"`
	// ITL is the mean interval between two generated tokens.
	ITL       model.Duration `yaml:"itl,omitempty"`
	ITLJitter Jitter         `yaml:"itl_jitter,omitempty"`

	// MaxConcurrency is the number of sequences decoded at once (the
	// batch). Further requests wait in a FIFO queue; their wait counts in
	// their TTFT.
	MaxConcurrency int `yaml:"max_concurrency,omitempty"`
	// BatchSlowdown stretches every token interval by the factor
	// 1 + batch_slowdown × running/max_concurrency, so decode slows as the
	// batch fills. 0 disables it.
	BatchSlowdown float64 `yaml:"batch_slowdown,omitempty"`
	// TokensPerEvent is how many tokens one SSE event carries (k > 1 looks
	// like speculative decoding). The gap before such an event is the sum
	// of its k token intervals.
	TokensPerEvent int `yaml:"tokens_per_event,omitempty"`
	// DefaultOutputTokens is the output length when a request sets no
	// maximum (max_tokens, max_completion_tokens, max_output_tokens;
	// Anthropic's max_tokens is required).
	DefaultOutputTokens int `yaml:"default_output_tokens,omitempty"`
	// MaxOutputTokens rejects (400) requests asking for more.
	MaxOutputTokens int `yaml:"max_output_tokens,omitempty"`
	// ReasoningTokens: the first N output tokens are reasoning, sent before
	// the content: delta.reasoning_content in chat, a thinking block in
	// Messages, a reasoning item in Responses. Completions ignore it.
	ReasoningTokens int `yaml:"reasoning_tokens,omitempty"`

	Faults Faults `yaml:"faults,omitempty"`
}

// JitterDistribution names the shape of a jitter.
type JitterDistribution string

const (
	JitterNone      JitterDistribution = "none"
	JitterUniform   JitterDistribution = "uniform"
	JitterNormal    JitterDistribution = "normal"
	JitterLognormal JitterDistribution = "lognormal"
)

// Jitter spreads a duration around its configured mean. Stddev is the
// standard deviation of the resulting duration; the mean is kept (normal is
// clamped at zero, which raises the mean slightly when stddev is large).
type Jitter struct {
	Distribution JitterDistribution `yaml:"distribution,omitempty"`
	Stddev       model.Duration     `yaml:"stddev,omitempty"`
}

// Faults holds per-request fault probabilities (each in [0, 1], summing to
// at most 1) and the parameters of the faults. A request header
// X-Llmprobe-Fault: <kind> forces one fault (or "none") for that request.
type Faults struct {
	RateLimit   float64 `yaml:"rate_limit,omitempty"`   // 429 with Retry-After
	ServerError float64 `yaml:"server_error,omitempty"` // 500
	Unavailable float64 `yaml:"unavailable,omitempty"`  // 503
	Reset       float64 `yaml:"reset,omitempty"`        // TCP reset mid-stream
	Stall       float64 `yaml:"stall,omitempty"`        // no bytes for stall_duration mid-stream
	Truncate    float64 `yaml:"truncate,omitempty"`     // clean end without [DONE]
	Malformed   float64 `yaml:"malformed,omitempty"`    // one event that is not valid JSON
	Oversized   float64 `yaml:"oversized,omitempty"`    // one event of oversized_bytes
	Drip        float64 `yaml:"drip,omitempty"`         // response written byte by byte
	StreamError float64 `yaml:"stream_error,omitempty"` // the API's error event mid-stream

	// RetryAfter is sent with 429 (and 503), rounded up to whole seconds.
	RetryAfter model.Duration `yaml:"retry_after,omitempty"`
	// StallDuration is how long a stall keeps the stream silent.
	StallDuration model.Duration `yaml:"stall_duration,omitempty"`
	// AfterEvents: mid-stream faults strike after this many text-bearing
	// events (or after the last one, for shorter outputs).
	AfterEvents int `yaml:"after_events,omitempty"`
	// OversizedBytes is the size of the oversized event's data line.
	OversizedBytes int `yaml:"oversized_bytes,omitempty"`
	// DripInterval is the pause between two bytes of a dripped response.
	DripInterval model.Duration `yaml:"drip_interval,omitempty"`
}

// DefaultConfig is a small fast engine: TTFT 50ms, no prefill cost, ITL
// 10ms without jitter, 256 concurrent sequences, one token per event, 64
// output tokens by default, no faults.
func DefaultConfig() Config {
	return Config{
		Model:               "llmprobe-sim",
		Seed:                1,
		TTFT:                model.Duration(50 * time.Millisecond),
		ITL:                 model.Duration(10 * time.Millisecond),
		TTFTJitter:          Jitter{Distribution: JitterNone},
		ITLJitter:           Jitter{Distribution: JitterNone},
		MaxConcurrency:      256,
		TokensPerEvent:      1,
		DefaultOutputTokens: 64,
		MaxOutputTokens:     1 << 16,
		Faults: Faults{
			RetryAfter:     model.Duration(time.Second),
			StallDuration:  model.Duration(10 * time.Second),
			AfterEvents:    2,
			OversizedBytes: 2 << 20,
			DripInterval:   model.Duration(time.Millisecond),
		},
	}
}

// UnmarshalYAML starts from DefaultConfig so that a file only states what it
// changes.
func (c *Config) UnmarshalYAML(unmarshal func(interface{}) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// LoadConfigFile reads a YAML file strictly (unknown fields are errors),
// applies defaults and validates.
func LoadConfigFile(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(b)
}

// ParseConfig is LoadConfigFile for bytes already read.
func ParseConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("parsing simulator config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports the first inconsistency in c.
func (c *Config) Validate() error {
	switch {
	case c.Model == "":
		return errors.New("model must not be empty")
	case c.TTFT < 0, c.ITL < 0, c.PrefillPerToken < 0:
		return errors.New("ttft, itl and prefill_per_token must not be negative")
	case c.PrefillTokensPerSecond < 0 || math.IsNaN(c.PrefillTokensPerSecond) || math.IsInf(c.PrefillTokensPerSecond, 0):
		return errors.New("prefill_tokens_per_second must be a non-negative number")
	case c.PrefillTokensPerSecond > 0 && c.PrefillPerToken > 0:
		return errors.New("set prefill_per_token or prefill_tokens_per_second, not both")
	case c.MaxConcurrency < 1:
		return errors.New("max_concurrency must be at least 1")
	case c.BatchSlowdown < 0 || math.IsNaN(c.BatchSlowdown):
		return errors.New("batch_slowdown must not be negative")
	case c.TokensPerEvent < 1:
		return errors.New("tokens_per_event must be at least 1")
	case c.DefaultOutputTokens < 1:
		return errors.New("default_output_tokens must be at least 1")
	case c.MaxOutputTokens < c.DefaultOutputTokens:
		return errors.New("max_output_tokens must be at least default_output_tokens")
	case c.ReasoningTokens < 0:
		return errors.New("reasoning_tokens must not be negative")
	}
	if err := c.TTFTJitter.validate(); err != nil {
		return fmt.Errorf("ttft_jitter: %w", err)
	}
	if err := c.ITLJitter.validate(); err != nil {
		return fmt.Errorf("itl_jitter: %w", err)
	}
	return c.Faults.validate()
}

func (j *Jitter) validate() error {
	switch j.Distribution {
	case "", JitterNone, JitterUniform, JitterNormal, JitterLognormal:
	default:
		return fmt.Errorf("unknown distribution %q", j.Distribution)
	}
	if j.Stddev < 0 {
		return errors.New("stddev must not be negative")
	}
	return nil
}

func (f *Faults) validate() error {
	sum := 0.0
	for k := faultKind(1); k < numFaultKinds; k++ {
		p := f.probability(k)
		if p < 0 || p > 1 || math.IsNaN(p) {
			return fmt.Errorf("faults.%s: probability must be in [0, 1]", k)
		}
		sum += p
	}
	switch {
	case sum > 1+1e-9:
		return errors.New("faults: probabilities sum to more than 1")
	case f.RetryAfter < 0, f.StallDuration < 0, f.DripInterval < 0:
		return errors.New("faults: durations must not be negative")
	case f.AfterEvents < 0:
		return errors.New("faults.after_events must not be negative")
	case f.OversizedBytes < 0 || f.OversizedBytes > 256<<20:
		return errors.New("faults.oversized_bytes must be in [0, 256MiB]")
	}
	return nil
}
