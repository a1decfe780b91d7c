package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process started in its own process group, so that it and
// whatever it starts (llmprobe's worker processes) are measured and killed
// together.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// procs tracks every live child so that an interrupted benchmark kills them
// all on its way out.
var procs struct {
	sync.Mutex
	live map[*proc]bool
}

// start runs argv, under `taskset -c cpus` when cpus is set, logging to a
// file in dir.
func start(dir, name, cpus string, argv ...string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	procs.Lock()
	if procs.live == nil {
		procs.live = map[*proc]bool{}
	}
	procs.live[p] = true
	procs.Unlock()
	return p, nil
}

// pid is the process' id; taskset execs the program, so it is the program's
// own, and its process group's id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the whole group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	pgid := p.pid()
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	// The group may outlive its leader (workers mid-shutdown): kill it all.
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	procs.Lock()
	delete(procs.live, p)
	procs.Unlock()
}

// killAll kills every live child group at once (interrupt or fatal error).
func killAll() {
	procs.Lock()
	defer procs.Unlock()
	for p := range procs.live {
		syscall.Kill(-p.pid(), syscall.SIGKILL)
	}
}

// logTail is the end of the process' log, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200, the process exits, or timeout.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready:\n%s", p.name, p.logTail())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not ready at %s after %s:\n%s", p.name, url, timeout, p.logTail())
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// freePort picks a loopback port that is free now (the child binds it a
// moment later; a collision makes the child fail to start, reported).
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100 on
// every mainstream Linux architecture (the stdlib has no sysconf).
const clockTicks = 100

// groupUsage is the CPU time (user+system) and resident memory of every
// live process in process group pgid: the daemon and its workers. A worker
// that exited earlier in the window is missed; the benchmark's daemons keep
// theirs for the whole run.
type groupUsage struct {
	CPUSeconds float64
	RSSBytes   int64
	Procs      int
}

func readGroup(pgid int) (groupUsage, error) {
	var u groupUsage
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return u, err
	}
	page := int64(os.Getpagesize())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.pgrp != pgid {
			continue // gone, or not ours
		}
		u.CPUSeconds += float64(st.utime+st.stime) / clockTicks
		u.RSSBytes += st.rssPages * page
		u.Procs++
	}
	if u.Procs == 0 {
		return u, fmt.Errorf("no process left in group %d", pgid)
	}
	return u, nil
}

type procStat struct {
	pgrp         int
	utime, stime int64
	rssPages     int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat reads /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may hold spaces, so fields are counted after the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, errors.New("short stat")
	}
	var st procStat
	var errs [4]error
	st.pgrp, errs[0] = strconv.Atoi(f[5-3])
	st.utime, errs[1] = strconv.ParseInt(f[14-3], 10, 64)
	st.stime, errs[2] = strconv.ParseInt(f[15-3], 10, 64)
	st.rssPages, errs[3] = strconv.ParseInt(f[24-3], 10, 64)
	return st, errors.Join(errs[:]...)
}
