package netstamp

import (
	"testing"
	"time"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "kernel": ModeKernel, "user": ModeUser} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
		if in != "" && want.String() != in {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	if _, err := ParseMode("Kernel"); err == nil {
		t.Error("ParseMode accepted Kernel")
	}
}

func TestStampTimes(t *testing.T) {
	ref := Now()
	s := Stamp{Kernel: ref.UserWall + 1000, UserWall: ref.UserWall + 5000, UserMono: ref.UserMono + 5000, Seq: 1}
	if d := s.KernelTime().Sub(ref.User()); d != 1000 {
		t.Errorf("kernel − ref = %v, want 1µs", d)
	}
	if d := s.User().Sub(s.KernelTime()); d != 4000 || s.Lag() != 4000 {
		t.Errorf("user − kernel = %v, lag %v, want 4µs", d, s.Lag())
	}
	noK := Stamp{UserWall: 7, UserMono: 9, Seq: 1}
	if !noK.KernelTime().Equal(noK.User()) || noK.Lag() != 0 {
		t.Error("a stamp without kernel time should fall back to the user time")
	}
}

// TestStepGuard: a read whose wall–monotonic offset moved by more than
// MaxClockStep since the send (the wall clock stepped) gets its user-space
// stamp, and the fallback is counted; a small drift keeps the kernel stamp.
func TestStepGuard(t *testing.T) {
	ref := Stamp{UserWall: 1_000_000_000, UserMono: 500, Seq: 1}
	var g StepGuard
	g.Reset(ref)
	mk := func(step int64) Stamp {
		// 10 ms after the send on the monotonic clock; the wall clock
		// moved by 10 ms plus step; the kernel saw the bytes 1 ms earlier.
		w := ref.UserWall + 10e6 + step
		return Stamp{Kernel: w - 1e6, UserWall: w, UserMono: ref.UserMono + 10e6, Seq: 2}
	}
	if at, src := g.Time(mk(int64(MaxClockStep / 2))); src != SourceKernel || at.Sub(ref.User()) != 9e6 {
		t.Errorf("drift within bound: %v from %v, want kernel 9ms after the send", at.Sub(ref.User()), src)
	}
	for _, step := range []int64{int64(2 * MaxClockStep), -int64(time.Hour)} {
		if at, src := g.Time(mk(step)); src != SourceUser || at.Sub(ref.User()) != 10e6 {
			t.Errorf("step %v: %v from %v, want the user stamp 10ms after the send", time.Duration(step), at.Sub(ref.User()), src)
		}
	}
	if g.Steps != 2 {
		t.Errorf("Steps = %d, want 2", g.Steps)
	}
	if _, src := g.Time(Stamp{UserWall: 5, UserMono: 5, Seq: 3}); src != SourceUser || g.Steps != 2 {
		t.Errorf("no kernel stamp: %v, Steps %d: a user read is not a step", src, g.Steps)
	}
	g.Reset(ref)
	if g.Steps != 0 {
		t.Error("Reset keeps Steps")
	}
}
