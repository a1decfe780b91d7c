// Package probertest has servers for testing the prober against the
// connection habits of real inference servers, which net/http's own test
// server does not have.
package probertest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how a ClosingServer treats its connections.
type Mode int

const (
	// CloseAfterResponse advertises keep-alive and closes the connection
	// right after each response, without a Connection: close header: what
	// llama.cpp's llama-server does after a streamed reply. A client that
	// reuses the connection races the close.
	CloseAfterResponse Mode = iota
	// CloseOnNextRequest keeps the connection after a response and closes it
	// without an answer when the next request arrives on it: the race above,
	// lost every time.
	CloseOnNextRequest
	// CloseWhenIdle closes a connection that has been idle for Idle, without
	// a word (as servers with a short keep-alive timeout do).
	CloseWhenIdle
	// CloseAlways reads each request and closes the connection unanswered.
	CloseAlways
	// CloseAnnounced says Connection: close on every response, and closes.
	CloseAnnounced
)

// ClosingServer is an OpenAI-compatible chat endpoint on loopback over raw
// TCP, so that it can close connections the way real servers do. Each
// streamed reply is a role chunk, Tokens one-token content chunks, a usage
// chunk and [DONE]; a non-streamed reply is one JSON body.
type ClosingServer struct {
	URL    string
	Mode   Mode
	Idle   time.Duration // CloseWhenIdle's idle limit
	Tokens int

	// Requests counts requests read whole, Answered those answered, Conns
	// the connections accepted. A request can fail without being read at
	// all (the connection was closed before it arrived).
	Requests, Answered, Conns atomic.Int64

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// Start listens on 127.0.0.1 and serves until Close.
func Start(mode Mode, idle time.Duration, tokens int) (*ClosingServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &ClosingServer{URL: "http://" + ln.Addr().String(), Mode: mode, Idle: idle, Tokens: tokens, ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops the server, closes every connection and returns once their
// goroutines are done (the counts are then final). It may be called twice.
func (s *ClosingServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *ClosingServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.Conns.Add(1)
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *ClosingServer) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for served := 0; ; served++ {
		if s.Mode == CloseWhenIdle && served > 0 {
			c.SetReadDeadline(time.Now().Add(s.Idle))
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return // EOF, or idle too long
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return // the idle limit passed mid-request: closed, unanswered
		}
		c.SetReadDeadline(time.Time{})
		s.Requests.Add(1)
		if s.Mode == CloseAlways || s.Mode == CloseOnNextRequest && served > 0 {
			return
		}
		stream := bytes.Contains(body, []byte(`"stream":true`))
		if err := s.reply(c, stream); err != nil {
			return
		}
		s.Answered.Add(1)
		if s.Mode == CloseAfterResponse || s.Mode == CloseAnnounced || req.Close {
			return
		}
	}
}

func (s *ClosingServer) reply(c net.Conn, stream bool) error {
	conn := "Connection: keep-alive\r\nKeep-Alive: timeout=5, max=100"
	if s.Mode == CloseAnnounced {
		conn = "Connection: close"
	}
	usage := fmt.Sprintf(`"usage":{"prompt_tokens":3,"completion_tokens":%d,"total_tokens":%d}`, s.Tokens, s.Tokens+3)
	if !stream {
		body := `{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` +
			strings.Repeat("x", s.Tokens) + `"},"finish_reason":"length"}],` + usage + `}`
		_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s\r\nContent-Length: %d\r\n\r\n%s", conn, len(body), body)
		return err
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + conn + "\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := func(data string) {
		ev := "data: " + data + "\n\n"
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(ev), ev)
	}
	chunk(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}`)
	if _, err := c.Write(b.Bytes()); err != nil {
		return err
	}
	for i := 0; i < s.Tokens; i++ {
		b.Reset()
		chunk(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`)
		if _, err := c.Write(b.Bytes()); err != nil {
			return err
		}
	}
	b.Reset()
	chunk(`{"object":"chat.completion.chunk","choices":[],` + usage + `}`)
	chunk(`[DONE]`)
	b.WriteString("0\r\n\r\n")
	_, err := c.Write(b.Bytes())
	return err
}
