package main

import (
	"fmt"
	"io"
)

// guestMountCmd runs "rump9p guest-mount". Placeholder.
func guestMountCmd(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "rump9p guest-mount: not built yet")
	return 1
}
