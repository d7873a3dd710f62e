package main

import (
	"context"
	"os"

	"github.com/rump9p/rump9p/rumpcore"
)

// adaptCPUs runs rumpcore.CPUs while a serving command (serve, mount)
// runs, so that small requests are not paid for with thread wakeups on an
// idle second processor; it returns the function that stops it and
// restores the setting. A GOMAXPROCS in the environment is the user's
// choice and stays.
func adaptCPUs() (stop func()) {
	if os.Getenv("GOMAXPROCS") != "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		rumpcore.CPUs(ctx, 0)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}
