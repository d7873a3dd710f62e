package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/config"
	"github.com/rump9p/rump9p/p2k"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

const mountUsage = `usage:
  rump9p mount -c FILE [-o OPTS] MOUNTPOINT
  rump9p mount [--type T] [--partition P] [--ro] [-o OPTS] IMAGE MOUNTPOINT

Mounts the configured mounts (each a directory of MOUNTPOINT), or one
image at MOUNTPOINT, on the host through FUSE, and stays in the
foreground until SIGINT, SIGTERM or fusermount3 -u MOUNTPOINT; then it
syncs, unmounts and marks the images clean.

OPTS is a comma-separated list: allow_other, default_permissions,
attr_timeout=SECONDS, entry_timeout=SECONDS (default 0 read-write, 1
read-only), fsname=NAME, debug; with an IMAGE, any other key=value is an
option of the file system driver.
`

// drainTimeout is how long a busy mount, detached lazily, may go on
// serving the files still open in it after SIGINT/SIGTERM.
const drainTimeout = 5 * time.Second

// fuseOpts is what -o sets for p2k.
type fuseOpts struct {
	p2k          p2k.Options
	attrTimeout  *time.Duration
	entryTimeout *time.Duration
	driver       map[string]string
}

// parseMountOpts splits -o values into p2k's options and the driver's.
func parseMountOpts(vals []string) (*fuseOpts, error) {
	o := &fuseOpts{driver: map[string]string{}}
	for _, v := range vals {
		for _, kv := range strings.Split(v, ",") {
			if kv == "" {
				continue
			}
			key, val, hasVal := strings.Cut(kv, "=")
			switch key {
			case "allow_other":
				o.p2k.AllowOther = true
			case "default_permissions":
				o.p2k.DefaultPermissions = true
			case "debug":
				o.p2k.Debug = true
			case "fsname":
				o.p2k.FsName = val
			case "attr_timeout", "entry_timeout":
				secs, err := strconv.ParseFloat(val, 64)
				if err != nil || secs < 0 || secs > 1e6 {
					return nil, fmt.Errorf("-o %s: want a number of seconds, got %q", key, val)
				}
				d := time.Duration(secs * float64(time.Second))
				if key == "attr_timeout" {
					o.attrTimeout = &d
				} else {
					o.entryTimeout = &d
				}
			default:
				if !hasVal {
					return nil, fmt.Errorf("-o %s: unknown option (driver options are key=value)", key)
				}
				o.driver[key] = val
			}
		}
	}
	return o, nil
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// mountCmd runs "rump9p mount": the host front, through FUSE.
func mountCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mount", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, mountUsage)
		fs.PrintDefaults()
	}
	file := fs.String("c", "", "configuration `file`: mount every configured mount as a directory of MOUNTPOINT")
	typ := fs.String("type", "auto", "file system `type` of IMAGE: auto, ext2fs, msdosfs, ...")
	part := fs.String("partition", "", "`partition` of IMAGE: a number, or auto")
	ro := fs.Bool("ro", false, "mount IMAGE read-only")
	var opts multiFlag
	fs.Var(&opts, "o", "mount `options`, comma-separated (see above)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "rump9p mount: "+format+"\n", a...)
		return 1
	}
	fo, err := parseMountOpts(opts)
	if err != nil {
		fmt.Fprintf(stderr, "rump9p mount: %v\n", err)
		return 2
	}
	var cfg *config.Config
	var image string
	switch {
	case *file != "" && fs.NArg() == 1:
		if len(fo.driver) > 0 {
			fmt.Fprintf(stderr, "rump9p mount: -o %s: driver options go in %s with -c\n", firstKey(fo.driver), *file)
			return 2
		}
		cfg, err = config.Load(config.LoadOptions{File: *file, Env: os.Environ()})
	case *file == "" && fs.NArg() == 2:
		image = fs.Arg(0)
		cfg, err = imageConfig(image, *typ, *part, *ro, fo.driver)
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		return fail("%v", err)
	}
	mnt := fs.Arg(fs.NArg() - 1)
	if fi, err := os.Stat(mnt); err != nil {
		return fail("mount point %s: %v", mnt, unwrapPathErr(err))
	} else if !fi.IsDir() {
		return fail("mount point %s: not a directory", mnt)
	}

	log := newLogger(cfg, stderr)
	k, _, err := bootKernel(cfg, log)
	if err != nil {
		return fail("%v", err)
	}
	var root *rumpcore.Vnode
	if image != "" {
		top := k.Root()
		root, err = top.Lookup(vnodeops.Root, cfg.Mounts[0].Name)
		top.Release()
		if err != nil {
			k.Shutdown()
			return fail("mount %s: %v", image, err)
		}
	} else {
		root = k.Root()
	}
	po := fo.p2k
	po.Logger = log
	readOnly := allReadOnly(cfg)
	if readOnly {
		po.AttrTimeout, po.EntryTimeout = time.Second, time.Second
	}
	if fo.attrTimeout != nil {
		po.AttrTimeout = *fo.attrTimeout
	}
	if fo.entryTimeout != nil {
		po.EntryTimeout = *fo.entryTimeout
	}
	if po.FsName == "" {
		po.FsName = "rump9p"
		if image != "" {
			po.FsName = "rump9p:" + cfg.Mounts[0].Image
		}
	}
	srv, err := p2k.Mount(root, mnt, po)
	if err != nil {
		k.Shutdown()
		return fail("%v", err)
	}
	log.Info("mounted; unmount with fusermount3 -u, or stop with SIGINT/SIGTERM", "mountpoint", srv.Mountpoint())

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case sig := <-sigs:
		log.Info("unmounting", "signal", sig.String())
		endMount(srv, sigs, log)
	case <-srv.Done():
		log.Info("unmounted from the host", "mountpoint", srv.Mountpoint())
	}
	if err := k.Shutdown(); err != nil {
		return fail("shutdown: %v", err)
	}
	log.Info("stopped")
	return 0
}

// endMount unmounts srv; when host processes still use the mount it is
// detached lazily and served until they let go, a second signal or
// drainTimeout, whichever comes first. Writes already answered are in
// the kernel either way, and the caller's Shutdown syncs them.
func endMount(srv *p2k.Server, sigs <-chan os.Signal, log *slog.Logger) {
	err := srv.Unmount()
	if err == nil {
		return
	}
	log.Warn("mount point busy; detaching it and serving the files still open", "err", err, "for", drainTimeout)
	if err := srv.UnmountLazy(); err != nil {
		log.Error("lazy unmount", "err", err)
	}
	select {
	case <-srv.Done():
	case <-sigs:
		log.Warn("second signal: ending with files still open")
	case <-time.After(drainTimeout):
		log.Warn("files still open after the drain timeout; ending anyway", "mountpoint", srv.Mountpoint())
	}
}

// imageConfig is the configuration of "rump9p mount IMAGE": one mount,
// validated as a configuration file's would be.
func imageConfig(image, typ, part string, ro bool, opts map[string]string) (*config.Config, error) {
	abs, err := filepath.Abs(image)
	if err != nil {
		return nil, err
	}
	cfg := config.Defaults()
	if len(opts) == 0 {
		opts = nil
	}
	cfg.Mounts = []config.Mount{{Name: "image", Type: typ, Image: abs, Partition: part, ReadOnly: ro, Options: opts}}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("image %s: %w", image, err)
	}
	return cfg, nil
}

// allReadOnly reports whether every mount of cfg is read-only.
func allReadOnly(cfg *config.Config) bool {
	if cfg.Security.ReadOnly {
		return true
	}
	for _, m := range cfg.Mounts {
		if !m.ReadOnly {
			return false
		}
	}
	return len(cfg.Mounts) > 0
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
