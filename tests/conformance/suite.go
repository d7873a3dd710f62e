// Package conformance is a file system conformance suite in the spirit of
// NetBSD's tests/fs (ATF_TC_FSAPPLY): one set of test bodies, applied to
// every file system driver through the kernel's system-call API
// (rumpcore.Proc).
//
// A driver's test file describes how to make a fresh file system with a
// [Setup] and calls [Run]:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Setup{Name: "tmpfs", Mount: ..., Caps: ...})
//	}
//
// Each case boots its own kernel, mounts a fresh file system at "/mnt",
// runs as a subtest, shuts the kernel down and then calls the checker the
// Setup returned. Cases a format cannot express (hard links on FAT, any
// write on ISO 9660) are skipped with a reason named after the missing
// capability.
package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// Caps tells which features a format has, so that cases it cannot express
// are skipped with a reason.
type Caps struct {
	// Writable: the driver can mount the format read-write. When false only
	// the cases that need no writing run, on a read-only mount of the seed
	// tree (see SeedFS).
	Writable bool
	// HardLinks: more than one name per file (link(2)).
	HardLinks bool
	// Symlinks: symbolic links.
	Symlinks bool
	// Ownership: a file's uid and gid are stored, 32 bits each (chown(2)).
	Ownership bool
	// Permissions: the permission bits are stored (chmod(2)), so that a
	// non-root credential can be denied access.
	Permissions bool
	// Sticky: the S_ISVTX bit on directories is stored.
	Sticky bool
	// Sparse: holes take no storage, so Attr.Blocks may be smaller than the
	// size.
	Sparse bool
	// Mknod: named pipes, sockets and device nodes can be made.
	Mknod bool
	// DirLinkCount: a directory's link count is 2 plus its number of
	// subdirectories.
	DirLinkCount bool
	// StableInodes: a file keeps its inode number across a rename, and the
	// Ino of a directory entry equals the Ino Stat reports.
	StableInodes bool
	// Ctime: the format keeps a change time.
	Ctime bool
	// PosixNames: a name may hold any byte but '/' and NUL (UTF-8 or
	// not, spaces, control characters), and names are case-sensitive.
	PosixNames bool
	// MaxFileSize is the largest size a file may have; 0 means no limit
	// below 2^63-1.
	MaxFileSize int64
	// NameMax is the longest name in bytes; 0 means 255.
	NameMax int
	// SymlinkMax is the longest symbolic link target in bytes; 0 means
	// 4095 (Linux's PATH_MAX - 1). ext2 keeps a target in one block, so
	// with 1 KiB blocks it is 1023 (longer ones: ENAMETOOLONG).
	SymlinkMax int
	// TimeGranularity is the resolution of stored atime and mtime; 0 means
	// one nanosecond.
	TimeGranularity time.Duration
	// AtimeGranularity is the resolution of atime where it is coarser than
	// TimeGranularity (FAT keeps a date: one day); 0 means TimeGranularity.
	AtimeGranularity time.Duration
}

// Setup describes one driver's fresh mounts for the suite.
type Setup struct {
	// Name names the driver in messages.
	Name string
	// Mount makes a fresh file system and mounts it at target in k
	// (read-write unless ro). A read-only file system must hold the seed
	// tree (see SeedFS and WriteSeedDir); a read-write one must be empty
	// but for what the format always holds (lost+found). Mount may be
	// called twice in one kernel (at "/mnt" and below it). It returns a
	// function the suite calls after k.Shutdown to check the image with an
	// independent checker (e.g. e2fsck -fn), or nil. Mount fails the test
	// (t.Fatal) when it cannot mount.
	Mount func(t *testing.T, k *rumpcore.Kernel, target string, ro bool) (check func(t *testing.T))
	// Caps tells which features the format has.
	Caps Caps
	// RealClock says the file times come from a clock the suite does not
	// drive (a mount through another kernel or the host): the cases then
	// sleep to let time pass. Without it the suite gives the kernel a fake
	// clock (rumpcore.Options.Now, which reaches every driver through
	// MountArgs.Now) and moves it forward instead of sleeping; a Mount
	// that starts a kernel of its own can share it through Kernel.Now.
	RealClock bool
	// FillLimit is a size in bytes at which the fresh file system is full
	// for certain: writing this much into one file must fail with ENOSPC.
	// It should be small enough to fill fast. 0 fails the ENOSPC case.
	FillLimit int64
}

// mode says how a case mounts.
type mode int

const (
	// modeRW: the case writes; it is skipped on a read-only format.
	modeRW mode = iota
	// modeEither: the case only reads what ensureSeed provides; it runs on
	// a read-write mount, or on a read-only one for a read-only format.
	modeEither
	// modeRO: the case mounts read-only (seeded).
	modeRO
)

type testCase struct {
	name string
	mode mode
	// need returns why the case cannot run on a format with caps c, or "".
	need func(c Caps) string
	fn   func(e *env)
}

func allCases() []testCase {
	return slices.Concat(
		ioCases(),
		truncCases(),
		renameCases(),
		linkCases(),
		dirCases(),
		attrCases(),
		permCases(),
		spaceCases(),
		mountCases(),
		argCases(),
		concurrentCases(),
		moreCases(),
	)
}

// Run runs every case of the suite as a subtest of t on fresh mounts that s
// makes.
func Run(t *testing.T, s Setup) {
	if s.Mount == nil {
		t.Fatalf("conformance: Setup %q has no Mount", s.Name)
	}
	seen := map[string]bool{}
	for _, c := range allCases() {
		if seen[c.name] {
			t.Fatalf("conformance: case %s defined twice", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) { runCase(t, s, c) })
	}
}

func runCase(t *testing.T, s Setup, c testCase) {
	if c.need != nil {
		if why := c.need(s.Caps); why != "" {
			t.Skipf("%s: %s", s.Name, why)
		}
	}
	readOnly := false
	switch c.mode {
	case modeRW:
		if !s.Caps.Writable {
			t.Skipf("%s: read-only format", s.Name)
		}
	case modeEither:
		readOnly = !s.Caps.Writable
	case modeRO:
		readOnly = true
	}
	var clock *fakeClock
	opts := rumpcore.Options{}
	if !s.RealClock {
		clock = newFakeClock()
		opts.Now = clock.Now
	}
	k, err := rumpcore.Init(opts)
	if err != nil {
		t.Fatalf("rumpcore.Init: %v", err)
	}
	e := &env{t: t, k: k, s: s, caps: s.Caps, mnt: "/mnt", ro: readOnly, clock: clock}
	defer func() {
		if err := k.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for _, chk := range e.checks {
			chk(t)
		}
	}()
	e.mount(e.mnt, readOnly)
	e.p = k.NewProc(vnodeops.Root)
	if e.p == nil {
		t.Fatalf("NewProc returned nil")
	}
	e.p.Umask(0)
	c.fn(e)
}

// env is what a case body works with: a booted kernel with a fresh mount
// at mnt and a root process whose umask is 0.
type env struct {
	t      *testing.T
	k      *rumpcore.Kernel
	p      *rumpcore.Proc
	s      Setup
	caps   Caps
	mnt    string
	ro     bool
	checks []func(*testing.T)
	clock  *fakeClock // nil with Setup.RealClock
}

// fakeClock is a clock that moves only when told: file times under it
// are exact, and no case sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newFakeClock starts at the present, so that formats that keep only
// dates from 1980 (FAT) or 1970 on store its times.
func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Now().Truncate(2 * time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// now is the time of the clock file times come from.
func (e *env) now() time.Time {
	if e.clock != nil {
		return e.clock.Now()
	}
	return time.Now()
}

func (e *env) mount(target string, readOnly bool) {
	e.t.Helper()
	if chk := e.s.Mount(e.t, e.k, target, readOnly); chk != nil {
		e.checks = append(e.checks, chk)
	}
}

// path returns the absolute path of rel below the mount.
func (e *env) path(rel string) string {
	if rel == "" {
		return e.mnt
	}
	return e.mnt + "/" + rel
}

// user returns a process with uid and gid (primary group = gid) and umask 0.
func (e *env) user(uid, gid uint32) *rumpcore.Proc {
	p := e.k.NewProc(vnodeops.Cred{UID: uid, GID: gid})
	p.Umask(0)
	return p
}

func (e *env) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf(format, args...)
}

// ok fails the test when err is not nil.
func (e *env) ok(err error, format string, args ...any) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", fmt.Sprintf(format, args...), errName(err))
	}
}

// errName spells an errno as its symbol ("ENOENT") for messages.
func errName(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		if n, ok := errnoNames[en]; ok {
			return fmt.Sprintf("%s (%v)", n, err)
		}
	}
	if err == nil {
		return "success"
	}
	return err.Error()
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EIO: "EIO",
	syscall.EBADF: "EBADF", syscall.EACCES: "EACCES", syscall.EBUSY: "EBUSY",
	syscall.EEXIST: "EEXIST", syscall.EXDEV: "EXDEV", syscall.ENOTDIR: "ENOTDIR",
	syscall.EISDIR: "EISDIR", syscall.EINVAL: "EINVAL", syscall.EFBIG: "EFBIG",
	syscall.ENOSPC: "ENOSPC", syscall.EROFS: "EROFS", syscall.EMLINK: "EMLINK",
	syscall.ENAMETOOLONG: "ENAMETOOLONG", syscall.ENOTEMPTY: "ENOTEMPTY",
	syscall.ELOOP: "ELOOP", syscall.ENOSYS: "ENOSYS", syscall.ENOTSUP: "ENOTSUP",
	syscall.ESPIPE: "ESPIPE", syscall.EOVERFLOW: "EOVERFLOW",
}

// want fails the test unless err is one of wants.
func (e *env) want(err error, op string, wants ...syscall.Errno) {
	e.t.Helper()
	if !isErr(err, wants...) {
		names := make([]string, len(wants))
		for i, w := range wants {
			names[i] = errName(w)
		}
		e.t.Fatalf("%s: got %s, want %s", op, errName(err), strings.Join(names, " or "))
	}
}

// wantSoft is want that reports with Errorf and goes on.
func (e *env) wantSoft(err error, op string, wants ...syscall.Errno) {
	e.t.Helper()
	if !isErr(err, wants...) {
		names := make([]string, len(wants))
		for i, w := range wants {
			names[i] = errName(w)
		}
		e.t.Errorf("%s: got %s, want %s", op, errName(err), strings.Join(names, " or "))
	}
}

func isErr(err error, wants ...syscall.Errno) bool {
	for _, w := range wants {
		if errors.Is(err, w) {
			return true
		}
	}
	return false
}

// writeFile makes (or truncates) rel holding data with perm, as root.
func (e *env) writeFile(rel string, data []byte, perm uint32) {
	e.t.Helper()
	writeFileAs(e, e.p, rel, data, perm)
}

func writeFileAs(e *env, p *rumpcore.Proc, rel string, data []byte, perm uint32) {
	e.t.Helper()
	fd, err := p.Open(e.path(rel), syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC, perm)
	e.ok(err, "open %s for writing", rel)
	if len(data) > 0 {
		n, err := p.Write(fd, data)
		e.ok(err, "write %s", rel)
		if n != len(data) {
			e.fatalf("write %s: wrote %d of %d bytes", rel, n, len(data))
		}
	}
	e.ok(p.Close(fd), "close %s", rel)
}

// readFile returns the whole content of rel, read as root.
func (e *env) readFile(rel string) []byte {
	e.t.Helper()
	return readFileAs(e, e.p, rel)
}

func readFileAs(e *env, p *rumpcore.Proc, rel string) []byte {
	e.t.Helper()
	fd, err := p.Open(e.path(rel), syscall.O_RDONLY, 0)
	e.ok(err, "open %s for reading", rel)
	defer p.Close(fd)
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := p.Read(fd, buf)
		e.ok(err, "read %s", rel)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// checkContent fails unless rel holds exactly want.
func (e *env) checkContent(rel string, want []byte) {
	e.t.Helper()
	got := e.readFile(rel)
	if !bytes.Equal(got, want) {
		e.t.Fatalf("%s: content differs: %s", rel, diffBytes(got, want))
	}
}

// diffBytes describes where got and want first differ.
func diffBytes(got, want []byte) string {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: got %#02x, want %#02x (len got %d, want %d)", i, got[i], want[i], len(got), len(want))
		}
	}
	return fmt.Sprintf("length got %d, want %d", len(got), len(want))
}

func (e *env) stat(rel string) vnodeops.Attr {
	e.t.Helper()
	a, err := e.p.Stat(e.path(rel))
	e.ok(err, "stat %s", rel)
	return a
}

func (e *env) lstat(rel string) vnodeops.Attr {
	e.t.Helper()
	a, err := e.p.Lstat(e.path(rel))
	e.ok(err, "lstat %s", rel)
	return a
}

func (e *env) mkdir(rel string, perm uint32) {
	e.t.Helper()
	e.ok(e.p.Mkdir(e.path(rel), perm), "mkdir %s", rel)
}

func (e *env) exists(rel string) bool {
	e.t.Helper()
	_, err := e.p.Lstat(e.path(rel))
	if err != nil && !isErr(err, syscall.ENOENT) {
		e.fatalf("lstat %s: %v", rel, errName(err))
	}
	return err == nil
}

// statvfs returns the statvfs of the mount.
func (e *env) statvfs() vnodeops.Statvfs {
	e.t.Helper()
	st, err := e.p.Statvfs(e.mnt)
	e.ok(err, "statvfs %s", e.mnt)
	return st
}

// readdir lists the directory rel with Getdents batches of size batch and
// returns the entries in order.
func (e *env) readdir(rel string, batch int) []vnodeops.Dirent {
	e.t.Helper()
	return readdirAs(e, e.p, rel, batch)
}

func readdirAs(e *env, p *rumpcore.Proc, rel string, batch int) []vnodeops.Dirent {
	e.t.Helper()
	fd, err := p.Open(e.path(rel), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "open directory %s", rel)
	defer p.Close(fd)
	var out []vnodeops.Dirent
	for i := 0; ; i++ {
		ents, err := p.Getdents(fd, batch)
		e.ok(err, "getdents %s", rel)
		if len(ents) == 0 {
			return out
		}
		if len(ents) > batch {
			e.fatalf("getdents %s: %d entries, asked for at most %d", rel, len(ents), batch)
		}
		out = append(out, ents...)
		if i > 1<<20 {
			e.fatalf("getdents %s never ends", rel)
		}
	}
}

// names returns the entry names of ents but "." and "..", sorted.
func names(ents []vnodeops.Dirent) []string {
	var out []string
	for _, d := range ents {
		if d.Name != "." && d.Name != ".." {
			out = append(out, d.Name)
		}
	}
	slices.Sort(out)
	return out
}

// userNames returns names of ents without what the format always holds
// (lost+found) and "."/"..".
func userNames(ents []vnodeops.Dirent) []string {
	return slices.DeleteFunc(names(ents), func(n string) bool { return n == "lost+found" })
}

// pattern returns n deterministic bytes that differ with seed, so that a
// misplaced block shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// pread reads exactly n bytes at off of fd.
func (e *env) pread(p *rumpcore.Proc, fd int, n int, off int64) []byte {
	e.t.Helper()
	b := make([]byte, n)
	got := 0
	for got < n {
		m, err := p.Pread(fd, b[got:], off+int64(got))
		e.ok(err, "pread %d bytes at %d", n-got, off+int64(got))
		if m == 0 {
			e.fatalf("pread at %d: unexpected end of file after %d of %d bytes", off, got, n)
		}
		got += m
	}
	return b
}

// pwrite writes b at off of fd, all of it.
func (e *env) pwrite(p *rumpcore.Proc, fd int, b []byte, off int64) {
	e.t.Helper()
	n, err := p.Pwrite(fd, b, off)
	e.ok(err, "pwrite %d bytes at %d", len(b), off)
	if n != len(b) {
		e.fatalf("pwrite at %d: wrote %d of %d bytes", off, n, len(b))
	}
}

// blockSize returns the file system's block size (at least 512).
func (e *env) blockSize() int {
	st := e.statvfs()
	bs := int(st.Frsize)
	if bs == 0 {
		bs = int(st.Bsize)
	}
	if bs < 512 {
		bs = 512
	}
	return bs
}

func (e *env) nameMax() int {
	if e.caps.NameMax > 0 {
		return e.caps.NameMax
	}
	return 255
}

// atimeGranularity is the resolution of stored access times.
func (e *env) atimeGranularity() time.Duration {
	if e.caps.AtimeGranularity > 0 {
		return e.caps.AtimeGranularity
	}
	return e.caps.TimeGranularity
}

// tick lets enough time pass that a time stamp taken now differs from
// one taken before.
func (e *env) tick() {
	d := max(e.caps.TimeGranularity, 20*time.Millisecond)
	if e.clock != nil {
		e.clock.advance(d + d/2)
		return
	}
	time.Sleep(d + d/2)
}

// ---- The seed tree ----

// The seed tree, which a read-only mount holds (a writable format gets it
// made through the kernel by the cases that use it).
const (
	// SeedFile is a regular file of mode 0644 holding SeedData.
	SeedFile = "file"
	// SeedDir is a directory of mode 0755 holding SeedInner.
	SeedDir = "dir"
	// SeedInner is a regular file of mode 0644 holding SeedInnerData.
	SeedInner = "dir/inner"
	// SeedLink is a symbolic link to "file", present when the format has
	// symbolic links.
	SeedLink = "link"
	// SeedInnerData is the content of SeedInner.
	SeedInnerData = "inner\n"
)

// SeedData returns the content of SeedFile: 20,000 bytes, so that it
// spans several blocks of any format.
func SeedData() []byte { return pattern(20000, 42) }

// WriteSeedDir writes the seed tree into the host directory dir, for image
// tools that build a file system from a directory (mke2fs -d, makefs,
// xorriso).
func WriteSeedDir(dir string, c Caps) error {
	if err := os.WriteFile(filepath.Join(dir, SeedFile), SeedData(), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, SeedDir), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, SeedInner), []byte(SeedInnerData), 0o644); err != nil {
		return err
	}
	// Mode bits are subject to the host umask; make them exact.
	for _, f := range []struct {
		p string
		m os.FileMode
	}{{SeedFile, 0o644}, {SeedDir, 0o755}, {SeedInner, 0o644}} {
		if err := os.Chmod(filepath.Join(dir, f.p), f.m); err != nil {
			return err
		}
	}
	if c.Symlinks {
		if err := os.Symlink("file", filepath.Join(dir, SeedLink)); err != nil {
			return err
		}
	}
	return nil
}

// SeedFS writes the seed tree into a freshly mounted driver file system
// through its vnode operations, for formats (tmpfs) that have no image to
// prepare. It leaves no vnode live: each one it gets is inactivated and
// reclaimed before it returns.
func SeedFS(fs vnodeops.FS, c Caps) (err error) {
	var live []vnodeops.Vnode
	defer func() {
		for i := len(live) - 1; i >= 0; i-- {
			if e := live[i].Inactive(); e != nil && err == nil {
				err = e
			}
			if e := live[i].Reclaim(); e != nil && err == nil {
				err = e
			}
		}
	}()
	get := func(ino uint64, err error) (vnodeops.ReadWriteVnode, error) {
		if err != nil {
			return nil, err
		}
		v, err := fs.VGet(ino)
		if err != nil {
			return nil, err
		}
		live = append(live, v)
		rw, ok := v.(vnodeops.ReadWriteVnode)
		if !ok {
			return nil, fmt.Errorf("seed: inode %d of a read-only format: %w", ino, syscall.EROFS)
		}
		return rw, nil
	}
	write := func(v vnodeops.ReadWriteVnode, data []byte) error {
		if err := v.Open(vnodeops.OWronly); err != nil {
			return err
		}
		n, err := v.Write(data, 0)
		if cerr := v.Close(vnodeops.OWronly); err == nil {
			err = cerr
		}
		if err == nil && n != len(data) {
			err = fmt.Errorf("seed: short write %d of %d", n, len(data))
		}
		return err
	}
	root, err := get(fs.Root(), nil)
	if err != nil {
		return err
	}
	f, err := get(root.Create(SeedFile, 0o644, 0, 0))
	if err != nil {
		return err
	}
	if err := write(f, SeedData()); err != nil {
		return err
	}
	d, err := get(root.Mkdir(SeedDir, 0o755, 0, 0))
	if err != nil {
		return err
	}
	in, err := get(d.Create("inner", 0o644, 0, 0))
	if err != nil {
		return err
	}
	if err := write(in, []byte(SeedInnerData)); err != nil {
		return err
	}
	if c.Symlinks {
		if _, err := get(root.Symlink(SeedLink, "file", 0, 0)); err != nil {
			return err
		}
	}
	return fs.Sync()
}

// ensureSeed makes the seed tree on a read-write mount, or checks that a
// read-only mount holds it.
func (e *env) ensureSeed() {
	e.t.Helper()
	if !e.ro {
		e.writeFile(SeedFile, SeedData(), 0o644)
		e.mkdir(SeedDir, 0o755)
		e.writeFile(SeedInner, []byte(SeedInnerData), 0o644)
		if e.caps.Symlinks {
			e.ok(e.p.Symlink("file", e.path(SeedLink)), "symlink %s", SeedLink)
		}
	}
	e.checkContent(SeedFile, SeedData())
	e.checkContent(SeedInner, []byte(SeedInnerData))
	if a := e.stat(SeedDir); !a.IsDir() {
		e.fatalf("seed %s is not a directory: mode %#o", SeedDir, a.Mode)
	}
	if e.caps.Symlinks {
		if a := e.lstat(SeedLink); a.Mode&vnodeops.S_IFMT != vnodeops.S_IFLNK {
			e.fatalf("seed %s is not a symbolic link: mode %#o", SeedLink, a.Mode)
		}
	}
}

// needs returns a need function that asks for every capability named.
func needs(what ...string) func(Caps) string {
	return func(c Caps) string {
		for _, w := range what {
			var have bool
			switch w {
			case "hardlinks":
				have = c.HardLinks
			case "symlinks":
				have = c.Symlinks
			case "ownership":
				have = c.Ownership
			case "permissions":
				have = c.Permissions
			case "sticky":
				have = c.Sticky
			case "sparse":
				have = c.Sparse
			case "dirlinkcount":
				have = c.DirLinkCount
			case "stableinodes":
				have = c.StableInodes
			case "ctime":
				have = c.Ctime
			case "posixnames":
				have = c.PosixNames
			default:
				panic("conformance: unknown capability " + w)
			}
			if !have {
				return "format has no " + w
			}
		}
		return ""
	}
}

func isDir(a vnodeops.Attr) bool { return a.Mode&vnodeops.S_IFMT == vnodeops.S_IFDIR }
