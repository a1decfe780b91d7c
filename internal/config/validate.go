package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/netstamp"
)

// MaxNameLength bounds target, scenario and SLO names: they become label
// values on every series llmprobe exports.
const MaxNameLength = 64

// MaxTokens bounds every token length (and shared_prefix_tokens), so that a
// typo cannot make workload generation build gigantic prompts; workload caps
// its draws with it too.
const MaxTokens = 1 << 20

// Upper bounds on the load of one scenario against one target, so that a
// typo (rate: 1e300, concurrency: 100000000) cannot spin a core or exhaust
// memory. One llmprobe process sends a few thousand requests per second at
// most (see the README's Accuracy section); the bounds are far above that
// and far below harm.
const (
	MaxRate        = 100000 // requests per second
	MaxConcurrency = 100000 // closed-loop concurrency and open-loop max_in_flight
	MinBurstiness  = 0.01   // gamma shape: coefficient of variation 10
	MaxBurstiness  = 100    // gamma shape: coefficient of variation 0.1
	// MaxBodyBytes bounds a target's body, JSON-encoded: it is sent with
	// every request.
	MaxBodyBytes = 1 << 20
)

var nameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.:-]*$`)

// reservedHeaders are set by llmprobe or the HTTP transport, or change how the
// response is framed (a compressed stream could not be timed chunk by chunk).
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Content-Encoding": true,
	"Transfer-Encoding": true, "Host": true, "Connection": true, "Keep-Alive": true,
	"Te": true, "Upgrade": true, "Accept-Encoding": true,
}

// authHeaders must come from http_client_config, whose secrets are redacted.
var authHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true}

// managedBodyFields are set by llmprobe on every request, in one API or
// another; n is fixed at 1 because timing is defined for one choice.
var managedBodyFields = map[string]bool{
	"model": true, "messages": true, "prompt": true, "input": true, "stream": true, "stream_options": true,
	"max_tokens": true, "max_completion_tokens": true, "max_output_tokens": true, "n": true,
}

// ManagedBodyField reports whether llmprobe sets a request body field
// itself, so that a target's body may not: the one list, for validation and
// for the request encoder.
func ManagedBodyField(key string) bool { return managedBodyFields[key] }

// problems collects validation errors, each led by the field path.
type problems Errors

func (p *problems) add(path, format string, args ...interface{}) {
	*p = append(*p, fieldErrorf(path, format, args...))
}

func (c *Config) validate(baseDir string) error {
	var p problems
	if c.Global.LateDispatchThreshold <= 0 {
		p.add("global.late_dispatch_threshold", "must be > 0, not %s", c.Global.LateDispatchThreshold)
	}

	if len(c.Targets) == 0 {
		p.add("targets", "at least one target is required")
	}
	targets := map[string]int{}
	for i := range c.Targets {
		path := fmt.Sprintf("targets[%d]", i)
		t := &c.Targets[i]
		validateName(&p, path, t.Name, targets, "targets", i)
		validateTarget(&p, path, t)
	}

	if len(c.Scenarios) == 0 {
		p.add("scenarios", "at least one scenario is required")
	}
	scenarios := map[string]int{}
	for i := range c.Scenarios {
		path := fmt.Sprintf("scenarios[%d]", i)
		s := &c.Scenarios[i]
		validateName(&p, path, s.Name, scenarios, "scenarios", i)
		validateScenario(&p, path, s, baseDir)
	}

	if len(c.Matrices) == 0 {
		p.add("probes", "at least one probe is required")
	}
	type probeKey struct{ target, scenario string }
	probed := map[probeKey]int{}
	for i, pr := range c.Matrices {
		path := fmt.Sprintf("probes[%d]", i)
		if len(pr.Targets) == 0 {
			p.add(path+".targets", "at least one target is required")
		}
		for j, name := range pr.Targets {
			if _, ok := targets[name]; !ok {
				p.add(fmt.Sprintf("%s.targets[%d]", path, j), "unknown target %q", name)
			}
		}
		if len(pr.Scenarios) == 0 {
			p.add(path+".scenarios", "at least one scenario is required")
		}
		for j, name := range pr.Scenarios {
			if _, ok := scenarios[name]; !ok {
				p.add(fmt.Sprintf("%s.scenarios[%d]", path, j), "unknown scenario %q", name)
			}
		}
		for _, tn := range pr.Targets {
			for _, sn := range pr.Scenarios {
				k := probeKey{tn, sn}
				if prev, dup := probed[k]; dup {
					p.add(path, "target %q with scenario %q is already probed by probes[%d]", tn, sn, prev)
					continue
				}
				probed[k] = i
			}
		}
	}
	if len(p) == 0 {
		return nil
	}
	return Errors(p)
}

// validateName checks a label-safe, unique name; seen maps names to the
// index that used them first.
func validateName(p *problems, path, name string, seen map[string]int, section string, idx int) {
	switch {
	case name == "":
		p.add(path+".name", "must not be empty")
		return
	case len(name) > MaxNameLength:
		p.add(path+".name", "must be at most %d characters", MaxNameLength)
	case !nameRE.MatchString(name):
		p.add(path+".name", "%q must match %s", name, nameRE)
	}
	if prev, dup := seen[name]; dup {
		p.add(path+".name", "%q is already used by %s[%d]", name, section, prev)
		return
	}
	seen[name] = idx
}

func validateTarget(p *problems, path string, t *Target) {
	validateURL(p, path+".url", t.URL)
	if !slices.Contains(APIs, t.API) {
		p.add(path+".api", "must be one of %s, not %q", apiNames(), t.API)
	}
	switch t.Traceparent {
	case "", TraceSampled, TraceUnsampled, TraceOff:
	default:
		p.add(path+".traceparent", "must be %s, %s or %s, not %q", TraceSampled, TraceUnsampled, TraceOff, t.Traceparent)
	}
	if t.ContinuousUsageStats && t.API != APIOpenAIChat && t.API != APIOpenAICompletions {
		p.add(path+".continuous_usage_stats", "is vLLM's option of the OpenAI chat and completions APIs, not of %s", t.API)
	}
	if _, err := netstamp.ParseMode(t.Timestamps); err != nil {
		p.add(path+".timestamps", "must be auto, kernel or user, not %q", t.Timestamps)
	}
	if t.Model == "" {
		p.add(path+".model", "must not be empty")
	}
	if err := t.HTTPClientConfig.Validate(); err != nil {
		p.add(path+".http_client_config", "%v", err)
	}
	hc := &t.HTTPClientConfig
	validateProxyURL(p, path+".http_client_config.proxy_url", hc.ProxyURL)
	if o := hc.OAuth2; o != nil {
		if o.TokenURL != "" {
			validateTokenURL(p, path+".http_client_config.oauth2.token_url", o.TokenURL)
		}
		validateProxyURL(p, path+".http_client_config.oauth2.proxy_url", o.ProxyURL)
	}
	for _, name := range sortedKeys(t.Headers) {
		hp := path + ".headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !validHeaderName(name):
			p.add(hp, "not a valid HTTP header name")
		case authHeaders[canon]:
			p.add(hp, "must not be set here: use http_client_config.authorization, whose credentials are redacted")
		case reservedHeaders[canon]:
			p.add(hp, "is managed by llmprobe and cannot be set here")
		case secretLooking(name):
			p.add(hp, "looks secret-bearing: set it in http_client_config.http_headers (secrets or files), which are redacted")
		case strings.ContainsAny(t.Headers[name], "\r\n\x00"):
			p.add(hp, "value must not contain CR, LF or NUL")
		}
	}
	for _, key := range sortedKeys(t.Body) {
		bp := path + ".body." + key
		if managedBodyFields[key] {
			p.add(bp, "is managed by llmprobe and cannot be set here")
			continue
		}
		v, err := JSONValue(t.Body[key])
		if err != nil {
			p.add(bp, "%v", err)
			continue
		}
		// yaml decodes nested maps with interface{} keys, which
		// encoding/json rejects: store the JSON-ready form.
		t.Body[key] = v
		if _, err := json.Marshal(v); err != nil {
			p.add(bp, "not representable as JSON: %v", err)
		}
	}
	switch {
	case t.MaxRetryAfter < 0 || t.MaxRetryAfter > MaxMaxRetryAfter:
		p.add(path+".max_retry_after", "%s is out of range: 0 (the default, %s) to %s", t.MaxRetryAfter, DefaultMaxRetryAfter, MaxMaxRetryAfter)
	case t.MaxRetryAfter != 0 && !t.HonorRetryAfter:
		p.add(path+".max_retry_after", "has no effect without honor_retry_after: true")
	}
	if len(t.Body) > 0 {
		if b, err := json.Marshal(t.Body); err == nil && len(b) > MaxBodyBytes {
			p.add(path+".body", "is %d bytes as JSON; at most %d (1 MiB) allowed: it is sent with every request", len(b), MaxBodyBytes)
		}
	}
}

// validateProxyURL checks a proxy_url: http, https, socks5 or socks5h (the
// schemes Go's transport speaks) with a host. It is never quoted.
func validateProxyURL(p *problems, path string, u config.URL) {
	if u.URL == nil || u.String() == "" {
		return
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" && u.Scheme != "socks5h":
		p.add(path, "scheme must be http, https, socks5 or socks5h, not %q", u.Scheme)
	case u.Host == "":
		p.add(path, "must have a host")
	}
}

// validateTokenURL checks an oauth2 token_url: an absolute http or https
// URL. It may hold credentials (they are redacted), and is never quoted.
func validateTokenURL(p *problems, path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		p.add(path, "%s", urlProblem(err))
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(path, "scheme must be http or https, not %q", u.Scheme)
	case u.Host == "":
		p.add(path, "must have a host")
	}
}

func validateURL(p *problems, path, raw string) {
	if raw == "" {
		p.add(path, "must not be empty")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Only the reason: the URL itself could hold credentials.
		p.add(path, "%s", urlProblem(err))
		return
	}
	switch {
	case u.User != nil:
		p.add(path, "must not contain credentials: use http_client_config (basic_auth or authorization)")
	case u.Scheme == "":
		p.add(path, "must be an absolute URL: scheme http or https, a host and an optional port and path")
	case u.Scheme != "http" && u.Scheme != "https":
		p.add(path, "scheme must be http or https, not %q", u.Scheme)
	case u.Host == "":
		p.add(path, "must have a host")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		p.add(path, "must not have a query or fragment: the API path is appended to it")
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// JSONValue converts yaml's map[interface{}]interface{} (at any depth, which
// encoding/json rejects) into map[string]interface{}, in place where it can;
// a key that is not a string is an error. A validated Target.Body holds its
// result already.
func JSONValue(v interface{}) (interface{}, error) {
	switch v := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			conv, err := JSONValue(e)
			if err != nil {
				return nil, err
			}
			m[ks] = conv
		}
		return m, nil
	case map[string]interface{}:
		for k, e := range v {
			conv, err := JSONValue(e)
			if err != nil {
				return nil, err
			}
			v[k] = conv
		}
		return v, nil
	case []interface{}:
		for i, e := range v {
			conv, err := JSONValue(e)
			if err != nil {
				return nil, err
			}
			v[i] = conv
		}
		return v, nil
	}
	return v, nil
}

func validateScenario(p *problems, path string, s *Scenario, baseDir string) {
	if s.Timeout <= 0 {
		p.add(path+".timeout", "must be > 0, not %s", s.Timeout)
	}
	if s.Load.Warmup < 0 {
		p.add(path+".load.warmup", "must be >= 0, not %s", s.Load.Warmup)
	}
	validateLoad(p, path+".load", &s.Load)
	validateWorkload(p, path+".workload", &s.Workload, baseDir)
	validateBuckets(p, path+".buckets", &s.Buckets)

	slos := map[string]int{}
	for i := range s.SLOs {
		sp := fmt.Sprintf("%s.slos[%d]", path, i)
		o := &s.SLOs[i]
		validateName(p, sp, o.Name, slos, path+".slos", i)
		if o.TTFT <= 0 && o.TPOT <= 0 && o.NTPOT <= 0 && o.E2E <= 0 {
			p.add(sp, "at least one of ttft, tpot, ntpot, e2e must be set")
		}
		// TPOT is (e2e - TTFT)/(n - 1): both need the first token's time.
		if !s.Streamed() {
			if o.TTFT > 0 {
				p.add(sp+".ttft", "needs stream: true (no first-token time without streaming)")
			}
			if o.TPOT > 0 {
				p.add(sp+".tpot", "needs stream: true (no first-token time without streaming)")
			}
		}
	}
}

func validateBuckets(p *problems, path string, b *Buckets) {
	for _, d := range []struct {
		name string
		list []model.Duration
	}{{"ttft", b.TTFT}, {"itl", b.ITL}, {"tpot", b.TPOT}, {"ntpot", b.NTPOT}, {"e2e", b.E2E}} {
		bounds := make([]float64, len(d.list))
		for i, v := range d.list {
			bounds[i] = float64(v)
		}
		validateBounds(p, path+"."+d.name, bounds, func(i int) string { return d.list[i].String() })
	}
	bounds := make([]float64, len(b.Tokens))
	for i, v := range b.Tokens {
		bounds[i] = float64(v)
	}
	validateBounds(p, path+".tokens", bounds, func(i int) string { return fmt.Sprint(b.Tokens[i]) })
	for i, v := range b.Tokens {
		if v > MaxTokens {
			p.add(fmt.Sprintf("%s.tokens[%d]", path, i), "must be <= %d, not %d", MaxTokens, v)
		}
	}
}

// validateBounds checks one list of bucket boundaries: bounded in count,
// each positive and above the one before it.
func validateBounds(p *problems, path string, bounds []float64, show func(int) string) {
	if len(bounds) > MaxBuckets {
		p.add(path, "at most %d boundaries, not %d (each is a series per probe)", MaxBuckets, len(bounds))
		return
	}
	for i, v := range bounds {
		ip := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case v <= 0:
			p.add(ip, "must be > 0, not %s", show(i))
		case i > 0 && v <= bounds[i-1]:
			p.add(ip, "must be above the boundary before it (%s), not %s", show(i-1), show(i))
		}
	}
}

func validateLoad(p *problems, path string, l *Load) {
	switch l.Mode {
	case LoadOpen:
		switch {
		case l.Rate == 0:
			p.add(path+".rate", "must be set for open loop: requests per second, > 0 and at most %d", MaxRate)
		case !(l.Rate > 0 && l.Rate <= MaxRate):
			p.add(path+".rate", "must be > 0 and at most %d (requests per second), not %g", MaxRate, l.Rate)
		}
		if l.Concurrency != 0 {
			p.add(path+".concurrency", "must not be set for open loop (use load.rate, or load.mode: closed)")
		}
		switch l.Arrival {
		case ArrivalPoisson, ArrivalConstant:
			if l.Burstiness != 0 {
				p.add(path+".burstiness", "applies to arrival gamma only")
			}
		case ArrivalGamma:
			if !(l.Burstiness >= MinBurstiness && l.Burstiness <= MaxBurstiness) {
				p.add(path+".burstiness", "must be between %g and %g, not %g", MinBurstiness, float64(MaxBurstiness), l.Burstiness)
			}
		default:
			p.add(path+".arrival", "must be %s, %s or %s, not %q", ArrivalPoisson, ArrivalConstant, ArrivalGamma, l.Arrival)
		}
		if l.MaxInFlight < 1 || l.MaxInFlight > MaxConcurrency {
			p.add(path+".max_in_flight", "must be between 1 and %d, not %d", MaxConcurrency, l.MaxInFlight)
		}
	case LoadClosed:
		switch {
		case l.Concurrency == 0:
			p.add(path+".concurrency", "must be set for closed loop: requests in flight, between 1 and %d", MaxConcurrency)
		case l.Concurrency < 1 || l.Concurrency > MaxConcurrency:
			p.add(path+".concurrency", "must be between 1 and %d for closed loop, not %d", MaxConcurrency, l.Concurrency)
		}
		if l.Rate != 0 {
			p.add(path+".rate", "must not be set for closed loop (use load.concurrency, or load.mode: open)")
		}
		if l.Arrival != "" {
			p.add(path+".arrival", "must not be set for closed loop")
		}
		if l.Burstiness != 0 {
			p.add(path+".burstiness", "must not be set for closed loop")
		}
		if l.MaxInFlight != 0 {
			p.add(path+".max_in_flight", "must not be set for closed loop (load.concurrency is the bound)")
		}
	default:
		p.add(path+".mode", "must be %s or %s, not %q", LoadOpen, LoadClosed, l.Mode)
	}
}

func validateWorkload(p *problems, path string, w *Workload, baseDir string) {
	if w.Dataset != nil {
		d := w.Dataset
		dp := path + ".dataset"
		if (w.InputTokens != Length{}) {
			p.add(path+".input_tokens", "must not be set with dataset (prompts come from the dataset)")
		}
		if w.SharedPrefixTokens != 0 {
			p.add(path+".shared_prefix_tokens", "must not be set with dataset (it shapes synthetic prompts)")
		}
		if d.Format != DatasetShareGPT && d.Format != DatasetRows {
			p.add(dp+".format", "must be %s or %s, not %q", DatasetShareGPT, DatasetRows, d.Format)
		}
		if d.Path == "" {
			p.add(dp+".path", "must not be empty")
		} else {
			resolved := config.JoinDir(baseDir, d.Path)
			// Errors quote the path as written, not the resolved one.
			if fi, err := os.Stat(resolved); err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				p.add(dp+".path", "%q: %v", d.Path, err)
			} else if !fi.Mode().IsRegular() {
				p.add(dp+".path", "%q is not a regular file", d.Path)
			}
			d.Path = resolved
		}
	} else {
		validateLength(p, path+".input_tokens", &w.InputTokens)
	}
	if (w.OutputTokens != Length{} || w.Dataset == nil) {
		validateLength(p, path+".output_tokens", &w.OutputTokens)
	}
	if w.SharedPrefixTokens < 0 || w.SharedPrefixTokens > MaxTokens {
		p.add(path+".shared_prefix_tokens", "must be between 0 and %d, not %d", MaxTokens, w.SharedPrefixTokens)
	} else if w.Dataset == nil {
		// The prefix is part of the prompt: it cannot exceed the shortest
		// prompt where that is known.
		in := w.InputTokens
		floor := 0
		switch in.Distribution {
		case DistFixed:
			floor = in.Value
		default:
			floor = in.Min
		}
		if floor >= 1 && w.SharedPrefixTokens > floor {
			p.add(path+".shared_prefix_tokens", "%d exceeds the shortest input (%d tokens)", w.SharedPrefixTokens, floor)
		}
	}
}

func validateLength(p *problems, path string, l *Length) {
	notUsed := func(field string, set bool) {
		if set {
			p.add(path+"."+field, "not used by distribution %s", l.Distribution)
		}
	}
	inRange := func(field string, v int) {
		if v < 1 || v > MaxTokens {
			p.add(path+"."+field, "must be between 1 and %d, not %d", MaxTokens, v)
		}
	}
	switch l.Distribution {
	case DistFixed:
		inRange("value", l.Value)
		notUsed("min", l.Min != 0)
		notUsed("max", l.Max != 0)
		notUsed("mean", l.Mean != 0)
		notUsed("stddev", l.Stddev != 0)
	case DistUniform:
		inRange("min", l.Min)
		inRange("max", l.Max)
		if l.Min > l.Max {
			p.add(path, "min (%d) must be <= max (%d)", l.Min, l.Max)
		}
		notUsed("value", l.Value != 0)
		notUsed("mean", l.Mean != 0)
		notUsed("stddev", l.Stddev != 0)
	case DistNormal, DistLognormal:
		if !(l.Mean >= 1 && l.Mean <= MaxTokens) {
			p.add(path+".mean", "must be between 1 and %d, not %g", MaxTokens, l.Mean)
		}
		if !(l.Stddev >= 0 && l.Stddev <= MaxTokens) {
			p.add(path+".stddev", "must be between 0 and %d, not %g", MaxTokens, l.Stddev)
		}
		// min and max are optional clamps here.
		if l.Min != 0 {
			inRange("min", l.Min)
		}
		if l.Max != 0 {
			inRange("max", l.Max)
		}
		if l.Min != 0 && l.Max != 0 && l.Min > l.Max {
			p.add(path, "min (%d) must be <= max (%d)", l.Min, l.Max)
		}
		notUsed("value", l.Value != 0)
	case "":
		p.add(path+".distribution", "must be set (%s, %s, %s or %s)", DistFixed, DistUniform, DistNormal, DistLognormal)
	default:
		p.add(path+".distribution", "must be %s, %s, %s or %s, not %q", DistFixed, DistUniform, DistNormal, DistLognormal, l.Distribution)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func apiNames() string {
	names := make([]string, len(APIs))
	for i, a := range APIs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
