package simulator

import "strings"

// FaultHeader forces one fault kind (or "none") on a request, overriding
// the configured probabilities. Meant for tests.
const FaultHeader = "X-Llmprobe-Fault"

type faultKind uint8

const (
	faultNone faultKind = iota
	faultRateLimit
	faultServerError
	faultUnavailable
	faultReset
	faultStall
	faultTruncate
	faultMalformed
	faultOversized
	faultDrip
	// faultStreamError is last so that adding it left the draws of the
	// other kinds where they were.
	faultStreamError
	numFaultKinds
)

// Names as written in the header, the YAML keys and the faults metric label.
var faultNames = [numFaultKinds]string{
	"none", "rate_limit", "server_error", "unavailable", "reset",
	"stall", "truncate", "malformed", "oversized", "drip", "stream_error",
}

func (k faultKind) String() string {
	if k < numFaultKinds {
		return faultNames[k]
	}
	return "unknown"
}

// parseFaultKind accepts the names above and, for the HTTP faults, their
// status codes.
func parseFaultKind(s string) (faultKind, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "429":
		return faultRateLimit, true
	case "500":
		return faultServerError, true
	case "503":
		return faultUnavailable, true
	}
	for k, name := range faultNames {
		if s == name {
			return faultKind(k), true
		}
	}
	return faultNone, false
}

// midStream reports whether the fault strikes inside the response body
// rather than replacing the response.
func (k faultKind) midStream() bool { return k >= faultReset }

func (f *Faults) probability(k faultKind) float64 {
	switch k {
	case faultRateLimit:
		return f.RateLimit
	case faultServerError:
		return f.ServerError
	case faultUnavailable:
		return f.Unavailable
	case faultReset:
		return f.Reset
	case faultStall:
		return f.Stall
	case faultTruncate:
		return f.Truncate
	case faultMalformed:
		return f.Malformed
	case faultOversized:
		return f.Oversized
	case faultDrip:
		return f.Drip
	case faultStreamError:
		return f.StreamError
	}
	return 0
}

// pick maps a uniform draw u in [0, 1) onto a fault kind by cumulative
// probability, in the fixed order of the kinds.
func (f *Faults) pick(u float64) faultKind {
	acc := 0.0
	for k := faultKind(1); k < numFaultKinds; k++ {
		acc += f.probability(k)
		if u < acc {
			return k
		}
	}
	return faultNone
}
