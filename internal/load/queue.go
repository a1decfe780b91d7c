package load

import (
	"sync"

	"github.com/llmprobe/llmprobe/internal/record"
)

// Queue is the Sink that hands sends and records from request goroutines to
// the one goroutine that passes them on (the worker loop, to a worker's frame
// pipe or to the daemon's metrics), in the order they happened. Sent and Put
// never block and never drop: the queue grows instead, so that a slow
// consumer never feeds back into timing.
type Queue struct {
	mu      sync.Mutex
	pending []Item
	spare   []Item
	ready   chan struct{}
}

// Item is one thing that happened to a request: it went out (Record nil,
// Send set), or it ended (Record set).
type Item struct {
	Record *record.Record
	Send   record.Send
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{ready: make(chan struct{}, 1)}
}

// Put enqueues r and wakes the consumer.
func (q *Queue) Put(r *record.Record) { q.add(Item{Record: r}) }

// Sent enqueues s and wakes the consumer.
func (q *Queue) Sent(s record.Send) { q.add(Item{Send: s}) }

func (q *Queue) add(it Item) {
	q.mu.Lock()
	q.pending = append(q.pending, it)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled after a Put or Sent.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Drain swaps out everything queued; the returned slice is valid until the
// next Drain.
func (q *Queue) Drain() []Item {
	q.mu.Lock()
	batch := q.pending
	q.pending = q.spare[:0]
	q.mu.Unlock()
	q.spare = batch
	return batch
}
