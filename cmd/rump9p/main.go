// Command rump9p mounts file system images with rump9p's own drivers and
// serves them over 9P2000.L.
//
//	rump9p serve [-c rump9p.yaml] [--listen tcp:127.0.0.1:5640] ...
//	rump9p config check FILE
//	rump9p version
package main

import (
	"fmt"
	"io"
	"os"

	// The drivers linked into the binary.
	_ "github.com/rump9p/rump9p/vnodeops/cd9660"
	_ "github.com/rump9p/rump9p/vnodeops/ext2fs"
	_ "github.com/rump9p/rump9p/vnodeops/msdosfs"
	_ "github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

const usage = `usage:
  rump9p serve [-c FILE] [flags]   serve the configured mounts over 9P2000.L
  rump9p config check FILE         validate FILE and print the effective config
  rump9p mount [flags] IMAGE|-c FILE MOUNTPOINT
                                   mount on the host through FUSE
  rump9p guest-mount [flags] MOUNTPOINT
                                   (inside a VM) mount the host's rump9p with v9fs
  rump9p version                   print the version

Run "rump9p serve -h" for the flags of serve.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdin, stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "mount":
		return mountCmd(args[1:], stdout, stderr)
	case "guest-mount":
		return guestMountCmd(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "rump9p %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rump9p: unknown command %q\n%s", args[0], usage)
	return 2
}
