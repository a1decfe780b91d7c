package simulator

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestArrivalIsKernelReceive: with the handler deliberately late, the
// kernel arrival stays inside the client's write syscall (on loopback the
// receive stamp is taken in the sender's syscall), while the handler's own
// clock is late by at least the delay; and the TTFT reported counts that
// lateness, as the client sees it.
func TestArrivalIsKernelReceive(t *testing.T) {
	const delay = 20 * time.Millisecond
	var rec arrivalRecorder
	var late atomic.Bool
	cfg := fastConfig()
	_, addr := newServedServer(t, cfg, func(s *Server) {
		s.traceArrival = rec.record
		s.beforeHandle = func() {
			if late.Load() {
				time.Sleep(delay)
			}
		}
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	// The first request on a fresh process may arrive before the kernel has
	// turned receive stamping on (it does so from a work queue); it warms
	// up and is not checked.
	conn.Write(rawRequest(2))
	ttftOf(t, br)
	late.Store(true)
	const n = 8
	for i := 2; i < 2+n; i++ {
		req := rawRequest(2)
		before := time.Now()
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		ttft := ttftOf(t, br)
		tr := rec.last(t, i)
		if !tr.kernel {
			t.Fatalf("request %d: arrival has no kernel stamp", i)
		}
		if tr.arrival.Before(before) || tr.arrival.After(after) {
			t.Errorf("request %d: kernel arrival %v after the write began, outside the write (%v long)",
				i, tr.arrival.Sub(before), after.Sub(before))
		}
		if user := tr.handlerNow.Sub(before); user < delay {
			t.Errorf("request %d: handler clock only %v after the write began, want ≥ the %v delay", i, user, delay)
		}
		if ttft < time.Duration(cfg.TTFT)+delay {
			t.Errorf("request %d: llmprobe_ttft_ns %v does not count the handler's %v lateness (ttft %v)",
				i, ttft, delay, time.Duration(cfg.TTFT))
		}
	}
}
