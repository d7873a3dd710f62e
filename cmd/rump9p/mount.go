package main

import (
	"errors"
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
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const mountLong = `Mounts the configured mounts (each a directory of MOUNTPOINT), or one
image at MOUNTPOINT, on the host through FUSE, and stays in the
foreground until SIGINT, SIGTERM or fusermount3 -u MOUNTPOINT; then it
syncs, unmounts and marks the images clean.

OPTS is a comma-separated list: allow_other, default_permissions,
attr_timeout=SECONDS, entry_timeout=SECONDS (default 0 read-write, 1
read-only), fsname=NAME, debug; with an IMAGE, any other key=value is an
option of the file system driver.`

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

// openFlags say how to open images, alike for mount and the image
// commands.
type openFlags struct {
	config    string
	typ       string
	partition string
	ro        bool
	opts      []string
}

// register defines the flags on fl; configUse and optsUse tell what -c
// and -o do for the command.
func (f *openFlags) register(fl *pflag.FlagSet, configUse, optsUse string) {
	fl.StringVarP(&f.config, "config", "c", "", "configuration `file`: "+configUse)
	fl.StringVar(&f.typ, "type", "auto", "file system `type` of the image: auto, ext2fs, msdosfs, cd9660, ...")
	fl.StringVar(&f.partition, "partition", "", "`partition` of a disk image: a number, or auto")
	fl.BoolVar(&f.ro, "ro", false, "open the image read-only (writing fails with EROFS)")
	fl.StringArrayVarP(&f.opts, "options", "o", nil, optsUse)
}

func newMountCmd(stderr io.Writer) *cobra.Command {
	var f openFlags
	cmd := &cobra.Command{
		Use:         "mount [--type T] [--partition P] [--ro] [-o OPTS] IMAGE|-c FILE MOUNTPOINT",
		Short:       "mount an image, or the configured mounts, on the host through FUSE",
		Long:        mountLong,
		Annotations: legacy,
		Args:        rangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			if (f.config != "") != (len(args) == 1) {
				return usagef("want IMAGE MOUNTPOINT, or -c FILE MOUNTPOINT")
			}
			fo, err := parseMountOpts(f.opts)
			if err != nil {
				return usageError{err}
			}
			if f.config != "" && len(fo.driver) > 0 {
				return usagef("-o %s: driver options go in %s with -c", firstKey(fo.driver), f.config)
			}
			return status(mountCmd(f, fo, args, stderr))
		},
	}
	f.register(cmd.Flags(), "mount every configured mount as a directory of MOUNTPOINT", "mount `options`, comma-separated (see above); repeatable")
	return cmd
}

// mountCmd runs "rump9p mount": the host front, through FUSE. args are
// the checked positional arguments.
func mountCmd(f openFlags, fo *fuseOpts, args []string, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "rump9p mount: "+format+"\n", a...)
		return exitFailed
	}
	var cfg *config.Config
	var image string
	var err error
	if f.config != "" {
		cfg, err = config.Load(config.LoadOptions{File: f.config, Env: os.Environ()})
	} else {
		image = args[0]
		cfg, err = imageConfig(image, f.typ, f.partition, f.ro, fo.driver)
	}
	if err != nil {
		return fail("%v", err)
	}
	mnt := args[len(args)-1]
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

	defer adaptCPUs()()
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
