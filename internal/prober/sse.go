package prober

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/llmprobe/llmprobe/internal/netstamp"
)

// DefaultMaxEventSize caps one SSE event (its data lines plus the line being
// read). A bigger event is a protocol error, not a reason to grow without bound.
const DefaultMaxEventSize = 1 << 20

// initialSSEBuffer is large enough for a typical read of a token stream; the
// buffer grows (up to the event cap) only for big events.
const initialSSEBuffer = 16 << 10

// ErrEventTooLarge reports an SSE event over the reader's size cap.
var ErrEventTooLarge = errors.New("sse: event exceeds size limit")

var doneData = []byte("[DONE]")

// Event is one dispatched SSE event.
type Event struct {
	// Data is the event's data, lines joined with "\n". It points into the
	// reader's buffers and is valid only until the next call to Next.
	Data []byte
	// Time is when the bytes of the Read that delivered the event's last
	// byte (the blank line that dispatched it) arrived: the kernel's receive
	// time where the connection gives one, else when that Read returned. On
	// the monotonic clock.
	Time time.Time
	// Wall is Time on the wall clock (Unix ns), for comparison with a
	// server's own stamps.
	Wall int64
	// Lag is how much later than Time the Read returned (0 for a
	// user-space stamp): the delay the client itself would have added.
	Lag time.Duration
	// Kernel says Time is a kernel receive stamp.
	Kernel bool
	// Read numbers the socket read (the Read, without a stamped
	// connection) that delivered the event's last byte: events of one read
	// share it.
	Read uint64
	// Done is set for the OpenAI end-of-stream sentinel "data: [DONE]".
	Done bool
}

// SSEReader splits a text/event-stream into events. It reads into its own
// buffer (no per-line copies), so steady-state reading allocates nothing, and it
// stamps time once per Read that returned bytes: every event those bytes
// complete carries that stamp, which is as close to the bytes' arrival as a
// user-space reader gets.
//
// Per the SSE spec: lines end at "\n", "\r\n" or a lone "\r"; "data:" with or
// without one following space; lines starting with ":" are comments
// (keep-alives); event, id and retry fields are ignored; several data lines
// join with "\n"; a blank line dispatches; an event still incomplete at end of
// stream is discarded. A leading UTF-8 BOM is skipped.
type SSEReader struct {
	r   io.Reader
	buf []byte
	pos int // start of unparsed bytes
	end int // end of valid bytes in buf

	// The current event's data: a single data line stays in buf
	// (dataStart..dataEnd); from the second line on it is joined in scratch.
	dataStart, dataEnd int
	multi              bool
	scratch            []byte

	skipLF    bool // last line ended with "\r" at the end of buf: skip a "\n" that follows
	firstLine bool // BOM check pending
	stamp     time.Time
	wall      int64
	lag       time.Duration
	kernel    bool
	read      uint64
	err       error // sticky error from the underlying reader
	// conn, when set, is the connection under r: each Read's stamp is the
	// kernel's receive time of its last read, through guard.
	conn  *netstamp.Conn
	guard *netstamp.StepGuard
	max   int
	now   func() time.Time // time.Now; replaceable in tests
}

// NewSSEReader returns a reader over r with the given event size cap
// (DefaultMaxEventSize when maxEvent <= 0).
func NewSSEReader(r io.Reader, maxEvent int) *SSEReader {
	s := &SSEReader{max: maxEvent, now: time.Now}
	if s.max <= 0 {
		s.max = DefaultMaxEventSize
	}
	s.Reset(r)
	return s
}

// Reset makes s read a new stream from r, keeping its buffers.
func (s *SSEReader) Reset(r io.Reader) {
	s.r = r
	s.pos, s.end = 0, 0
	s.dataStart, s.dataEnd, s.multi = -1, -1, false
	s.scratch = s.scratch[:0]
	s.skipLF, s.firstLine = false, true
	s.stamp, s.wall, s.lag, s.kernel, s.read = time.Time{}, 0, 0, false, 0
	s.conn, s.guard = nil, nil
	s.err = nil
}

// StampFrom makes the reader take its stamps from conn's reads (through
// guard, which rejects kernel stamps across a wall-clock step) until the next
// Reset: conn must be the connection the stream is read from, one request at
// a time (HTTP/1).
func (s *SSEReader) StampFrom(conn *netstamp.Conn, guard *netstamp.StepGuard) {
	s.conn, s.guard = conn, guard
}

// stampRead stamps a Read that returned bytes.
func (s *SSEReader) stampRead() {
	u := s.now()
	s.stamp, s.wall, s.lag, s.kernel = u, u.UnixNano(), 0, false
	if s.conn == nil {
		s.read++
		return
	}
	ks := s.conn.LastReadStamp()
	s.read = ks.Seq
	if t, src := s.guard.Time(ks); src == netstamp.SourceKernel {
		s.stamp, s.wall, s.lag, s.kernel = t, ks.Kernel, max(u.Sub(t), 0), true
	}
}

// LastRead is the stamp of the most recent Read that returned bytes (zero
// before the first). At end of stream it is when the last byte arrived.
func (s *SSEReader) LastRead() time.Time { return s.stamp }

// Next returns the next event. At the end of the stream it returns the
// underlying reader's error (io.EOF for a clean end); an event over the size
// cap returns ErrEventTooLarge. Errors are sticky.
func (s *SSEReader) Next() (Event, error) {
	for {
		for {
			ls, le, ok := s.nextLine()
			if !ok {
				break
			}
			if ls == le {
				if ev, ok := s.dispatch(); ok {
					return ev, nil
				}
				continue
			}
			if err := s.field(ls, le); err != nil {
				s.err = err
				return Event{}, err
			}
		}
		if s.err != nil {
			return Event{}, s.err
		}
		if err := s.fill(); err != nil {
			s.err = err
			return Event{}, err
		}
	}
}

// nextLine returns the bounds of the next complete line in buf, without its
// terminator, and advances past it.
func (s *SSEReader) nextLine() (ls, le int, ok bool) {
	if s.skipLF && s.pos < s.end {
		if s.buf[s.pos] == '\n' {
			s.pos++
		}
		s.skipLF = false
	}
	b := s.buf[s.pos:s.end]
	// Two SIMD searches beat a byte loop for the usual few-hundred-byte
	// data line; the earlier terminator wins.
	i := bytes.IndexByte(b, '\n')
	var cr int
	if i >= 0 {
		cr = bytes.IndexByte(b[:i], '\r')
	} else {
		cr = bytes.IndexByte(b, '\r')
	}
	ls = s.pos
	switch {
	case cr >= 0:
		le = ls + cr
		s.pos = le + 1
		if s.pos < s.end {
			if s.buf[s.pos] == '\n' {
				s.pos++
			}
		} else {
			s.skipLF = true
		}
	case i >= 0:
		le = ls + i
		s.pos = le + 1
	default:
		return 0, 0, false
	}
	if s.firstLine {
		s.firstLine = false
		if le-ls >= 3 && s.buf[ls] == 0xEF && s.buf[ls+1] == 0xBB && s.buf[ls+2] == 0xBF {
			ls += 3
		}
	}
	return ls, le, true
}

// field processes one non-empty line.
func (s *SSEReader) field(ls, le int) error {
	line := s.buf[ls:le]
	if line[0] == ':' {
		return nil // comment, e.g. a keep-alive
	}
	c := bytes.IndexByte(line, ':')
	if c < 0 {
		// A field name alone: "data" appends an empty line.
		if string(line) == "data" {
			return s.appendData(le, le)
		}
		return nil
	}
	if string(line[:c]) != "data" {
		return nil // event, id, retry and unknown fields do not matter here
	}
	vs := ls + c + 1
	if vs < le && s.buf[vs] == ' ' {
		vs++
	}
	return s.appendData(vs, le)
}

func (s *SSEReader) appendData(vs, ve int) error {
	if !s.multi && s.dataStart < 0 {
		s.dataStart, s.dataEnd = vs, ve
		return nil
	}
	if !s.multi {
		s.scratch = append(s.scratch[:0], s.buf[s.dataStart:s.dataEnd]...)
		s.multi = true
		s.dataStart, s.dataEnd = -1, -1
	}
	if len(s.scratch)+1+(ve-vs) > s.max {
		return ErrEventTooLarge
	}
	s.scratch = append(s.scratch, '\n')
	s.scratch = append(s.scratch, s.buf[vs:ve]...)
	return nil
}

func (s *SSEReader) dispatch() (Event, bool) {
	var data []byte
	switch {
	case s.multi:
		data = s.scratch
	case s.dataStart >= 0:
		data = s.buf[s.dataStart:s.dataEnd]
	default:
		return Event{}, false // no data: nothing to dispatch (spec)
	}
	s.dataStart, s.dataEnd, s.multi = -1, -1, false
	return Event{Data: data, Time: s.stamp, Wall: s.wall, Lag: s.lag, Kernel: s.kernel, Read: s.read, Done: bytes.Equal(data, doneData)}, true
}

// fill makes room and reads once. Bytes that must survive (the current
// event's single data line, or the incomplete line) move to the front.
func (s *SSEReader) fill() error {
	keep := s.pos
	if s.dataStart >= 0 {
		keep = s.dataStart
	}
	held := s.end - keep
	if s.multi {
		held += len(s.scratch)
	}
	if held >= s.max {
		return ErrEventTooLarge
	}
	if s.buf == nil {
		s.buf = make([]byte, min(initialSSEBuffer, s.max))
	}
	if keep > 0 && (keep == s.end || len(s.buf)-s.end < len(s.buf)/2) {
		copy(s.buf, s.buf[keep:s.end])
		s.pos -= keep
		s.end -= keep
		if s.dataStart >= 0 {
			s.dataStart -= keep
			s.dataEnd -= keep
		}
	}
	if s.end == len(s.buf) {
		nb := make([]byte, min(2*len(s.buf), s.max))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for range maxEmptyReads {
		n, err := s.r.Read(s.buf[s.end:])
		if n > 0 {
			s.stampRead()
			s.end += n
		}
		if err != nil {
			s.err = err
		}
		if n > 0 || err != nil {
			return nil
		}
	}
	return io.ErrNoProgress
}

// Drain reads and discards up to limit more bytes of the stream, so that an
// HTTP transport sees the body's end and can reuse the connection. It ends
// the stream: later calls to Next return the reader's error or io.EOF.
func (s *SSEReader) Drain(limit int) {
	if s.buf == nil {
		s.buf = make([]byte, min(initialSSEBuffer, s.max))
	}
	s.pos, s.end = 0, 0
	s.dataStart, s.dataEnd, s.multi = -1, -1, false
	for empty := 0; limit > 0 && s.err == nil && empty < maxEmptyReads; {
		n, err := s.r.Read(s.buf[:min(len(s.buf), limit)])
		if n == 0 {
			empty++
		}
		limit -= n
		s.err = err
	}
	if s.err == nil {
		s.err = io.EOF
	}
}

// maxEmptyReads bounds a misbehaving reader that keeps returning 0, nil.
const maxEmptyReads = 100
