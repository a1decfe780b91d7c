package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM (or SIGHUP, or Ctrl-C) sent to the whole process group, as
// timeout(1) and some inits do, reaches the worker processes too. They leave
// it to the daemon, which drains and stops them: none dies of it, none is
// restarted mid-stop, and the daemon exits 0.
func TestWorkersLeaveGroupSignalsToTheDaemon(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(binary, "--workers=2", "--web.listen-address="+addr, "--shutdown.drain-timeout=5s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	waitHTTP(t, "http://"+addr+"/-/ready", 15*time.Second)
	time.Sleep(500 * time.Millisecond) // the workers are up and sending
	syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exited with %v, want 0\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon still running 20s after SIGTERM\n%s", out.String())
	}
	if log := out.String(); strings.Contains(log, "worker process ended") {
		t.Errorf("a worker died of the group's signal:\n%s", log)
	}
}
