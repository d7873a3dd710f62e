// Package tmpfs is rump9p's in-memory file system, in the spirit of
// NetBSD's sys/fs/tmpfs: every file lives in the Go heap and vanishes with
// the mount. The kernel mounts one as the root of its namespace, and a
// configuration can mount more under the type name "tmpfs".
//
// # Storage
//
// A regular file keeps its data in pages of [PageSize] bytes in a map keyed
// by page index, so that a hole costs nothing and reads as zeros; a page is
// allocated by the first write that touches it. Attr.Blocks counts the
// allocated pages (in 512-byte units). A symbolic link's target is charged
// as whole pages too. The size limit (Options.Size, mount option "size")
// counts these pages; directories and inodes are bounded by the inode limit
// (Options.Nodes, mount option "nodes") only.
//
// Extended attributes of every namespace the kernel passes down are kept
// in memory as given, up to [XattrSpace] bytes per inode, and charged to
// the size limit in whole pages per inode.
//
// # Inodes
//
// The root is inode 2 (as in ext2). Inode numbers grow monotonically and
// are never reused within a mount; each inode also gets a random non-zero
// generation number. An inode lives while it has a link or the kernel holds
// its vnode (from [FS.VGet] until Reclaim); Inactive of an unlinked inode
// frees its pages and the inode.
//
// # Times
//
// Times are nanoseconds from Options.Now. Creating, removing or renaming an
// entry sets the directory's mtime and ctime; changing a link count sets
// the inode's ctime; a write sets mtime and ctime. Reads never update atime
// (the mount behaves as noatime), so reading never takes the write lock.
//
// # Directory cookies
//
// Every entry gets a per-directory sequence number when it is entered
// ("." is 1, ".." is 2, real entries start at 3), and a directory keeps its
// entries in sequence order. An entry's Dirent.Next is its sequence number
// plus one, and Readdir at cookie c resumes at the first live entry whose
// sequence number is at least c. Entries added later always sort after
// every existing one and removed entries just vanish, so a surviving entry
// is never skipped or repeated. An entry renamed gets a new number, so a
// concurrent reader may see it under both names, as POSIX allows.
//
// # Concurrency
//
// One sync.RWMutex guards the whole file system. Readdir calls its callback
// without holding it, so the callback may call back into the driver.
package tmpfs

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

// Limits and constants of the format.
const (
	// PageSize is the unit of file data allocation and of Statvfs.
	PageSize = 4096
	// MaxFileSize is the largest file size; Write and Setattr beyond it
	// give EFBIG.
	MaxFileSize = 1 << 50
	// LinkMax is the largest link count; Link and Mkdir give EMLINK
	// beyond it.
	LinkMax = 65000
	// NameMax is the longest name, in bytes.
	NameMax = 255
	// SymlinkMax is the longest symbolic link target, in bytes.
	SymlinkMax = 4095
	// RootIno is the root directory's inode number.
	RootIno = 2
	// DefaultRootMode is the root's permission bits when Options.Mode
	// is 0, as Linux's tmpfs.
	DefaultRootMode = 0o1777

	// direntSize is what each entry (and "." and "..") adds to a
	// directory's reported size, as Linux's tmpfs does.
	direntSize = 20
	// readdirBatch is how many entries Readdir gathers under the lock
	// before it calls its callback without it.
	readdirBatch = 128
	// fallbackRAM is the memory size assumed when the machine's is
	// unknown.
	fallbackRAM = 16 << 30
)

// Options configures a file system made by [New].
type Options struct {
	// Size limits the file data (and symlink targets) in bytes, rounded up
	// to whole pages; 0 (or less) means no limit beyond the machine's memory.
	Size int64
	// Nodes limits the number of inodes, the root included; 0 means no
	// limit.
	Nodes uint64
	// Mode is the root directory's permission bits; 0 means
	// DefaultRootMode.
	Mode uint32
	// UID and GID own the root directory.
	UID, GID uint32
	// ReadOnly makes every write operation return EROFS.
	ReadOnly bool
	// Now is the clock of file times; nil means time.Now.
	Now func() time.Time
}

// FS is a mounted tmpfs. It implements [vnodeops.FS]; its vnodes implement
// [vnodeops.Vnode]. It is safe for concurrent use.
type FS struct {
	now      func() time.Time
	ro       bool
	maxPages int64  // 0: unlimited
	maxNodes uint64 // 0: unlimited

	mu        sync.RWMutex
	nodes     map[uint64]*node // every live inode
	nextIno   uint64
	usedPages int64
	root      *node
}

var (
	_ vnodeops.FS             = (*FS)(nil)
	_ vnodeops.ReadWriteVnode = (*node)(nil)
)

// New returns an empty file system holding only its root directory.
func New(opts Options) *FS {
	fs := &FS{
		now:      opts.Now,
		ro:       opts.ReadOnly,
		maxNodes: opts.Nodes,
		nodes:    make(map[uint64]*node),
		nextIno:  RootIno,
	}
	if fs.now == nil {
		fs.now = time.Now
	}
	if opts.Size > 0 {
		fs.maxPages = (opts.Size-1)/PageSize + 1
	}
	perm := opts.Mode & vnodeops.PermMask
	if perm == 0 {
		perm = DefaultRootMode
	}
	root := fs.newNodeLocked(vnodeops.S_IFDIR|perm, opts.UID, opts.GID, 0, fs.nowNs())
	root.nlink = 2
	root.dir.parent = root
	fs.root = root
	return fs
}

func init() {
	vnodeops.Register(vnodeops.Driver{Name: "tmpfs", Mount: mount})
}

// mount is the driver's Mount: it parses the options "size" (bytes, with
// an optional k, m, g or t suffix, or a percentage of the machine's
// memory), "nodes" (with the same suffixes), "mode" (octal), "uid" and
// "gid".
func mount(args vnodeops.MountArgs) (vnodeops.FS, error) {
	if args.Dev != nil {
		return nil, fmt.Errorf("tmpfs %s: takes no device: %w", args.Name, syscall.EINVAL)
	}
	opts := Options{ReadOnly: args.ReadOnly, Now: args.Now}
	mode, modeSet, err := parseOptions(args.Options, &opts)
	if err != nil {
		return nil, fmt.Errorf("tmpfs %s: %w", args.Name, err)
	}
	fs := New(opts)
	if modeSet {
		// New cannot tell mode 0 from "default"; an explicit mode=0 is
		// honoured here.
		fs.root.mode = vnodeops.S_IFDIR | mode
	}
	return fs, nil
}

// parseOptions fills opts from mount options. It returns the root mode
// separately with whether it was given. Errors name the key and wrap
// EINVAL.
func parseOptions(m map[string]string, opts *Options) (mode uint32, modeSet bool, err error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		bad := func(why string) error {
			return fmt.Errorf("option %s=%q: %s: %w", k, v, why, syscall.EINVAL)
		}
		switch k {
		case "size":
			n, err := parseSize(v, true)
			if err != nil {
				return 0, false, bad(err.Error())
			}
			opts.Size = n
		case "nodes":
			n, err := parseSize(v, false)
			if err != nil {
				return 0, false, bad(err.Error())
			}
			opts.Nodes = uint64(n)
		case "mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n > vnodeops.PermMask {
				return 0, false, bad("want octal permission bits up to 7777")
			}
			mode, modeSet = uint32(n), true
		case "uid", "gid":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return 0, false, bad("want a decimal id")
			}
			if k == "uid" {
				opts.UID = uint32(n)
			} else {
				opts.GID = uint32(n)
			}
		default:
			return 0, false, fmt.Errorf("unknown option %q (known: size, nodes, mode, uid, gid): %w", k, syscall.EINVAL)
		}
	}
	return mode, modeSet, nil
}

// parseSize parses a count with an optional binary suffix k, m, g or t
// (either case), and if percent is set also "N%" of the machine's memory.
func parseSize(s string, percent bool) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty value")
	}
	if percent && strings.HasSuffix(s, "%") {
		p, err := strconv.ParseUint(s[:len(s)-1], 10, 8)
		if err != nil || p > 100 {
			return 0, fmt.Errorf("want a percentage from 0 to 100")
		}
		return int64(totalRAM() / 100 * p), nil
	}
	shift := 0
	switch s[len(s)-1] {
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	case 't', 'T':
		shift = 40
	}
	if shift != 0 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("want a number with an optional k, m, g or t suffix")
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("too large")
	}
	return int64(n << shift), nil
}

// nowNs is the current time in nanoseconds.
func (fs *FS) nowNs() int64 { return fs.now().UnixNano() }

// Root returns the root directory's inode number, RootIno.
func (fs *FS) Root() uint64 { return RootIno }

// VGet returns the vnode of a live inode, ENOENT for any other number.
// The vnode stays valid (and an unlinked inode keeps its storage) until
// its Reclaim.
func (fs *FS) VGet(ino uint64) (vnodeops.Vnode, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.nodes[ino]
	if n == nil || (n.nlink == 0 && !n.active) {
		return nil, syscall.ENOENT
	}
	n.active = true
	return n, nil
}

// Statvfs reports the limits and the usage. Without a size limit the
// capacity is half of the machine's memory (or what is in use, if more);
// without an inode limit the inode capacity is one per page of that.
func (fs *FS) Statvfs() (vnodeops.Statvfs, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	used := uint64(fs.usedPages)
	blocks := uint64(fs.maxPages)
	if blocks == 0 {
		blocks = max(totalRAM()/2/PageSize, used)
	}
	nnodes := uint64(len(fs.nodes))
	files := fs.maxNodes
	if files == 0 {
		files = max(totalRAM()/2/PageSize, nnodes)
	}
	st := vnodeops.Statvfs{
		Bsize:   PageSize,
		Frsize:  PageSize,
		Blocks:  blocks,
		Bfree:   blocks - min(used, blocks),
		Files:   files,
		Ffree:   files - min(nnodes, files),
		Namemax: NameMax,
	}
	st.Bavail = st.Bfree
	st.Favail = st.Ffree
	if fs.ro {
		st.Flags |= vnodeops.StRdonly
	}
	return st, nil
}

// Sync does nothing: there is no device.
func (fs *FS) Sync() error { return nil }

// Unmount drops every inode. The FS must not be used afterwards.
func (fs *FS) Unmount(force bool) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, n := range fs.nodes {
		n.freed = true
		n.pages = nil
		n.dir = nil
	}
	fs.nodes = map[uint64]*node{}
	fs.usedPages = 0
	return nil
}

// newNodeLocked makes an inode of the given mode with link count 0 (the
// caller sets it) and enters it in fs.nodes. It does not check the node
// limit. fs.mu is held for writing.
func (fs *FS) newNodeLocked(mode, uid, gid uint32, rdev uint64, now int64) *node {
	n := &node{
		fs:    fs,
		ino:   fs.nextIno,
		gen:   uint64(rand.Uint32() | 1),
		mode:  mode,
		uid:   uid,
		gid:   gid,
		rdev:  rdev,
		atime: now,
		mtime: now,
		ctime: now,
		btime: now,
	}
	fs.nextIno++
	switch mode & vnodeops.S_IFMT {
	case vnodeops.S_IFREG:
		n.pages = make(map[int64][]byte)
	case vnodeops.S_IFDIR:
		n.dir = &dirData{byName: make(map[string]*dentry), nextSeq: firstSeq}
	}
	fs.nodes[n.ino] = n
	return n
}

// haveNodeLocked reports whether one more inode fits the limit.
func (fs *FS) haveNodeLocked() bool {
	return fs.maxNodes == 0 || uint64(len(fs.nodes)) < fs.maxNodes
}

// allocPagesLocked charges k pages to the size limit; false if they do not
// fit.
func (fs *FS) allocPagesLocked(k int64) bool {
	if fs.maxPages != 0 && fs.usedPages+k > fs.maxPages {
		return false
	}
	fs.usedPages += k
	return true
}

// freeLocked releases an unlinked inode's storage and forgets it.
func (fs *FS) freeLocked(n *node) {
	if n.freed || n == fs.root {
		return
	}
	fs.usedPages -= int64(len(n.pages)) + n.targetPages + n.xattrPages
	n.pages = nil
	n.target = ""
	n.targetPages = 0
	n.xattrs, n.xattrBytes, n.xattrPages = nil, 0, 0
	n.dir = nil
	n.freed = true
	delete(fs.nodes, n.ino)
}

// unlinkedLocked is called when n's link count has dropped to 0: without a
// vnode the kernel holds, nobody can reach n again, so it is freed now;
// otherwise Inactive frees it.
func (fs *FS) unlinkedLocked(n *node) {
	if !n.active {
		fs.freeLocked(n)
	}
}

// nodeOf returns the tmpfs node behind a vnode of this file system, or
// EXDEV.
func (fs *FS) nodeOf(v vnodeops.Vnode) (*node, error) {
	n, ok := v.(*node)
	if !ok || n == nil || n.fs != fs {
		return nil, syscall.EXDEV
	}
	return n, nil
}
