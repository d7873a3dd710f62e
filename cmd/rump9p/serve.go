package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/config"
	"github.com/rump9p/rump9p/p9srv"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/spf13/cobra"
)

func newServeCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "serve [-c FILE] [flags]",
		Short: "serve the configured mounts over 9P2000.L",
		Long: `Serves the configured mounts over 9P2000.L until SIGINT or SIGTERM, then syncs,
unmounts and marks every image clean; SIGHUP re-reads the file.

The configuration comes from FILE, then RUMP9P_ environment variables, then
the flags set on the command line, each overriding the one before (see
config/REFERENCE.md). Without -c, one empty tmpfs called "tmp" is served.`,
		Annotations: legacy,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return exitError(exitUsage, fmt.Errorf("unexpected arguments: %s", strings.Join(args, " ")))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.LoadOptions{File: file, Env: os.Environ(), Flags: cmd.Flags()})
			if err != nil {
				return exitError(exitUsage, err)
			}
			return status(serve(cfg, file, stdin, stdout, stderr))
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration `file` (YAML, TOML or JSON by extension)")
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve serves cfg until a signal, and returns the exit status; file is
// the configuration file SIGHUP re-reads.
func serve(cfg *config.Config, file string, stdin io.Reader, stdout, stderr io.Writer) int {
	// With stdio as a transport, stdout carries 9P: logs go to stderr.
	log := newLogger(cfg, stderr)
	opts := p9srvOptions(cfg, log)
	if err := identityOptions(cfg, &opts); err != nil {
		fmt.Fprintf(stderr, "rump9p serve: %v\n", err)
		return 1
	}

	k, mounted, err := bootKernel(cfg, log)
	if err != nil {
		return 1
	}

	srv := p9srv.New(k, opts)
	var wg sync.WaitGroup
	var listeners []net.Listener
	stdioDone := make(chan struct{})
	hasStdio := false
	for _, l := range cfg.Listen {
		switch l.Network {
		case "stdio":
			hasStdio = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(stdioDone)
				if err := srv.ServeConn(stdin, stdout); err != nil {
					log.Info("stdio connection ended", "err", err)
				}
			}()
		default:
			if l.Network == "unix" {
				removeStaleSocket(l.Address, log)
			}
			ln, err := net.Listen(l.Network, l.Address)
			if err != nil {
				log.Error("listen", "listener", l.String(), "err", err)
				for _, o := range listeners {
					o.Close()
				}
				k.Shutdown()
				return 1
			}
			listeners = append(listeners, ln)
			log.Info("listening", "listener", l.String())
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
					log.Error("serve", "listener", l.String(), "err", err)
				}
			}()
		}
	}
	if !hasStdio {
		printMountHelp(stderr, cfg)
	}

	defer adaptCPUs()()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(k, file, cfg, mounted, log)
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			break loop
		case <-stdioDone:
			if len(listeners) == 0 {
				log.Info("stdio closed, shutting down")
				break loop
			}
			stdioDone = nil
		}
	}
	for _, ln := range listeners {
		ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("requests still in flight at shutdown", "err", err)
	}
	cancel()
	status := 0
	if err := k.Shutdown(); err != nil {
		log.Error("kernel shutdown", "err", err)
		status = 1
	}
	for _, l := range cfg.Listen {
		if l.Network == "unix" && !strings.HasPrefix(l.Address, "@") {
			os.Remove(l.Address)
		}
	}
	log.Info("stopped")
	return status
}

func p9srvOptions(cfg *config.Config, log *slog.Logger) p9srv.Options {
	o := p9srv.Options{
		Msize:          uint32(cfg.Msize),
		ReadOnly:       cfg.Security.ReadOnly,
		MaxConnections: cfg.Security.MaxConnections,
		MaxFidsPerConn: cfg.Security.MaxFidsPerConnection,
		MaxInflight:    cfg.Security.MaxInflightPerConnection,
		MaxConnMemory:  int64(cfg.Security.MaxMemoryPerConnection),
		MaxMemory:      int64(cfg.Security.MaxMemory),
		Logger:         log,
	}
	if sq := cfg.Security.Squash; sq != nil {
		o.Squash = &vnodeops.Cred{UID: sq.UID, GID: sq.GID}
	}
	return o
}

// removeStaleSocket removes a unix socket left by a server that is gone,
// and leaves alone one that answers.
func removeStaleSocket(path string, log *slog.Logger) {
	if strings.HasPrefix(path, "@") {
		return
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return
	}
	log.Info("removing stale socket", "path", path)
	os.Remove(path)
}

// printMountHelp tells the user how Linux mounts what is served.
func printMountHelp(w io.Writer, cfg *config.Config) {
	name := "NAME"
	if len(cfg.Mounts) > 0 {
		name = cfg.Mounts[0].Name
	}
	msize := uint32(cfg.Msize)
	if msize > 1<<20 {
		msize = 1 << 20 // Linux's limit for the tcp, unix and fd transports
	}
	for _, l := range cfg.Listen {
		switch l.Network {
		case "tcp":
			host, port, _ := net.SplitHostPort(l.Address)
			fmt.Fprintf(w, "mount with: mount -t 9p -o trans=tcp,port=%s,version=9p2000.L,msize=%d,aname=%s %s /mnt\n",
				port, msize, name, host)
		case "unix":
			fmt.Fprintf(w, "mount with: mount -t 9p -o trans=unix,version=9p2000.L,msize=%d,aname=%s %s /mnt\n",
				msize, name, l.Address)
		}
	}
}

// reload re-reads the configuration file on SIGHUP and mounts, unmounts
// or remounts what changed, leaving unchanged mounts alone. Listener and
// limit changes need a restart and are only logged.
func reload(k *rumpcore.Kernel, file string, cur *config.Config, mounted map[string]config.Mount, log *slog.Logger) {
	if file == "" {
		log.Info("SIGHUP: no configuration file to re-read")
		return
	}
	next, err := config.Load(config.LoadOptions{File: file, Env: os.Environ()})
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return
	}
	if !reflect.DeepEqual(next.Listen, cur.Listen) || next.Msize != cur.Msize || !reflect.DeepEqual(next.Security, cur.Security) {
		log.Warn("SIGHUP: listen, msize and security changes take effect on restart")
	}
	want := map[string]config.Mount{}
	for _, m := range next.Mounts {
		want[m.Name] = m
	}
	for name, old := range mounted {
		if m, ok := want[name]; ok && reflect.DeepEqual(m, old) {
			continue
		}
		if err := k.Unmount("/"+name, false); err != nil {
			log.Error("SIGHUP: unmount failed; mount left as it was", "mount", name, "err", err)
			delete(want, name)
			continue
		}
		delete(mounted, name)
		// The mount point was made for the mount: without it the name is
		// gone from the server's root too.
		root := k.NewProc(vnodeops.Root)
		root.Rmdir("/" + name)
		root.Exit()
		log.Info("SIGHUP: unmounted", "mount", name)
	}
	for _, m := range next.Mounts {
		if _, ok := want[m.Name]; !ok {
			continue
		}
		if _, ok := mounted[m.Name]; ok {
			continue
		}
		if err := k.Mount("/"+m.Name, mountSpec(m, cur)); err != nil {
			log.Error("SIGHUP: mount failed", "mount", m.Name, "err", err)
			continue
		}
		mounted[m.Name] = m
		log.Info("SIGHUP: mounted", "mount", m.Name)
	}
}

func newConfigCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "check configuration files",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usagef("want a subcommand: config check FILE")
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "validate FILE and print the effective configuration",
		Long: `Validates FILE (with the RUMP9P_ environment variables over it) and prints the
effective configuration as YAML, itself a valid configuration file. Every
error names its key and value.`,
		Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := config.Load(config.LoadOptions{File: args[0], Env: os.Environ()})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Fprint(stdout, cfg.String())
			return nil
		},
	})
	return cmd
}
