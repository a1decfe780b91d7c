package prober

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// TraceID is a W3C trace-context trace id.
type TraceID [16]byte

// IsZero reports an id never set (W3C: all zero is invalid).
func (id TraceID) IsZero() bool { return id == TraceID{} }

// String is the id as traceparent and trace back ends write it: 32
// lower-case hex digits.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// newTraceparent draws a fresh trace id and parent (span) id and writes the
// traceparent header value for them (version 00). The ids only need to be
// unique, not unpredictable: math/rand/v2's per-thread generator draws them
// without a lock.
func newTraceparent(sampled bool) (TraceID, string) {
	var id TraceID
	for id.IsZero() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	var span [8]byte
	binary.BigEndian.PutUint64(span[:], rand.Uint64()|1) // never all zero
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], id[:])
	b[35] = '-'
	hex.Encode(b[36:52], span[:])
	flags := "-00"
	if sampled {
		flags = "-01"
	}
	copy(b[52:], flags)
	return id, string(b[:])
}

// withTraceparent is base plus a traceparent: a new header per request
// (base is shared read-only by every request), its values shared with base.
func withTraceparent(base http.Header, tp string) http.Header {
	h := make(http.Header, len(base)+1)
	for k, v := range base {
		h[k] = v
	}
	h["Traceparent"] = []string{tp}
	return h
}
