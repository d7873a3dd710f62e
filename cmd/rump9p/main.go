// Command rump9p mounts file system images with rump9p's own drivers and
// serves them over 9P2000.L, mounts them on the host through FUSE, and
// works on them without any mount (ls, cp, tar, ... after NetBSD's
// fs-utils).
//
//	rump9p serve [-c rump9p.yaml] [--listen tcp:127.0.0.1:5640] ...
//	rump9p mount [--type T] [--partition P] [--ro] [-o OPTS] IMAGE MOUNTPOINT
//	rump9p ls -l disk.img:/etc
//	rump9p cp -a ./tree disk.img@1:/srv
//	rump9p config check FILE
//	rump9p help [COMMAND]
//
// Exit status: 0 when everything succeeded, 1 when an operation failed,
// 2 for a usage error (an unknown command or flag, missing arguments).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError is an error in the command line itself: run prints it with
// the command's usage line and exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitStatus ends a command with a status whose errors were reported
// already.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// status turns a command's exit status into what RunE returns.
func status(code int) error {
	if code == exitOK {
		return nil
	}
	return exitStatus(code)
}

// exitError is err, reported without the usage line, and exit status
// code.
func exitError(code int, err error) error { return &codedError{code: code, err: err} }

type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// run executes one command line and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[0] == "guest-mount" && args[1] == relayChildArg {
		return relayChild(args[2:])
	}
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(legacyFlags(root, args))
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "usage: %s\nRun '%s --help' for more.\n", cmd.UseLine(), cmd.CommandPath())
		return exitUsage
	}
	return exitFailed
}

// newRootCmd builds the command tree; stdin, stdout and stderr are the
// streams of every command.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "rump9p",
		Short: "mount file system images with rump9p's own drivers and serve them over 9P2000.L",
		Long: `rump9p is a userspace kernel that mounts file system images (ext2/3/4, FFS,
FAT, ISO 9660, tmpfs) with its own drivers. It serves them over 9P2000.L (serve),
mounts them on the host through FUSE (mount), and works on an image with no
mount at all (ls, cat, cp, tar, ...: paths are IMAGE[@PARTITION]:PATH).

Exit status: 0 ok, 1 an operation failed, 2 usage error.`,
		Version:       version,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(stderr)
				cmd.Usage()
				return exitStatus(exitUsage)
			}
			return usagef("unknown command %q", args[0])
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("rump9p {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddGroup(
		&cobra.Group{ID: "serve", Title: "Serving and mounting:"},
		&cobra.Group{ID: "image", Title: "Working on an image without mounting (IMAGE[@PARTITION]:PATH):"},
	)
	for _, c := range []*cobra.Command{
		newServeCmd(stdin, stdout, stderr),
		newMountCmd(stderr),
		newGuestMountCmd(),
	} {
		c.GroupID = "serve"
		root.AddCommand(c)
	}
	for _, c := range imageCommands(stdin, stdout, stderr) {
		c.GroupID = "image"
		root.AddCommand(c)
	}
	root.AddCommand(newFsckCmd(stdout), newConfigCmd(stdout), newVersionCmd(stdout), newManCmd(root, stdout))
	return root
}

// exactArgs, rangeArgs and minArgs are cobra's argument checks whose
// failures are usage errors (exit 2).
func exactArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.ExactArgs(n)) }
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return usageArgs(cobra.RangeArgs(lo, hi))
}
func minArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.MinimumNArgs(n)) }

func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// legacyFlags lets the commands that predate cobra keep taking their long
// flags with one dash, as Go's flag package did (-listen ADDR): such an
// argument naming a long flag of the command gets a second dash.
func legacyFlags(root *cobra.Command, args []string) []string {
	if len(args) == 0 {
		return args
	}
	var flags *pflag.FlagSet
	for _, c := range root.Commands() {
		if c.Name() == args[0] && c.Annotations[annotLegacyFlags] != "" {
			flags = c.Flags()
		}
	}
	if flags == nil {
		return args
	}
	out := append([]string(nil), args...)
	for i, a := range out[1:] {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if flags.Lookup(name) != nil {
			out[i+1] = "-" + a
		}
	}
	return out
}

// annotLegacyFlags marks a command whose one-dash long flags legacyFlags
// accepts.
const annotLegacyFlags = "rump9p/legacy-flags"

var legacy = map[string]string{annotLegacyFlags: "1"}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  exactArgs(0),
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(stdout, "rump9p %s\n", version)
		},
	}
}
