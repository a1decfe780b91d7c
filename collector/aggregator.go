package collector

import (
	"sync"

	"github.com/llmprobe/llmprobe/record"
)

// Queue hands records from request goroutines to the aggregation goroutine.
// Put never blocks and never drops: the queue grows instead, and its length
// is exported (llmprobe_record_backlog) so a slow aggregator is visible rather
// than feeding back into timing.
type Queue struct {
	mu      sync.Mutex
	pending []*record.Record
	spare   []*record.Record
	ready   chan struct{}
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{ready: make(chan struct{}, 1)}
}

// Put enqueues r and wakes the consumer.
func (q *Queue) Put(r *record.Record) {
	q.mu.Lock()
	q.pending = append(q.pending, r)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Len is the number of records waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Ready is signalled after a Put.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Drain swaps out everything queued; the returned slice is valid until the
// next Drain.
func (q *Queue) Drain() []*record.Record {
	q.mu.Lock()
	batch := q.pending
	q.pending = q.spare[:0]
	q.mu.Unlock()
	q.spare = batch
	return batch
}
