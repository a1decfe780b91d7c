package load

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// backoff is one target's Retry-After state in one worker, shared by every
// probe of the target (a rate limit is the target's, whatever the
// scenario): until when its arrivals are held back. Only targets with
// honor_retry_after have one.
type backoff struct {
	target string
	cap    time.Duration
	epoch  time.Time    // monotonic reference for until
	until  atomic.Int64 // ns after epoch; 0 when none was asked for
	logger *slog.Logger
}

func newBackoff(target string, cap time.Duration, logger *slog.Logger) *backoff {
	return &backoff{target: target, cap: cap, epoch: time.Now(), logger: logger}
}

// active reports whether the target asked not to be sent to at now.
func (b *backoff) active(now time.Time) bool {
	return b != nil && now.Sub(b.epoch) < time.Duration(b.until.Load())
}

// remaining is how long the back-off still holds at now (0 when none).
func (b *backoff) remaining(now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	return max(0, time.Duration(b.until.Load())-now.Sub(b.epoch))
}

// hold extends the back-off to d (at most the cap) from now; a shorter
// request never shortens one already in force.
func (b *backoff) hold(now time.Time, d time.Duration, status int) {
	if b == nil || d <= 0 {
		return
	}
	d = min(d, b.cap)
	until := int64(now.Sub(b.epoch) + d)
	for {
		cur := b.until.Load()
		if until <= cur {
			return
		}
		if b.until.CompareAndSwap(cur, until) {
			if now.Sub(b.epoch) >= time.Duration(cur) { // a new back-off, not an extension
				b.logger.Info("target asked to back off: holding its arrivals (honor_retry_after)", "target", b.target, "status", status, "for", d)
			}
			return
		}
	}
}
