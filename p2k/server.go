package p2k

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// Options configures Mount.
type Options struct {
	// AttrTimeout and EntryTimeout are how long the host kernel may cache
	// attributes and name lookups. Zero means zero: every stat and every
	// path walk asks the kernel, which suits a read-write mount that other
	// fronts may change.
	AttrTimeout  time.Duration
	EntryTimeout time.Duration
	// AllowOther lets users other than the one mounting use the mount
	// (-o allow_other; a non-root user needs user_allow_other in
	// /etc/fuse.conf).
	AllowOther bool
	// DefaultPermissions lets the host kernel check mode bits itself
	// (-o default_permissions) before it asks p2k.
	DefaultPermissions bool
	// FsName is the source shown in /proc/mounts; default "rump9p".
	FsName string
	// MountOptions are further options for fusermount3 (-o ...).
	MountOptions []string
	// Logger receives p2k's log lines; nil discards them.
	Logger *slog.Logger
	// Debug logs every FUSE request (go-fuse's debug output).
	Debug bool
}

// Server is one FUSE mount of a part of a kernel's namespace. It
// implements fuse.RawFileSystem; the methods the protocol calls are not
// meant for other callers.
type Server struct {
	fuse.RawFileSystem // ENOSYS for what p2k does not do

	opts Options
	log  *slog.Logger
	srv  *fuse.Server
	mnt  string
	// rootMount is the mount ID of the root vnode: its files keep their
	// own inode numbers on the host.
	rootMount uint32

	mu      sync.Mutex
	nodes   map[uint64]*node // by FUSE node ID
	byKey   map[vkey]*node
	nextID  uint64
	handles map[uint64]*handle
	nextFh  uint64
	closed  bool

	locks lockTable

	credMu    sync.Mutex
	credCache map[credKey]credEntry

	done chan struct{} // closed when the file system is unmounted and released
}

type vkey struct {
	mount uint32
	ino   uint64
}

// node is what a FUSE node ID stands for: one vnode reference, held while
// the host kernel's lookup count is above zero.
type node struct {
	id      uint64
	v       *rumpcore.Vnode
	lookups uint64
}

// handle is an open file or directory: one vnode reference of its own.
type handle struct {
	v     *rumpcore.Vnode
	flags int // given to Vnode.Open, for Vnode.Close
}

// Mount mounts root (whose reference it takes over, also on error) at the
// host directory mountpoint and serves FUSE requests until the file
// system is unmounted. Errors name mountpoint.
func Mount(root *rumpcore.Vnode, mountpoint string, opts Options) (*Server, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		root.Release()
		return nil, fmt.Errorf("mount point %s: %w", mountpoint, err)
	}
	if err := checkMountPoint(abs); err != nil {
		root.Release()
		return nil, err
	}
	s := &Server{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		opts:          opts,
		log:           opts.Logger,
		mnt:           abs,
		rootMount:     root.MountID(),
		nodes:         map[uint64]*node{},
		byKey:         map[vkey]*node{},
		nextID:        fuse.FUSE_ROOT_ID + 1,
		handles:       map[uint64]*handle{},
		nextFh:        1,
		credCache:     map[credKey]credEntry{},
		done:          make(chan struct{}),
	}
	s.locks.init()
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	rn := &node{id: fuse.FUSE_ROOT_ID, v: root, lookups: 1}
	s.nodes[rn.id] = rn
	s.byKey[keyOf(root)] = rn

	mo := &fuse.MountOptions{
		AllowOther:  opts.AllowOther,
		FsName:      opts.FsName,
		Name:        "rump9p",
		EnableLocks: true,
		MaxWrite:    1 << 20,
		Debug:       opts.Debug,
		Logger:      log.New(slogWriter{s.log}, "", 0),
		Options:     append([]string(nil), opts.MountOptions...),
		// Nodes are ours to count: go-fuse must pass FORGET on.
		RememberInodes: false,
	}
	if mo.FsName == "" {
		mo.FsName = "rump9p"
	}
	if opts.DefaultPermissions {
		mo.Options = append(mo.Options, "default_permissions")
	}
	if root.ReadOnly() {
		mo.Options = append(mo.Options, "ro")
	}
	srv, err := fuse.NewServer(s, abs, mo)
	if err != nil {
		s.releaseAll()
		return nil, fmt.Errorf("mount point %s: %w", abs, err)
	}
	s.srv = srv
	go func() {
		srv.Serve()
		s.releaseAll()
		close(s.done)
	}()
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		<-s.done
		return nil, fmt.Errorf("mount point %s: %w", abs, err)
	}
	s.log.Info("p2k: mounted", "mountpoint", abs)
	return s, nil
}

// checkMountPoint gives a clear error for a mount point that is missing,
// not a directory, or a dead FUSE mount.
func checkMountPoint(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("mount point %s: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("mount point %s: %w", path, syscall.ENOTDIR)
	}
	return nil
}

// Mountpoint is the absolute host path of the mount.
func (s *Server) Mountpoint() string { return s.mnt }

// Done is closed when the file system has been unmounted (by Unmount,
// fusermount3 -u or umount) and every reference p2k held is released.
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait waits until Done is closed.
func (s *Server) Wait() { <-s.done }

// Unmount unmounts the file system and waits until it is released. EBUSY
// (wrapped, naming the mount point) while a host process uses the mount;
// see UnmountLazy.
func (s *Server) Unmount() error {
	if err := s.srv.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", s.mnt, err)
	}
	<-s.done
	return nil
}

// UnmountLazy detaches the mount from the host namespace even while it is
// busy (fusermount3 -u -z). Requests of processes that still hold files
// open go on being served; the file system ends when the last is closed,
// or at once with Abort.
func (s *Server) UnmountLazy() error {
	out, err := execFusermount("-u", "-z", s.mnt)
	if err != nil {
		return fmt.Errorf("lazy unmount %s: %v: %s", s.mnt, err, strings.TrimSpace(out))
	}
	return nil
}

// String implements fuse.RawFileSystem.
func (s *Server) String() string { return "rump9p" }

// OnUnmount implements fuse.RawFileSystem.
func (s *Server) OnUnmount() {}

// releaseAll closes every handle and drops every node reference, once.
func (s *Server) releaseAll() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	handles, nodes := s.handles, s.nodes
	s.handles, s.nodes, s.byKey = nil, nil, nil
	s.mu.Unlock()
	for _, h := range handles {
		h.close()
	}
	for _, n := range nodes {
		n.v.Release()
	}
	s.log.Info("p2k: unmounted", "mountpoint", s.mnt)
}

func keyOf(v *rumpcore.Vnode) vkey { return vkey{v.MountID(), v.Ino()} }

// hostIno is the inode number the host sees for (mount, ino).
func (s *Server) hostIno(mount uint32, ino uint64) uint64 {
	if mount == s.rootMount {
		return ino
	}
	const inoBits = 48
	if ino < 1<<inoBits && mount < 1<<(64-inoBits) {
		return uint64(mount)<<inoBits | ino
	}
	// Too large to pack: fold (collisions become possible, never panics).
	x := ino ^ uint64(mount)<<32
	x ^= x >> 31
	x *= 0x9e3779b97f4a7c15
	return uint64(mount)<<inoBits | x&(1<<inoBits-1)
}

// vnode returns a new reference to the vnode of node id: ESTALE for a
// node the host kernel should not know.
func (s *Server) vnode(id uint64) (*rumpcore.Vnode, fuse.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[id]
	if n == nil {
		return nil, fuse.Status(syscall.ESTALE)
	}
	return n.v.Ref(), fuse.OK
}

// addLookup enters v (whose reference it takes over) as a node with one
// more lookup and returns the node ID.
func (s *Server) addLookup(v *rumpcore.Vnode) uint64 {
	key := keyOf(v)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		v.Release()
		return 0
	}
	if n := s.byKey[key]; n != nil {
		n.lookups++
		s.mu.Unlock()
		v.Release()
		return n.id
	}
	n := &node{id: s.nextID, v: v, lookups: 1}
	s.nextID++
	s.nodes[n.id] = n
	s.byKey[key] = n
	s.mu.Unlock()
	return n.id
}

// Forget implements fuse.RawFileSystem.
func (s *Server) Forget(id, nlookup uint64) {
	if id == fuse.FUSE_ROOT_ID {
		return
	}
	s.mu.Lock()
	n := s.nodes[id]
	if n == nil {
		s.mu.Unlock()
		return
	}
	if n.lookups > nlookup {
		n.lookups -= nlookup
		s.mu.Unlock()
		return
	}
	delete(s.nodes, id)
	delete(s.byKey, keyOf(n.v))
	s.mu.Unlock()
	n.v.Release()
}

// newHandle registers an opened vnode (whose reference it takes over).
func (s *Server) newHandle(h *handle) (uint64, fuse.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fuse.Status(syscall.ESHUTDOWN)
	}
	fh := s.nextFh
	s.nextFh++
	s.handles[fh] = h
	return fh, fuse.OK
}

func (s *Server) getHandle(fh uint64) *handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handles[fh]
}

func (s *Server) takeHandle(fh uint64) *handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.handles[fh]
	delete(s.handles, fh)
	return h
}

func (h *handle) close() {
	h.v.Close(h.flags)
	h.v.Release()
}

// status turns a kernel error into a FUSE status: the Errno itself.
func status(err error) fuse.Status {
	if err == nil {
		return fuse.OK
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return fuse.Status(e)
	}
	return fuse.EIO
}

// slogWriter turns go-fuse's log.Logger lines into slog records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("go-fuse: " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fillAttr converts a kernel Attr for the host.
func (s *Server) fillAttr(v *rumpcore.Vnode, a *vnodeops.Attr, out *fuse.Attr) {
	*out = fuse.Attr{
		Ino:     s.hostIno(v.MountID(), v.Ino()),
		Size:    a.Size,
		Blocks:  a.Blocks,
		Mode:    a.Mode,
		Nlink:   a.Nlink,
		Owner:   fuse.Owner{Uid: a.UID, Gid: a.GID},
		Rdev:    uint32(a.Rdev),
		Blksize: a.BlkSize,
	}
	if out.Blksize == 0 {
		out.Blksize = 4096
	}
	out.Atime, out.Atimensec = splitTime(a.Atime)
	out.Mtime, out.Mtimensec = splitTime(a.Mtime)
	out.Ctime, out.Ctimensec = splitTime(a.Ctime)
}

// splitTime splits nanoseconds since the epoch for FUSE (nanoseconds
// in 0..999999999, also before 1970).
func splitTime(ns int64) (uint64, uint32) {
	t := time.Unix(0, ns)
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// entry fills out for v (whose reference it takes over) and counts a
// lookup.
func (s *Server) entry(v *rumpcore.Vnode, out *fuse.EntryOut) fuse.Status {
	a, err := v.Getattr()
	if err != nil {
		v.Release()
		return status(err)
	}
	s.fillAttr(v, &a, &out.Attr)
	out.Generation = a.Gen
	out.SetEntryTimeout(s.opts.EntryTimeout)
	out.SetAttrTimeout(s.opts.AttrTimeout)
	out.NodeId = s.addLookup(v)
	if out.NodeId == 0 {
		return fuse.Status(syscall.ESHUTDOWN)
	}
	return fuse.OK
}
