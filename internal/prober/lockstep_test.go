package prober

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// lockstep makes a test server write each SSE step only once the client has
// read the previous one, so that every event arrives in a read of its own
// whatever the machine's load: one read that delivers several text events
// makes them one chunk (Result.Coalesced), which tests of per-chunk
// accounting must not depend on timing to avoid. The client's connections
// are keyed by their local address, the server's requests by their remote
// one.
type lockstep struct {
	mu    sync.Mutex
	reads map[string]chan struct{}
}

func newLockstep() *lockstep { return &lockstep{reads: map[string]chan struct{}{}} }

// lockstepClient is newTestClient whose connections report their reads to ls
// (they are no longer TCP conns to netstamp: their stamps are user-space).
func lockstepClient(t testing.TB, ls *lockstep, url string, api config.API, mutate func(*config.Target)) *Client {
	t.Helper()
	c := newTestClient(t, url, api, mutate)
	c.stamps.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &signalConn{Conn: raw, reads: ls.chanFor(raw.LocalAddr().String())}, nil
	}
	return c
}

func (ls *lockstep) chanFor(addr string) chan struct{} {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ch, ok := ls.reads[addr]
	if !ok {
		ch = make(chan struct{}, 1)
		ls.reads[addr] = ch
	}
	return ch
}

// flush flushes w and waits until the client has read what it sent (at most
// 5 s: a stuck test fails on its own timeouts, not here).
func (ls *lockstep) flush(w http.ResponseWriter, r *http.Request) {
	ch := ls.chanFor(r.RemoteAddr)
	select { // a read of earlier bytes, already waited for
	case <-ch:
	default:
	}
	w.(http.Flusher).Flush()
	select {
	case <-ch:
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

type signalConn struct {
	net.Conn
	reads chan struct{}
}

func (c *signalConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		select {
		case c.reads <- struct{}{}:
		default:
		}
	}
	return n, err
}
