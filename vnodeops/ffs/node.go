package ffs

import (
	"syscall"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// vnode is one inode of a mounted FFS. di is the in-memory copy of the
// on-disk inode, written back through fs.writeInode; fs.mu guards it.
type vnode struct {
	fs    *fsys
	ino   uint64
	di    dinode
	freed bool // storage released (Inactive of an unlinked file)
}

var (
	_ vnodeops.ReadWriteVnode = (*vnode)(nil)
	_ vnodeops.Xattrs         = (*vnode)(nil)
)

func (v *vnode) typ() uint32 { return uint32(v.di.mode()) & vnodeops.S_IFMT }
func (v *vnode) isDir() bool { return v.typ() == vnodeops.S_IFDIR }

// shortSymlink reports whether a symbolic link's target is kept in the
// inode (ufs_readlink: shorter than fs_maxsymlinklen, or no blocks on a
// file system that predates short links).
func (v *vnode) shortSymlink() bool {
	size := int64(v.di.size())
	ml := v.fs.sb.maxsymlinklen
	return size < ml || (ml == 0 && v.di.blocks() == 0)
}

// validate checks what later code relies on: a known file type, a size
// the block map can hold, a directory made of whole chunks.
func (v *vnode) validate() error {
	sb := v.fs.sb
	switch v.typ() {
	case vnodeops.S_IFREG, vnodeops.S_IFDIR, vnodeops.S_IFLNK, vnodeops.S_IFCHR,
		vnodeops.S_IFBLK, vnodeops.S_IFIFO, vnodeops.S_IFSOCK:
	default:
		return v.fs.corrupt(v.ino, "unknown file type in mode %#o", v.di.mode())
	}
	size := v.di.size()
	if size > uint64(sb.maxFileSize()) {
		return v.fs.corrupt(v.ino, "size %d exceeds the block map", size)
	}
	if v.isDir() && (size == 0 || size%dirBlkSize != 0) {
		return v.fs.corrupt(v.ino, "directory size %d is not a multiple of %d", size, dirBlkSize)
	}
	if v.typ() == vnodeops.S_IFLNK && v.shortSymlink() && size > uint64(len(v.di.shortLink())) {
		return v.fs.corrupt(v.ino, "short symlink of %d bytes", size)
	}
	if v.di.extSize() > uint32(2*sb.bsize) {
		return v.fs.corrupt(v.ino, "extended attribute area of %d bytes", v.di.extSize())
	}
	return nil
}

// Getattr implements vnodeops.Vnode.
func (v *vnode) Getattr() (vnodeops.Attr, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	return v.attrLocked(), nil
}

func (v *vnode) attrLocked() vnodeops.Attr {
	d := v.di
	a := vnodeops.Attr{
		Mode:    uint32(d.mode()),
		Nlink:   uint32(d.nlink()),
		UID:     d.uid(),
		GID:     d.gid(),
		Size:    d.size(),
		Blocks:  d.blocks(),
		BlkSize: uint32(v.fs.sb.bsize),
		Atime:   d.atime().nanos(),
		Mtime:   d.mtime().nanos(),
		Ctime:   d.ctime().nanos(),
		Btime:   d.birthtime().nanos(),
		Ino:     v.ino,
		Gen:     uint64(d.gen()),
		Flags:   d.flags(),
	}
	if t := v.typ(); t == vnodeops.S_IFCHR || t == vnodeops.S_IFBLK {
		a.Rdev = d.rdev()
		a.Size = 0
	}
	return a
}

// Access implements vnodeops.Vnode: CheckAccess, EROFS for writing on a
// read-only mount, EPERM for writing an immutable file.
func (v *vnode) Access(want uint32, cred vnodeops.Cred) error {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	a := v.attrLocked()
	if want&vnodeops.AccessWrite != 0 {
		if v.fs.ro {
			return syscall.EROFS
		}
		if a.Flags&flagsImmutable != 0 {
			return syscall.EPERM
		}
	}
	return vnodeops.CheckAccess(a, want, cred)
}

// Open implements vnodeops.Vnode. Opening an append-only file for writing
// without O_APPEND gives EPERM, as BSD does.
func (v *vnode) Open(flags int) error {
	if flags&syscall.O_ACCMODE == vnodeops.ORdonly {
		return nil
	}
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	if v.fs.ro {
		return syscall.EROFS
	}
	f := v.di.flags()
	if f&flagsImmutable != 0 || (f&flagsAppend != 0 && flags&syscall.O_APPEND == 0) {
		return syscall.EPERM
	}
	return nil
}

// Close implements vnodeops.Vnode.
func (v *vnode) Close(flags int) error { return nil }

// ---- Block map ----

// indirPath splits logical block lbn into the inode pointer that reaches
// it (0..11 direct, 12..14 indirect) and the indexes into each level of
// indirect blocks (ufs_getlbns).
func (fs *fsys) indirPath(lbn int64) (ptr int, path []int64, err error) {
	if lbn < 0 {
		return 0, nil, syscall.EFBIG
	}
	if lbn < nDAddr {
		return int(lbn), nil, nil
	}
	n := fs.sb.nindir
	lbn -= nDAddr
	if lbn < n {
		return nDAddr, []int64{lbn}, nil
	}
	lbn -= n
	if lbn < n*n {
		return nDAddr + 1, []int64{lbn / n, lbn % n}, nil
	}
	lbn -= n * n
	if lbn < n*n*n {
		return nDAddr + 2, []int64{lbn / (n * n), (lbn / n) % n, lbn % n}, nil
	}
	return 0, nil, syscall.EFBIG
}

// checkAddr validates a fragment address of nfrag fragments that must
// lie inside one block of the file system.
func (fs *fsys) checkAddr(ino uint64, a, nfrag int64) error {
	sb := fs.sb
	if a <= 0 || a+nfrag > sb.size || a&(sb.frag-1)+nfrag > sb.frag {
		return fs.corrupt(ino, "block address %d (%d fragments) outside the file system", a, nfrag)
	}
	return nil
}

// getIndir returns the pinned buffer of the indirect block at a.
func (fs *fsys) getIndir(ino uint64, a int64) (*blkdev.Buf, error) {
	if err := fs.checkAddr(ino, a, fs.sb.frag); err != nil {
		return nil, err
	}
	b, err := fs.cache.Get(a >> fs.sb.fragshift)
	if err != nil {
		return nil, fs.corrupt(ino, "reading indirect block %d: %v", a, err)
	}
	return b, nil
}

func (fs *fsys) ptrAt(data []byte, i int64) int64 {
	if fs.sb.ufs2 {
		return int64(fs.sb.bo.Uint64(data[8*i:]))
	}
	return int64(int32(fs.sb.bo.Uint32(data[4*i:])))
}

func (fs *fsys) setPtrAt(data []byte, i, a int64) {
	if fs.sb.ufs2 {
		fs.sb.bo.PutUint64(data[8*i:], uint64(a))
	} else {
		fs.sb.bo.PutUint32(data[4*i:], uint32(a))
	}
}

// bmap returns the fragment address of logical block lbn, 0 for a hole.
func (v *vnode) bmap(lbn int64) (int64, error) {
	fs := v.fs
	ptr, path, err := fs.indirPath(lbn)
	if err != nil {
		return 0, err
	}
	a := v.di.addr(ptr)
	for _, i := range path {
		if a == 0 {
			return 0, nil
		}
		b, err := fs.getIndir(v.ino, a)
		if err != nil {
			return 0, err
		}
		a = fs.ptrAt(b.Data(), i)
		b.Release()
	}
	return a, nil
}

// readBlock calls fn with the bytes of logical block lbn (its blkSize,
// zeros for a hole) while holding the buffer.
func (v *vnode) readBlock(lbn int64, size uint64, fn func([]byte)) error {
	fs := v.fs
	sb := fs.sb
	bsz := sb.blkSize(size, lbn)
	a, err := v.bmap(lbn)
	if err != nil {
		return err
	}
	if a == 0 {
		fn(make([]byte, bsz))
		return nil
	}
	b, data, err := fs.fragBuf(v.ino, a, bsz)
	if err != nil {
		return err
	}
	fn(data)
	b.Release()
	return nil
}

// fragBuf checks the n bytes (whole fragments inside one block) at
// fragment address a of inode ino's block map, and returns the pinned
// buffer holding them and their bytes. The caller releases the buffer.
func (fs *fsys) fragBuf(ino uint64, a, n int64) (*blkdev.Buf, []byte, error) {
	sb := fs.sb
	if err := fs.checkAddr(ino, a, n>>sb.fshift); err != nil {
		return nil, nil, err
	}
	b, err := fs.cache.Get(a >> sb.fragshift)
	if err != nil {
		return nil, nil, fs.corrupt(ino, "reading block %d: %v", a, err)
	}
	off := (a & (sb.frag - 1)) << sb.fshift
	return b, b.Data()[off : off+n], nil
}

// Read implements vnodeops.Vnode.
func (v *vnode) Read(p []byte, off int64) (int, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	if v.isDir() {
		return 0, syscall.EISDIR
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	return v.readLocked(p, off)
}

func (v *vnode) readLocked(p []byte, off int64) (int, error) {
	sb := v.fs.sb
	size := v.di.size()
	if uint64(off) >= size {
		return 0, nil
	}
	if rest := size - uint64(off); uint64(len(p)) > rest {
		p = p[:rest]
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		lbn := pos >> sb.bshift
		in := pos & (sb.bsize - 1)
		var err error
		var got int
		err = v.readBlock(lbn, size, func(blk []byte) {
			if in < int64(len(blk)) {
				got = copy(p[n:], blk[in:])
			}
		})
		if err != nil {
			return n, err
		}
		if got == 0 {
			return n, v.fs.corrupt(v.ino, "block %d shorter than the size says", lbn)
		}
		n += got
	}
	return n, nil
}

// Readlink implements vnodeops.Vnode.
func (v *vnode) Readlink() (string, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	if v.typ() != vnodeops.S_IFLNK {
		return "", syscall.EINVAL
	}
	size := v.di.size()
	if v.shortSymlink() {
		return string(v.di.shortLink()[:size]), nil
	}
	if size >= 4096 || size == 0 {
		return "", v.fs.corrupt(v.ino, "symbolic link of %d bytes", size)
	}
	buf := make([]byte, size)
	if _, err := v.readLocked(buf, 0); err != nil {
		return "", err
	}
	return string(buf), nil
}

// Inactive implements vnodeops.Vnode: an unlinked file's storage is
// freed once the kernel drops its last reference.
func (v *vnode) Inactive() error {
	v.fs.mu.Lock()
	defer v.fs.mu.Unlock()
	if v.fs.ro || v.fs.unmounted || v.freed || v.di.nlink() != 0 {
		return nil
	}
	return v.freeLocked()
}

// Reclaim implements vnodeops.Vnode.
func (v *vnode) Reclaim() error {
	v.fs.liveMu.Lock()
	if v.fs.live[v.ino] == v {
		delete(v.fs.live, v.ino)
	}
	v.fs.liveMu.Unlock()
	return nil
}

// ---- Extended attributes (read-only) ----

// xattrs decodes the UFS2 extended attribute area. Names of the user
// namespace are served as "user.NAME", of the system namespace (which
// only root may read on BSD) as "trusted.NAME".
func (v *vnode) xattrs() ([]extattr, error) {
	sb := v.fs.sb
	n := int64(v.di.extSize())
	if n == 0 {
		return nil, nil
	}
	area := make([]byte, 0, n)
	for i := int64(0); int64(len(area)) < n; i++ {
		bsz := min(sb.bsize, sb.fragRoundup(n-int64(len(area))))
		a := v.di.extAddr(int(i))
		if err := v.fs.checkAddr(v.ino, a, bsz>>sb.fshift); err != nil {
			return nil, err
		}
		b, err := v.fs.cache.Get(a >> sb.fragshift)
		if err != nil {
			return nil, v.fs.corrupt(v.ino, "reading extended attributes: %v", err)
		}
		off := (a & (sb.frag - 1)) << sb.fshift
		area = append(area, b.Data()[off:off+min(bsz, n-int64(len(area)))]...)
		b.Release()
	}
	ea, err := decodeExtattrs(sb.bo, area)
	if err != nil {
		return nil, v.fs.corrupt(v.ino, "%v", err)
	}
	return ea, nil
}

func xattrName(e extattr) string {
	switch e.namespace {
	case eaNamespaceUser:
		return "user." + e.name
	case eaNamespaceSystem:
		return "trusted." + e.name
	}
	return ""
}

// Getxattr implements vnodeops.Xattrs.
func (v *vnode) Getxattr(name string) ([]byte, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	ea, err := v.xattrs()
	if err != nil {
		return nil, err
	}
	for _, e := range ea {
		if xattrName(e) == name {
			return append([]byte(nil), e.value...), nil
		}
	}
	return nil, syscall.ENODATA
}

// Listxattr implements vnodeops.Xattrs.
func (v *vnode) Listxattr() ([]string, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	ea, err := v.xattrs()
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range ea {
		if n := xattrName(e); n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}
