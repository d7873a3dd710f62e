package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const guestMountLong = `Runs inside a Linux guest and mounts the host's rump9p with the guest's v9fs
client (9P2000.L, msize 1 MiB unless -o msize= says otherwise).

With --virtio-port NAME the port is the virtio-serial port whose name is NAME
(QEMU -device virtserialport,name=NAME, its chardev being rump9p's unix
socket), or a /dev path; it is relayed through a socketpair by a background
process of rump9p's own, which ends when the mount is gone. With --tcp
HOST:PORT the mount is trans=tcp (HOST: an IPv4 address or a name).

-o takes comma-separated 9p options (aname=, cache=, access=, uname=, ...) and
mount flags (ro, nosuid, nodev, noexec, noatime, ...).`

// guestMountConfig is a parsed guest-mount command line.
type guestMountConfig struct {
	port       string        // --virtio-port
	tcp        string        // --tcp
	options    []string      // -o, split on commas
	timeout    time.Duration // --timeout
	mountpoint string
}

// relayChildArg is the first argument of the background relay that
// guest-mount starts (itself, re-executed); not for users.
const relayChildArg = "--relay-child"

func newGuestMountCmd() *cobra.Command {
	cfg := &guestMountConfig{}
	cmd := &cobra.Command{
		Use:         "guest-mount --virtio-port NAME|--tcp HOST:PORT [-o OPTIONS] [--timeout D] MOUNTPOINT",
		Short:       "(inside a VM) mount the host's rump9p with v9fs",
		Long:        guestMountLong,
		Annotations: legacy,
		RunE: func(_ *cobra.Command, args []string) error {
			if err := checkGuestMount(cfg, args); err != nil {
				return usageError{err}
			}
			if err := runGuestMount(cfg); err != nil {
				return err
			}
			return nil
		},
	}
	guestMountFlags(cmd.Flags(), cfg)
	return cmd
}

// optionList is a repeatable flag whose values are comma-separated
// lists.
type optionList struct{ items *[]string }

func (o optionList) String() string { return strings.Join(*o.items, ",") }
func (o optionList) Type() string   { return "options" }
func (o optionList) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*o.items = append(*o.items, v)
		}
	}
	return nil
}

// guestMountFlags defines the flags of guest-mount on fs, into cfg.
func guestMountFlags(fs *pflag.FlagSet, cfg *guestMountConfig) {
	fs.StringVar(&cfg.port, "virtio-port", "", "virtio-serial port `name` (or a /dev path)")
	fs.StringVar(&cfg.tcp, "tcp", "", "server `host:port`")
	fs.VarP(optionList{&cfg.options}, "options", "o", "9p mount `options`, comma-separated; repeatable")
	fs.DurationVar(&cfg.timeout, "timeout", time.Minute, "give up when the server has not answered the mount within `D` (0 waits forever)")
}

// checkGuestMount checks the parsed flags and the positional arguments,
// and sets the mount point.
func checkGuestMount(cfg *guestMountConfig, pos []string) error {
	switch {
	case len(pos) != 1:
		return fmt.Errorf("want exactly one MOUNTPOINT, got %d arguments", len(pos))
	case (cfg.port == "") == (cfg.tcp == ""):
		return errors.New("give either --virtio-port NAME or --tcp HOST:PORT")
	case cfg.timeout < 0:
		return fmt.Errorf("--timeout %v: must not be negative", cfg.timeout)
	}
	cfg.mountpoint = pos[0]
	return nil
}

// parseGuestMount parses a guest-mount command line (flags may come before
// or after the mount point), as the command does.
func parseGuestMount(args []string, stderr io.Writer) (*guestMountConfig, error) {
	cfg := &guestMountConfig{}
	fs := pflag.NewFlagSet("guest-mount", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	guestMountFlags(fs, cfg)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := checkGuestMount(cfg, fs.Args()); err != nil {
		return nil, err
	}
	return cfg, nil
}

// mountFlagWords are the options that mount(8) turns into mount(2) flags
// rather than passing them to the file system.
var mountFlagWords = map[string]bool{
	"ro": true, "rw": true, "nosuid": true, "suid": true, "nodev": true, "dev": true,
	"noexec": true, "exec": true, "sync": true, "async": true, "dirsync": true,
	"noatime": true, "atime": true, "nodiratime": true, "diratime": true,
	"relatime": true, "norelatime": true, "strictatime": true, "lazytime": true,
}

// mountData merges the user's options over the defaults (a user's msize=
// replaces the default msize=) and returns the data string for mount(2)
// and, apart, the words that are mount flags. Options in reserved are the
// tool's own (trans=, the fd numbers, the tcp port) and are refused.
func mountData(defaults, user []string, reserved map[string]string) (data string, flags []string, err error) {
	key := func(o string) string { k, _, _ := strings.Cut(o, "="); return k }
	set := map[string]bool{}
	var mine []string
	for _, o := range user {
		k := key(o)
		if why, ok := reserved[k]; ok {
			return "", nil, fmt.Errorf("-o %s: %s", o, why)
		}
		if mountFlagWords[o] {
			flags = append(flags, o)
			continue
		}
		set[k] = true
		mine = append(mine, o)
	}
	var all []string
	for _, o := range defaults {
		if !set[key(o)] {
			all = append(all, o)
		}
	}
	return strings.Join(append(all, mine...), ","), flags, nil
}

// findVirtioPort returns the device node of the virtio-serial port called
// name: /dev/virtio-ports/NAME (made by udev) when it exists, else the
// /dev/vportXpY whose sysfs name file (sysDir/vportXpY/name) says name. A
// name holding a slash is taken as the device path itself.
func findVirtioPort(sysDir, devDir, name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("virtio port %w", err)
		}
		return name, nil
	}
	if p := filepath.Join(devDir, "virtio-ports", name); fileExists(p) {
		return p, nil
	}
	ents, err := os.ReadDir(sysDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var seen []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysDir, e.Name(), "name"))
		if err != nil {
			continue // a port without a name
		}
		got := strings.TrimSpace(string(b))
		if got == name {
			dev := filepath.Join(devDir, e.Name())
			if !fileExists(dev) {
				return "", fmt.Errorf("virtio port %q is %s in sysfs, but %s does not exist (is devtmpfs mounted on /dev?)", name, e.Name(), dev)
			}
			return dev, nil
		}
		seen = append(seen, fmt.Sprintf("%s (%s)", got, e.Name()))
	}
	if len(seen) == 0 {
		return "", fmt.Errorf("no virtio-serial port named %q: the guest has no named virtio ports "+
			"(QEMU: -device virtio-serial -device virtserialport,chardev=ID,name=%s; guest: the virtio_console module)", name, name)
	}
	sort.Strings(seen)
	return "", fmt.Errorf("no virtio-serial port named %q; the guest has: %s", name, strings.Join(seen, ", "))
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
