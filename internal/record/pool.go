package record

import "sync"

// Records are pooled: one is taken per request and given back once it has
// been aggregated or encoded, so the steady state allocates none (their Gaps
// and EmitLags keep their capacity).
var pool = sync.Pool{New: func() any { return new(Record) }}

// Get returns a cleared record.
func Get() *Record {
	r := pool.Get().(*Record)
	gaps, lags := r.Gaps[:0], r.EmitLags[:0]
	*r = Record{}
	r.Gaps, r.EmitLags = gaps, lags
	return r
}

// Put gives r back; the caller must not use it afterwards.
func Put(r *Record) { pool.Put(r) }
