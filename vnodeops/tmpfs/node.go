package tmpfs

import (
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// node is an inode and, while the kernel holds it, its vnode. Every field
// but fs and ino is guarded by fs.mu.
type node struct {
	fs  *FS
	ino uint64
	gen uint64

	mode                       uint32
	nlink                      uint32
	uid, gid                   uint32
	rdev                       uint64
	flags                      uint32
	size                       int64
	atime, mtime, ctime, btime int64

	active bool // the kernel holds the vnode: VGet happened, Reclaim not yet
	freed  bool // storage released; the node is gone from fs.nodes

	pages       map[int64][]byte // regular file data by page index
	target      string           // symbolic link target
	targetPages int64            // pages charged for target
	dir         *dirData         // directory contents

	xattrs     map[string][]byte // extended attributes (xattr.go)
	xattrBytes int64             // their names' and values' lengths
	xattrPages int64             // pages charged for them
}

func (n *node) isDir() bool { return n.mode&vnodeops.S_IFMT == vnodeops.S_IFDIR }
func (n *node) isReg() bool { return n.mode&vnodeops.S_IFMT == vnodeops.S_IFREG }

// Open refuses writing to a directory (EISDIR) and writing to a regular
// file of a read-only mount (EROFS).
func (n *node) Open(flags int) error {
	wr := flags&syscall.O_ACCMODE != vnodeops.ORdonly
	if !wr {
		return nil
	}
	n.fs.mu.RLock()
	defer n.fs.mu.RUnlock()
	switch {
	case n.isDir():
		return syscall.EISDIR
	case n.fs.ro && n.isReg():
		return syscall.EROFS
	}
	return nil
}

// Close does nothing.
func (n *node) Close(flags int) error { return nil }

// Access applies vnodeops.CheckAccess, and refuses write access to a
// regular file, directory or symbolic link of a read-only mount with EROFS
// (devices, FIFOs and sockets stay writable, as on Linux). File flags are
// stored, not enforced.
func (n *node) Access(want uint32, cred vnodeops.Cred) error {
	n.fs.mu.RLock()
	a := n.attrLocked()
	n.fs.mu.RUnlock()
	if want&vnodeops.AccessWrite != 0 && n.fs.ro {
		switch a.Mode & vnodeops.S_IFMT {
		case vnodeops.S_IFREG, vnodeops.S_IFDIR, vnodeops.S_IFLNK:
			return syscall.EROFS
		}
	}
	return vnodeops.CheckAccess(a, want, cred)
}

// Getattr reports the inode. A directory's size counts its entries (20
// bytes each, "." and ".." included); Blocks counts allocated pages.
func (n *node) Getattr() (vnodeops.Attr, error) {
	n.fs.mu.RLock()
	defer n.fs.mu.RUnlock()
	return n.attrLocked(), nil
}

func (n *node) attrLocked() vnodeops.Attr {
	a := vnodeops.Attr{
		Mode:    n.mode,
		Nlink:   n.nlink,
		UID:     n.uid,
		GID:     n.gid,
		Size:    uint64(n.size),
		Blocks:  uint64(int64(len(n.pages))+n.targetPages) * (PageSize / 512),
		BlkSize: PageSize,
		Atime:   n.atime,
		Mtime:   n.mtime,
		Ctime:   n.ctime,
		Btime:   n.btime,
		Ino:     n.ino,
		Gen:     n.gen,
		Rdev:    n.rdev,
		Flags:   n.flags,
	}
	if n.dir != nil {
		a.Size = uint64(len(n.dir.byName)+2) * direntSize
	}
	return a
}

// Setattr applies the masked fields. Any change sets ctime to now unless
// SetCtime gives it; a size change (even to the same size) sets mtime too
// unless SetMtime gives it. EISDIR for the size of a directory, EINVAL for
// the size of another non-regular file, EFBIG past MaxFileSize. Growing a
// file makes a hole and charges nothing.
func (n *node) Setattr(sa vnodeops.SetAttr) error {
	fs := n.fs
	if fs.ro {
		return syscall.EROFS
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if sa.Mask&setAttrKnown == 0 {
		return nil
	}
	now := fs.nowNs()
	if sa.Mask&vnodeops.SetSize != 0 {
		switch {
		case n.isDir():
			return syscall.EISDIR
		case !n.isReg():
			return syscall.EINVAL
		case sa.Size > MaxFileSize:
			return syscall.EFBIG
		}
		n.truncateLocked(int64(sa.Size))
		n.mtime = now
	}
	if sa.Mask&vnodeops.SetMode != 0 {
		n.mode = n.mode&vnodeops.S_IFMT | sa.Mode&vnodeops.PermMask
	}
	if sa.Mask&vnodeops.SetUID != 0 {
		n.uid = sa.UID
	}
	if sa.Mask&vnodeops.SetGID != 0 {
		n.gid = sa.GID
	}
	if sa.Mask&vnodeops.SetFlags != 0 {
		n.flags = sa.Flags
	}
	if sa.Mask&vnodeops.SetAtime != 0 {
		n.atime = sa.Atime
	}
	if sa.Mask&vnodeops.SetMtime != 0 {
		n.mtime = sa.Mtime
	}
	n.ctime = now
	if sa.Mask&vnodeops.SetCtime != 0 {
		n.ctime = sa.Ctime
	}
	return nil
}

// setAttrKnown is every field Setattr knows.
const setAttrKnown = vnodeops.SetMode | vnodeops.SetUID | vnodeops.SetGID | vnodeops.SetSize |
	vnodeops.SetAtime | vnodeops.SetMtime | vnodeops.SetCtime | vnodeops.SetFlags

// truncateLocked sets a regular file's size, dropping the pages past it
// and zeroing the tail of the last one so that a later extension reads
// zeros.
func (n *node) truncateLocked(size int64) {
	if size < n.size {
		first := (size + PageSize - 1) / PageSize // first page wholly past size
		last := (n.size - 1) / PageSize
		drop := func(i int64) {
			if _, ok := n.pages[i]; ok {
				delete(n.pages, i)
				n.fs.usedPages--
			}
		}
		if last-first+1 <= int64(len(n.pages)) {
			for i := first; i <= last; i++ {
				drop(i)
			}
		} else {
			for i := range n.pages {
				if i >= first {
					drop(i)
				}
			}
		}
		if off := size % PageSize; off != 0 {
			if pg, ok := n.pages[size/PageSize]; ok {
				clear(pg[off:])
			}
		}
	}
	n.size = size
}

// Read copies file data at off into p; holes read as zeros. (0, nil) at or
// past the end. EISDIR on a directory, EINVAL on other non-regular files
// and for a negative offset. It does not update atime.
func (n *node) Read(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	n.fs.mu.RLock()
	defer n.fs.mu.RUnlock()
	if !n.isReg() {
		if n.isDir() {
			return 0, syscall.EISDIR
		}
		return 0, syscall.EINVAL
	}
	if off >= n.size {
		return 0, nil
	}
	if rest := n.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		po := pos % PageSize
		var c int
		if pg, ok := n.pages[pos/PageSize]; ok {
			c = copy(p[done:], pg[po:])
		} else {
			c = min(len(p)-done, int(PageSize-po))
			clear(p[done : done+c])
		}
		done += c
	}
	return done, nil
}

// Write stores p at off, allocating the pages it touches. When the size
// limit runs out it writes what fits (to the last page it could allocate)
// and returns that count with ENOSPC; past MaxFileSize it writes up to the
// limit and returns EFBIG. EISDIR on a directory, EINVAL on other
// non-regular files and for a negative offset.
func (n *node) Write(p []byte, off int64) (int, error) {
	fs := n.fs
	if fs.ro {
		return 0, syscall.EROFS
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !n.isReg() {
		if n.isDir() {
			return 0, syscall.EISDIR
		}
		return 0, syscall.EINVAL
	}
	if n.freed {
		return 0, syscall.ESTALE
	}
	if len(p) == 0 {
		return 0, nil
	}
	var err error
	if off >= MaxFileSize {
		return 0, syscall.EFBIG
	}
	if int64(len(p)) > MaxFileSize-off {
		p = p[:MaxFileSize-off]
		err = syscall.EFBIG
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		idx := pos / PageSize
		pg, ok := n.pages[idx]
		if !ok {
			if !fs.allocPagesLocked(1) {
				err = syscall.ENOSPC
				break
			}
			pg = make([]byte, PageSize)
			n.pages[idx] = pg
		}
		done += copy(pg[pos%PageSize:], p[done:])
	}
	if done > 0 {
		if end := off + int64(done); end > n.size {
			n.size = end
		}
		now := fs.nowNs()
		n.mtime, n.ctime = now, now
	}
	return done, err
}

// Fsync does nothing: there is no device.
func (n *node) Fsync(dataOnly bool) error { return nil }

// Readlink returns a symbolic link's target; EINVAL for other files.
func (n *node) Readlink() (string, error) {
	n.fs.mu.RLock()
	defer n.fs.mu.RUnlock()
	if n.mode&vnodeops.S_IFMT != vnodeops.S_IFLNK {
		return "", syscall.EINVAL
	}
	return n.target, nil
}

// Inactive frees the storage and the inode of a file whose link count is
// 0; its number is never handed out again.
func (n *node) Inactive() error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if n.nlink == 0 {
		fs.freeLocked(n)
	}
	return nil
}

// Reclaim ends the kernel's hold on the vnode. An unlinked inode that
// Inactive somehow missed is freed here.
func (n *node) Reclaim() error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n.active = false
	if n.nlink == 0 {
		fs.freeLocked(n)
	}
	return nil
}
