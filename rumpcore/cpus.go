package rumpcore

import (
	"context"
	"runtime"
	"syscall"
	"time"
)

// CPUs adapts the number of Go processors the process runs on
// (runtime.GOMAXPROCS) to the load, between 1 and max, until ctx is done;
// then it restores the number it found. It is the rump kernel's answer to
// NetBSD's RUMP_NCPU (the number of virtual CPUs a rump kernel schedules
// its threads on), for a server that cannot know its load in advance.
//
// Why: a 9P or FUSE request is small, and the servers hand each one from
// the goroutine that read it to another (hugelgupf/p9 keeps a goroutine
// ready to read while one handles). With a second processor idle, every
// handoff wakes an operating-system thread, which on a virtual machine
// costs more than the request itself: measured with tests/bench on a
// 2-CPU VM, one processor served a Tgetattr round trip in 60 µs against
// 109 µs with two, at half the CPU per request, while parallel readers on
// separate connections need both (2.0 GB/s against 0.86).
//
// The load cannot say when fewer processors would do (handoffs between
// more processors are themselves load), so CPUs probes: it starts at one
// processor, adds one whenever the process keeps all of them busy over a
// 50 ms window (90% of a CPU's time each), and every second tries one
// fewer; a load that needs them takes it back within a window.
//
// It changes a process-wide setting: commands (serve, mount) call it, a
// library embedding the kernel should not. max <= 0 means runtime.NumCPU().
func CPUs(ctx context.Context, max int) {
	if max <= 0 {
		max = runtime.NumCPU()
	}
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)
	const (
		window = 50 * time.Millisecond
		probe  = 20 // windows between tries with one processor fewer
	)
	procs := 1
	runtime.GOMAXPROCS(procs)
	last, lastAt := cpuTime(), time.Now()
	steady := 0
	tick := time.NewTicker(window)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now, nowAt := cpuTime(), time.Now()
		load := float64(now-last) / float64(nowAt.Sub(lastAt)) // CPUs in use
		last, lastAt = now, nowAt
		if next := nextProcs(procs, max, load, &steady, probe); next != procs {
			procs = next
			runtime.GOMAXPROCS(procs)
		}
	}
}

// nextProcs is CPUs' decision after one window: the number of processors
// for the next, given load (CPUs used over the window) and steady, the
// number of windows since the last change.
func nextProcs(procs, max int, load float64, steady *int, probe int) int {
	*steady++
	switch {
	case load >= 0.9*float64(procs) && procs < max:
		procs++
	case procs > 1 && *steady >= probe:
		procs--
	default:
		return procs
	}
	*steady = 0
	return procs
}

// cpuTime is the processor time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
