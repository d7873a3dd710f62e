package rumpcore

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestNextProcs: a saturated window adds a processor (up to max), a
// window that is not never does, and every probe windows without a
// change one processor is tried away, down to one.
func TestNextProcs(t *testing.T) {
	steps := []struct {
		load float64
		want int
	}{
		{0.95, 2}, // saturated at 1: add
		{1.95, 3}, // saturated at 2: add
		{2.95, 3}, // saturated at max: stay
		{1.0, 3},  // 2 windows since the change: not yet
		{1.0, 2},  // 3: probe with one fewer
		{1.9, 3},  // the load needed it: back at once
		{0.2, 3}, {0.2, 3},
		{0.2, 2}, // probe
		{0.2, 2}, {0.2, 2},
		{0.2, 1},                               // probe
		{0.5, 1}, {0.5, 1}, {0.5, 1}, {0.5, 1}, // never below one
	}
	procs, steady := 1, 0
	for i, s := range steps {
		procs = nextProcs(procs, 3, s.load, &steady, 3)
		if procs != s.want {
			t.Fatalf("step %d (load %.2f): %d processors, want %d", i, s.load, procs, s.want)
		}
	}
}

// TestCPUsRestores: CPUs runs on one processor while idle and gives the
// process back its setting when its context ends.
func TestCPUsRestores(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { CPUs(ctx, 0); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.GOMAXPROCS(0) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("idle: %d processors, want 1", n)
	}
	cancel()
	<-done
	if n := runtime.GOMAXPROCS(0); n != before {
		t.Errorf("after: %d processors, want %d", n, before)
	}
}
