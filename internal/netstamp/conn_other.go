//go:build !linux

package netstamp

import (
	"errors"
	"sync"
)

// sysConn has no syscall state off Linux: there is no portable kernel
// receive stamp, so every Conn uses user-space stamps.
type sysConn struct {
	wmu   sync.Mutex
	burst burst
}

func (s *sysConn) init(c *Conn, kernel bool) error {
	return errors.New("kernel receive timestamps need Linux")
}

// Read reads like the wrapped conn and stamps the read.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		w, m := now()
		c.read.store(0, w, m)
	}
	return n, err
}

// Write stamps the instant before the wrapped conn's Write.
func (c *Conn) Write(b []byte) (int, error) {
	c.sys.wmu.Lock()
	c.sys.burst.begin(c.read.seq.Load())
	c.stampWrite(&c.sys.burst)
	c.sys.wmu.Unlock()
	return c.Conn.Write(b)
}
