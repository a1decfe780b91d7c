//go:build linux

package netstamp

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
)

// TestHTTPOverStampedConns: net/http runs over the Dialer's conns, reuses
// them (keep-alive), and a request finds its conn's stamps through
// httptrace's GotConn: the send stamp precedes the response and the body's
// reads carry kernel stamps.
func TestHTTPOverStampedConns(t *testing.T) {
	warmKernelStamps(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
	}))
	defer srv.Close()
	d := &Dialer{Mode: ModeKernel}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	var first *Conn
	for i := range 3 {
		var got *Conn
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			got, _ = info.Conn.(*Conn)
			reused = info.Reused
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "POST", srv.URL, stringsReader("{\"prompt\":\"hi\"}"))
		before := Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			t.Fatalf("request %d: GotConn did not give a *netstamp.Conn", i)
		}
		sent, firstW := got.LastWrite(), got.FirstWrite()
		if sent.UserMono < before.UserMono || !sent.Valid() {
			t.Errorf("request %d: send stamp %+v before Do began (%+v)", i, sent, before)
		}
		// A body of unknown length goes out chunked: headers, the chunk and
		// the last chunk in separate writes; the first is the headers'.
		if firstW.UserMono < before.UserMono || sent.Seq-firstW.Seq < 1 {
			t.Errorf("request %d: first write %+v, last %+v: want the headers' write, before the last", i, firstW, sent)
		}
		buf := make([]byte, 256)
		var events int
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				events++
				s := got.LastReadStamp()
				if !s.HasKernel() || s.UserMono < sent.UserMono || s.KernelTime().Before(sent.User()) {
					t.Errorf("request %d: body read stamp %+v, send %+v: want a kernel stamp after the send", i, s, sent)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		if events == 0 {
			t.Errorf("request %d: no body read", i)
		}
		if i == 0 {
			first = got
		} else if !reused || got != first {
			t.Errorf("request %d: reused %v, same conn %v: want keep-alive reuse", i, reused, got == first)
		}
	}
	if d.Conns(SourceKernel) != 1 || d.Conns(SourceUser) != 0 {
		t.Errorf("dialed kernel %d user %d, want one kernel conn", d.Conns(SourceKernel), d.Conns(SourceUser))
	}
}

type stringsReaderT struct {
	s string
	i int
}

func stringsReader(s string) io.Reader { return &stringsReaderT{s: s} }

func (r *stringsReaderT) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	n := copy(p, r.s[r.i:])
	r.i += n
	return n, nil
}

// benchmarkRead measures one Read of up to 512 bytes from a peer that keeps
// the receive queue full.
func benchmarkRead(b *testing.B, wrap bool, mode Mode) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	stop := make(chan struct{})
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		block := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := s.Write(block); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				return
			}
		}
	}()
	defer close(stop)
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	var c net.Conn = raw
	if wrap {
		if c, _, err = Wrap(raw, mode); err != nil {
			b.Fatal(err)
		}
	}
	defer c.Close()
	buf := make([]byte, 512)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchmarkRead(b, false, ModeUser) })
	b.Run("kernel", func(b *testing.B) { benchmarkRead(b, true, ModeKernel) })
	b.Run("user", func(b *testing.B) { benchmarkRead(b, true, ModeUser) })
}

// TestLookupThroughPrometheusClient: prometheus/common's client wraps every
// dialed conn (go-conntrack) and, for https, crypto/tls wraps it again;
// Lookup still finds the *Conn under what GotConn hands over, and forgets it
// once closed.
func TestLookupThroughPrometheusClient(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			var srv *httptest.Server
			cfg := promconfig.DefaultHTTPClientConfig
			if tlsOn {
				srv = httptest.NewTLSServer(handler)
				cfg.TLSConfig.InsecureSkipVerify = true
				cfg.EnableHTTP2 = false
			} else {
				srv = httptest.NewServer(handler)
			}
			defer srv.Close()
			d := &Dialer{}
			hc, err := promconfig.NewClientFromConfig(cfg, "test", promconfig.WithDialContextFunc(d.DialContext))
			if err != nil {
				t.Fatal(err)
			}
			var got net.Conn
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { got = info.Conn }}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL, nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if _, direct := got.(*Conn); direct {
				t.Fatal("GotConn handed over the *Conn itself: the test no longer covers a wrapper")
			}
			c := d.Lookup(got)
			if c == nil {
				t.Fatalf("Lookup(%T) found nothing", got)
			}
			if !c.LastReadStamp().Valid() || !c.LastWrite().Valid() {
				t.Error("the conn found carries no stamps")
			}
			if allocs := testing.AllocsPerRun(100, func() { d.Lookup(got) }); allocs != 0 {
				t.Errorf("Lookup allocates %v", allocs)
			}
			hc.CloseIdleConnections()
			if d.Lookup(got) != nil {
				t.Error("Lookup still finds a closed conn")
			}
		})
	}
}
