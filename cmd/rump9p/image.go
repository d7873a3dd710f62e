package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/config"
	"github.com/rump9p/rump9p/ukfs"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// imageFlags are the flags every image command takes: how to open the
// image (as rump9p mount does), who to act as, and progress.
type imageFlags struct {
	openFlags
	uid, gid uint32
	progress string
}

func (f *imageFlags) register(cmd *cobra.Command, progress bool) {
	fl := cmd.Flags()
	f.openFlags.register(fl, "MOUNT:PATH names a path in its mount MOUNT", "driver `options`, comma-separated key=value; repeatable")
	fl.Uint32Var(&f.uid, "uid", 0, "act as user `UID` (default root)")
	fl.Uint32Var(&f.gid, "gid", 0, "act as group `GID` (default: the --uid value)")
	if progress {
		fl.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: never, auto (when stderr is a terminal) or always")
	}
}

// location is one path argument: a path on the host, or a path in an
// image (IMAGE[@PARTITION]:PATH, or MOUNT:PATH with -c).
type location struct {
	prefix string        // "IMAGE[@P]" or "MOUNT" as written; "" on the host
	image  string        // the image file
	part   string        // the partition ("" for --partition)
	mount  *config.Mount // the configured mount, with -c
	path   string        // in the image: absolute and clean; on the host: as given
}

func (l location) host() bool { return l.prefix == "" }

// key identifies the image (and partition) a location is in.
func (l location) key() string { return l.image + "@" + l.part }

// at returns the location of path p of the same image or host.
func (l location) at(p string) location {
	l.path = p
	if !l.host() {
		l.path = ukfs.Clean(p)
	}
	return l
}

func (l location) String() string {
	if l.host() {
		return l.path
	}
	return l.prefix + ":" + l.path
}

// session is one run of an image command: its flags, its streams and the
// images it has open.
type session struct {
	name           string // "rump9p ls"
	flags          *imageFlags
	gidSet         bool
	stdin          io.Reader
	stdout, stderr io.Writer
	cfg            *config.Config
	open           map[string]*openImage
	failed         bool
}

type openImage struct {
	fs    *ukfs.FS
	write bool
}

func newSession(cmd *cobra.Command, f *imageFlags, stdin io.Reader, stdout, stderr io.Writer) (*session, error) {
	s := &session{
		name: cmd.CommandPath(), flags: f, gidSet: cmd.Flags().Changed("gid"),
		stdin: stdin, stdout: stdout, stderr: stderr, open: map[string]*openImage{},
	}
	switch f.progress {
	case "", "auto", "never", "always":
	default:
		return nil, usagef("--progress %q: want never, auto or always", f.progress)
	}
	if _, err := s.driverOptions(); err != nil {
		return nil, usageError{err}
	}
	if f.config != "" {
		cfg, err := config.Load(config.LoadOptions{File: f.config, Env: os.Environ()})
		if err != nil {
			return nil, err
		}
		s.cfg = cfg
	}
	return s, nil
}

func (s *session) driverOptions() (map[string]string, error) {
	var m map[string]string
	for _, v := range s.flags.opts {
		for _, kv := range strings.Split(v, ",") {
			if kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("-o %s: driver options are key=value", kv)
			}
			if m == nil {
				m = map[string]string{}
			}
			m[k] = val
		}
	}
	return m, nil
}

func (s *session) cred() vnodeops.Cred {
	gid := s.flags.gid
	if !s.gidSet {
		gid = s.flags.uid
	}
	return vnodeops.Cred{UID: s.flags.uid, GID: gid}
}

// locate parses arg. With imageOnly the argument must be in an image:
// "IMAGE" alone is its root, and the text before the first colon is the
// image even when no such file exists (opening it then says so).
// Otherwise arg is in an image only when the text before one of its
// colons names an image file (or a configured mount with -c), and is a
// host path if not.
func (s *session) locate(arg string, imageOnly bool) location {
	if s.cfg != nil {
		name, p, ok := strings.Cut(arg, ":")
		if !ok && imageOnly {
			name, p, ok = arg, "/", true
		}
		for i := range s.cfg.Mounts {
			if m := &s.cfg.Mounts[i]; ok && m.Name == name {
				return location{prefix: name, image: m.Image, part: m.Partition, mount: m, path: ukfs.Clean(p)}
			}
		}
	}
	for i := 0; i < len(arg); i++ {
		if arg[i] != ':' {
			continue
		}
		if image, part, ok := splitImage(arg[:i]); ok {
			return location{prefix: arg[:i], image: image, part: part, path: ukfs.Clean(arg[i+1:])}
		}
	}
	if !imageOnly {
		return location{path: arg}
	}
	prefix, p, _ := strings.Cut(arg, ":")
	image, part, ok := splitImage(prefix)
	if !ok {
		image, part = prefix, ""
	}
	return location{prefix: prefix, image: image, part: part, path: ukfs.Clean(p)}
}

// splitImage reports whether s names an image file, IMAGE or
// IMAGE@PARTITION, and returns the file and the partition.
func splitImage(s string) (image, part string, ok bool) {
	if isImageFile(s) {
		return s, "", true
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", "", false
	}
	image, part = s[:at], s[at+1:]
	if part != "auto" && (part == "" || strings.Trim(part, "0123456789") != "") {
		return "", "", false
	}
	return image, part, isImageFile(image)
}

func isImageFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && (fi.Mode().IsRegular() || fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0)
}

// fs opens the image of l (once per session), read-write when write is
// set and --ro is not.
func (s *session) fs(l location, write bool) (*ukfs.FS, error) {
	write = write && !s.flags.ro
	if o, ok := s.open[l.key()]; ok {
		if o.write || !write {
			return o.fs, nil
		}
		// Opened for reading before: reopen it for writing.
		if err := o.fs.Close(); err != nil {
			return nil, err
		}
		delete(s.open, l.key())
	}
	opts, _ := s.driverOptions()
	o := ukfs.Options{
		Type:          s.flags.typ,
		Partition:     s.flags.partition,
		ReadOnly:      !write,
		DriverOptions: opts,
		Cred:          s.cred(),
		Logger:        slog.New(slog.NewTextHandler(s.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if l.part != "" {
		o.Partition = l.part
	}
	if m := l.mount; m != nil {
		o.Type, o.Partition, o.DriverOptions = m.Type, m.Partition, m.Options
		o.ReadOnly = o.ReadOnly || m.ReadOnly
		o.CacheBytes = int64(s.cfg.Cache)
	}
	f, err := ukfs.Open(l.image, o)
	if err != nil {
		return nil, err
	}
	s.open[l.key()] = &openImage{fs: f, write: write}
	return f, nil
}

// close closes every image the session opened and returns the command's
// result: exit status 1 if anything failed.
func (s *session) close() error {
	for k, o := range s.open {
		if err := o.fs.Close(); err != nil {
			s.report(err)
		}
		delete(s.open, k)
	}
	if s.failed {
		return exitStatus(exitFailed)
	}
	return nil
}

// report prints err and marks the command failed.
func (s *session) report(err error) {
	s.failed = true
	fmt.Fprintf(s.stderr, "%s: %v\n", s.name, err)
}

// imgErr relabels an error of ukfs, which names paths of the image, with
// the location's prefix, so that the user reads IMAGE:PATH.
func imgErr(l location, err error) error {
	if err == nil || l.host() {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: l.prefix + ":" + ukfs.Clean(pe.Path), Err: pe.Err}
	}
	var le *ukfs.LinkError
	if errors.As(err, &le) {
		return &ukfs.LinkError{Op: le.Op, Old: le.Old, New: l.prefix + ":" + ukfs.Clean(le.New), Err: le.Err}
	}
	return err
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a progress bar of bytes and files; a nil *progress shows
// nothing.
type progress struct {
	bar   *progressbar.ProgressBar
	what  string
	files int
}

// newProgress starts a bar for total bytes (-1: unknown) when --progress
// and stderr allow it.
func (s *session) newProgress(what string, total int64) *progress {
	switch s.flags.progress {
	case "always":
	case "auto", "":
		if !isTerminal(s.stderr) {
			return nil
		}
	default:
		return nil
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(s.stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100e6),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(s.stderr) }),
	)
	return &progress{bar: bar, what: what}
}

// Write counts n bytes done.
func (p *progress) Write(b []byte) (int, error) {
	if p != nil {
		p.bar.Add(len(b))
	}
	return len(b), nil
}

// file counts one more file done.
func (p *progress) file() {
	if p == nil {
		return
	}
	p.files++
	p.bar.Describe(fmt.Sprintf("%s: %d files", p.what, p.files))
}

func (p *progress) finish() {
	if p != nil {
		p.bar.Finish()
	}
}

// errnoOf returns the errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	errors.As(err, &e)
	return e
}
