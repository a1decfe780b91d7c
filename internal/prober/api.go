package prober

import (
	"fmt"
	"net/http"

	"github.com/llmprobe/llmprobe/internal/config"
)

// wireAPI is one wire protocol: where a request goes, how its body is
// written, and how the answer is read. Each lives in its own file
// (api_*.go) and registers itself; the client, its timing and its outcomes
// (client.go, do.go, stream.go, reply.go) are written once for all of them.
//
// Adding an API is one new file that registers a wireAPI, plus its name in
// config.APIs.
type wireAPI interface {
	// path is appended to the target's base URL after /v1.
	path() string
	// header adds the protocol's own request headers.
	header(h http.Header)
	// prefix is the request body up to the prompt, encoded once per target.
	prefix(p *prefixArgs) []byte
	// appendPrompt appends the prompt, the token cap (none when <= 0, unless
	// the API requires one) and the body's end.
	appendPrompt(b []byte, prompt string, maxTokens int) []byte
	// parseEvent scans one stream event's data into c. It runs once per
	// streamed token: it must not allocate.
	parseEvent(data []byte, c *Chunk) error
	// parseReply reads a non-streamed reply.
	parseReply(body []byte, r *reply) error
}

// prefixArgs is what a request body's fixed part is made of.
type prefixArgs struct {
	Model string
	// Extras are the target's body fields as `"k":v,` pairs, in key order.
	Extras []byte
	// Body is the target's body fields, to see whether one is set.
	Body            map[string]interface{}
	Stream          bool
	ContinuousUsage bool
}

// reply is what a non-streamed answer tells us, in any API.
type reply struct {
	Error                     bool
	HasUsage                  bool
	InputTokens, OutputTokens int64
	HasServerTTFT             bool
	ServerTTFTNs              int64
	HasServerQueue            bool
	ServerQueueNs             int64
}

// groundTruth is the reference endpoint's stamps in a non-streamed reply, at
// the top level in every API.
type groundTruth struct {
	ServerTTFTNs  *int64 `json:"llmprobe_ttft_ns"`
	ServerQueueNs *int64 `json:"llmprobe_queue_ns"`
}

func (g *groundTruth) into(r *reply) {
	if g.ServerTTFTNs != nil {
		r.HasServerTTFT, r.ServerTTFTNs = true, *g.ServerTTFTNs
	}
	if g.ServerQueueNs != nil {
		r.HasServerQueue, r.ServerQueueNs = true, *g.ServerQueueNs
	}
}

var wireAPIs = map[config.API]wireAPI{}

// register is called by each api_*.go file's init.
func register(name config.API, a wireAPI) {
	if _, dup := wireAPIs[name]; dup {
		panic("prober: api registered twice: " + string(name))
	}
	wireAPIs[name] = a
}

func apiFor(name config.API) (wireAPI, error) {
	if name == "" {
		name = config.APIOpenAIChat
	}
	a, ok := wireAPIs[name]
	if !ok {
		return nil, fmt.Errorf("unknown api %q", name)
	}
	return a, nil
}

// naturalStop reports whether a finish reason (in OpenAI's words; each API
// maps its own onto them) is the model ending on its own, whose EOS token
// servers count in usage but send no text for.
func naturalStop(reason []byte) bool {
	switch string(reason) {
	case "stop", "eos_token", "end_turn":
		return true
	}
	return false
}

// appendModelAndExtras opens a JSON body with the model and the target's
// extra fields, as every API's body starts.
func appendModelAndExtras(b []byte, p *prefixArgs) []byte {
	b = append(b, `{"model":`...)
	b = appendJSONString(b, p.Model)
	b = append(b, ',')
	return append(b, p.Extras...)
}
