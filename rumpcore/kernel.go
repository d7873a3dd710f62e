// Package rumpcore is rump9p's kernel: one namespace of mounted file
// systems, a vnode cache with reference counts, path resolution, permission
// checks, and the system calls a program makes on them, in the spirit of
// NetBSD's librump, rumpvfs and rump_syscalls.
//
// # Booting and mounting
//
//	k, err := rumpcore.Init(rumpcore.Options{})
//	err = k.Mount("/data", rumpcore.MountSpec{Type: "tmpfs"})
//	p := k.NewProc(vnodeops.Root)
//	fd, err := p.Open("/data/hello", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
//	...
//	err = k.Shutdown()
//
// The root of the namespace is an in-memory file system; Mount creates the
// directories of a mount point on demand. Drivers register themselves with
// package vnodeops; a program imports the ones it wants (for example
// _ "github.com/rump9p/rump9p/vnodeops/tmpfs").
//
// # Two levels
//
// [Proc] offers path-based system calls with a descriptor table, as a
// process has. [Vnode] offers the operations one path component at a time,
// each checked against a credential, for servers (p9srv) that keep their
// own handles. Both return only nil or syscall.Errno errors.
//
// # References
//
// Every *Vnode a function returns carries one reference that the caller
// owns and gives back with Release. The kernel keeps one Vnode per (mount,
// inode) while it is referenced; when the last reference goes the driver's
// Inactive (which frees an unlinked file) and Reclaim run.
package rumpcore

import (
	"errors"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// Options configures Init.
type Options struct {
	// Logger receives the kernel's and drivers' log lines; nil discards.
	Logger *slog.Logger
	// Now is the clock used for file times; nil means time.Now.
	Now func() time.Time
	// CacheBytes is the default buffer cache budget of an image mount;
	// 0 means 32 MiB.
	CacheBytes int64
}

// Kernel is one booted kernel. It is safe for concurrent use.
type Kernel struct {
	log        *slog.Logger
	now        func() time.Time
	cacheBytes int64

	mu          sync.Mutex // guards everything below and every Vnode's refs, state, coveredBy
	mounts      []*mount   // in mount order; mounts[0] is the root file system
	nextMountID uint32
	vcache      map[vkey]*Vnode
	down        bool
}

// Init boots a kernel whose namespace holds only an empty root directory.
func Init(opts Options) (*Kernel, error) {
	k := &Kernel{
		log:        opts.Logger,
		now:        opts.Now,
		cacheBytes: opts.CacheBytes,
		vcache:     make(map[vkey]*Vnode),
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.cacheBytes <= 0 {
		k.cacheBytes = 32 << 20
	}
	rootfs := tmpfs.New(tmpfs.Options{Mode: 0o755, Now: k.now})
	if err := k.attach("/", "rootfs", "tmpfs", "", rootfs, false); err != nil {
		return nil, err
	}
	return k, nil
}

// Now returns the kernel's clock's time: the clock of every file time
// (Options.Now), for a front that must agree with it.
func (k *Kernel) Now() time.Time { return k.now() }

// Root returns a reference to the root directory of the namespace.
func (k *Kernel) Root() *Vnode {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.mounts[0].root
	r.refs++
	return r
}

// NewProc returns a process with credential cred, its working directory at
// the root and umask 022.
func (k *Kernel) NewProc(cred vnodeops.Cred) *Proc {
	return &Proc{k: k, cred: cred, cwd: k.Root(), umask: 0o022, files: map[int]*file{}}
}

// Sync writes every mount's dirty data to its device.
func (k *Kernel) Sync() error {
	var errs []error
	for _, m := range k.mountList() {
		if err := m.sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return firstErrno(errs)
}

// Shutdown syncs and unmounts every file system in reverse mount order,
// forcing the unmount of busy ones, and marks each clean. The kernel is not
// usable afterwards; a second Shutdown returns nil.
func (k *Kernel) Shutdown() error {
	k.mu.Lock()
	if k.down {
		k.mu.Unlock()
		return nil
	}
	k.down = true
	k.mu.Unlock()
	var errs []error
	mounts := k.mountList()
	for i := len(mounts) - 1; i >= 0; i-- {
		m := mounts[i]
		if err := m.sync(); err != nil {
			k.log.Error("sync at shutdown", "mount", m.name, "err", err)
			errs = append(errs, err)
		}
		if err := k.detach(m, true); err != nil {
			k.log.Error("unmount at shutdown", "mount", m.name, "err", err)
			errs = append(errs, err)
		}
	}
	return firstErrno(errs)
}

func (k *Kernel) mountList() []*mount {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*mount(nil), k.mounts...)
}

// errno turns any error into a syscall.Errno: drivers should return Errno
// values, and anything else is reported as EIO.
func errno(err error) error {
	if err == nil {
		return nil
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

func firstErrno(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return errno(e)
		}
	}
	return nil
}
