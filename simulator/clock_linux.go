package simulator

import (
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Go's timers are precise while the process is busy (the scheduler checks
// them at every switch), but an idle process waits for its next timer in
// epoll_wait, whose timeout is in whole milliseconds: a timer due in 100µs
// fires about 1ms late. A simulator that emits tokens up to 1ms late blurs
// the very latencies it stands in for.
//
// wakeAlarm fixes the idle case without touching the hot path: while any
// sequence is running, a kernel timerfd ticks every alarmTick. The fd sits
// in Go's netpoller, so each tick ends a sleeping epoll_wait, and the
// scheduler then runs every Go timer that has come due, on any P. Streams
// keep waiting on ordinary Go timers.
type wakeAlarm struct {
	mu sync.Mutex
	fd uintptr
	f  *os.File
	on bool
}

// alarmTick bounds how late an idle process notices a due timer. Each tick
// costs one wake-up and one 8-byte read: a few µs, 5,000 times a second
// while streams run, nothing when idle.
const alarmTick = 200 * time.Microsecond

// newWakeAlarm returns nil where timerfd is unavailable (streams then rely
// on Go timers alone).
func newWakeAlarm() *wakeAlarm {
	const clockMonotonic = 1
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil
	}
	// Non-blocking, so reads park in the netpoller: the fd turning readable
	// is what wakes a sleeping process.
	f := os.NewFile(fd, "timerfd")
	a := &wakeAlarm{fd: fd, f: f}
	go func() {
		var buf [8]byte // expiration count, unused
		for {
			// f, not a.f: close clears a.f under the lock this loop
			// does not hold; closing f is what ends the loop.
			if _, err := f.Read(buf[:]); err != nil {
				return // closed
			}
		}
	}()
	return a
}

// update ticks while wanted() holds. The lock covers both reading wanted
// and arming, so racing updates settle on the current state.
func (a *wakeAlarm) update(wanted func() bool) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	on := wanted()
	if on == a.on || a.f == nil {
		return
	}
	a.on = on
	var spec [2]syscall.Timespec // interval, first expiry; zero disarms
	if on {
		spec[0] = syscall.NsecToTimespec(int64(alarmTick))
		spec[1] = spec[0]
	}
	syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, a.fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
}

func (a *wakeAlarm) close() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
}
