package main

import (
	"fmt"
	"io"
)

// mountCmd runs "rump9p mount". Placeholder until p2k lands.
func mountCmd(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "rump9p mount: not built yet")
	return 1
}
