// Package prober measures one request: it sends it through the target's
// HTTP client (auth, TLS and proxy from prometheus/common), reads the
// answer with a timestamp per read — the kernel's receive stamp where the
// connection gives one (internal/netstamp) — and turns it into a Result:
// TTFB, TTFT, the gaps between text events, usage and an outcome.
//
// The client, its timing and its outcomes are written once; each wire
// protocol (OpenAI chat, completions and responses, Anthropic messages) is
// one api_*.go file behind the wireAPI interface. README.md says how each
// quantity is read off the wire.
package prober
