package ext2fs

import (
	"sync"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

var (
	_ vnodeops.ReadWriteVnode = (*vnode)(nil)
	_ vnodeops.Xattrs         = (*vnode)(nil)
	_ vnodeops.FS             = (*fsys)(nil)
)

// vnode is one in-memory inode; it implements vnodeops.Vnode. raw is the
// on-disk inode, read and written under fs.mu; every change is written
// through to the inode table buffer at once (writeInode).
type vnode struct {
	fs  *fsys
	ino uint64
	raw []byte

	freed bool // storage released by Inactive

	// cmu guards the lookup caches below, which readers holding fs.mu
	// shared fill concurrently. Writers holding fs.mu exclusively may use
	// them without cmu.
	cmu     sync.Mutex
	ext     extCache
	lastMap mapCache

	lastAlloc uint64 // physical block last allocated for this file (goal)

	// roomBelow and roomNeed let addEntry skip the blocks of a directory
	// known to be full: no block below roomBelow has room for a record of
	// roomNeed bytes or more. removeEntry lowers roomBelow to a block it
	// frees space in. Guarded by fs.mu (held exclusively by writers).
	roomBelow uint64
	roomNeed  int
}

type dirIdxEnt struct {
	ino uint64
	ft  uint8
}

// mapCache remembers the last indirect-map lookup run.
type mapCache struct {
	lblk, pblk, n uint64 // lblk..lblk+n map to pblk.. (pblk 0: hole)
}

func (v *vnode) u16(off int) uint16        { return le.Uint16(v.raw[off:]) }
func (v *vnode) u32(off int) uint32        { return le.Uint32(v.raw[off:]) }
func (v *vnode) put16(off int, x uint16)   { le.PutUint16(v.raw[off:], x) }
func (v *vnode) put32(off int, x uint32)   { le.PutUint32(v.raw[off:], x) }
func (v *vnode) mode() uint32              { return uint32(v.u16(inMode)) }
func (v *vnode) ftype() uint32             { return v.mode() & vnodeops.S_IFMT }
func (v *vnode) isDir() bool               { return v.ftype() == vnodeops.S_IFDIR }
func (v *vnode) isReg() bool               { return v.ftype() == vnodeops.S_IFREG }
func (v *vnode) isLnk() bool               { return v.ftype() == vnodeops.S_IFLNK }
func (v *vnode) links() uint32             { return uint32(v.u16(inLinks)) }
func (v *vnode) setLinks(n uint32)         { v.put16(inLinks, uint16(n)) }
func (v *vnode) flags() uint32             { return v.u32(inFlags) }
func (v *vnode) setFlags(f uint32)         { v.put32(inFlags, f) }
func (v *vnode) iblock(i int) uint32       { return v.u32(inBlock + 4*i) }
func (v *vnode) setIblock(i int, b uint32) { v.put32(inBlock+4*i, b) }
func (v *vnode) generation() uint32        { return v.u32(inGeneration) }

func (v *vnode) extraIsize() int {
	if v.fs.inodeSize <= goodOldInodeSize {
		return 0
	}
	return int(v.u16(inExtraIsize))
}

// hasField reports whether the large-inode field at byte off (4 bytes) is
// covered by i_extra_isize.
func (v *vnode) hasField(off int) bool {
	return goodOldInodeSize+v.extraIsize() >= off+4
}

func (v *vnode) uid() uint32 {
	return uint32(v.u16(inUIDLo)) | uint32(v.u16(inUIDHi))<<16
}

func (v *vnode) gid() uint32 {
	return uint32(v.u16(inGIDLo)) | uint32(v.u16(inGIDHi))<<16
}

func (v *vnode) setUID(u uint32) { v.put16(inUIDLo, uint16(u)); v.put16(inUIDHi, uint16(u>>16)) }
func (v *vnode) setGID(g uint32) { v.put16(inGIDLo, uint16(g)); v.put16(inGIDHi, uint16(g>>16)) }

// size is i_size; the high word counts for regular files (large_file) and,
// with large_dir, for directories; in revision 0 directories it is
// i_dir_acl.
func (v *vnode) size() uint64 {
	s := uint64(v.u32(inSizeLo))
	if v.isReg() || (v.isDir() && v.fs.incompat&incompatLargedir != 0) {
		s |= uint64(v.u32(inSizeHi)) << 32
	}
	return s
}

func (v *vnode) setSize(s uint64) {
	v.put32(inSizeLo, uint32(s))
	if v.isReg() {
		v.put32(inSizeHi, uint32(s>>32))
	}
}

// blocks512 is i_blocks in 512-byte units (huge_file: in file system
// blocks when the inode says so).
func (v *vnode) blocks512() uint64 {
	n := uint64(v.u32(inBlocksLo))
	if v.fs.hugeFile {
		n |= uint64(v.u16(inBlocksHi)) << 32
		if v.flags()&flagHugeFile != 0 {
			n <<= v.fs.bsBits - 9
		}
	}
	return n
}

// addBlocks adjusts i_blocks by n file system blocks (negative frees).
func (v *vnode) addBlocks(n int64) {
	cur := int64(v.u32(inBlocksLo))
	cur += n * int64(v.fs.bs/512)
	if cur < 0 {
		cur = 0
	}
	v.put32(inBlocksLo, uint32(cur))
}

func (v *vnode) fileACL() uint64 {
	a := uint64(v.u32(inFileACLLo))
	if v.fs.incompat&incompat64bit != 0 {
		a |= uint64(v.u16(inFileACLHi)) << 32
	}
	return a
}

func (v *vnode) time(off, extraOff int) int64 {
	return decodeTime(v.u32(off), v.u32OrZero(extraOff), extraOff != 0 && v.hasField(extraOff))
}

func (v *vnode) u32OrZero(off int) uint32 {
	if off == 0 || !v.hasField(off) {
		return 0
	}
	return v.u32(off)
}

func (v *vnode) setTime(off, extraOff int, t int64) {
	sec, extra := encodeTime(t)
	v.put32(off, sec)
	if v.hasField(extraOff) {
		v.put32(extraOff, extra)
	}
}

// isFastSymlink reports whether a symlink keeps its target in i_block:
// no data blocks (i_blocks counts only an xattr block, if any), no extent
// tree and no inline data (ext4 inodes.rst, "Symbolic Links").
func (v *vnode) isFastSymlink() bool {
	if !v.isLnk() || v.flags()&(flagExtents|flagInlineData) != 0 {
		return false
	}
	b := v.blocks512()
	if v.fileACL() != 0 {
		b -= min(b, uint64(v.fs.bs/512))
	}
	return b == 0
}

// hasBlockMap reports whether i_block is a block map or extent tree (and
// not a symlink target, device number or inline data).
func (v *vnode) hasBlockMap() bool {
	if v.flags()&flagInlineData != 0 {
		return false
	}
	switch v.ftype() {
	case vnodeops.S_IFREG, vnodeops.S_IFDIR:
		return true
	case vnodeops.S_IFLNK:
		return !v.isFastSymlink()
	}
	return false
}

func (v *vnode) isExtents() bool { return v.flags()&flagExtents != 0 }

// validate checks an inode just read: a known type, a sane size, and the
// root of its extent tree.
func (v *vnode) validate() error {
	fs := v.fs
	switch v.ftype() {
	case vnodeops.S_IFREG, vnodeops.S_IFDIR, vnodeops.S_IFLNK, vnodeops.S_IFCHR,
		vnodeops.S_IFBLK, vnodeops.S_IFIFO, vnodeops.S_IFSOCK:
	default:
		return fs.corrupt(v.ino, "bad file type in mode %#o", v.mode())
	}
	if v.ino == rootIno && !v.isDir() {
		return fs.corrupt(v.ino, "root is not a directory")
	}
	if int64(v.size()) < 0 {
		return fs.corrupt(v.ino, "size %d out of range", v.size())
	}
	if v.hasBlockMap() && v.size() > fs.addressable(v.isExtents()) {
		// Served as it is, the file would read as zeros without end.
		return fs.corrupt(v.ino, "size %d beyond what its block map can address (%d)", v.size(), fs.addressable(v.isExtents()))
	}
	if v.flags()&flagInlineData != 0 && fs.incompat&incompatInlineData == 0 {
		return fs.corrupt(v.ino, "inline data flag without the inline_data feature")
	}
	if v.isExtents() && v.hasBlockMap() {
		if fs.incompat&incompatExtents == 0 {
			return fs.corrupt(v.ino, "extents flag without the extent feature")
		}
		if _, err := v.extHeader(v.raw[inBlock:inBlock+60], -1); err != nil {
			return err
		}
	}
	if v.isLnk() {
		if v.isFastSymlink() && v.size() > 60 {
			return fs.corrupt(v.ino, "fast symlink of %d bytes", v.size())
		}
		if v.size() == 0 || v.size() > uint64(max(fs.bs, 4096)) {
			return fs.corrupt(v.ino, "symlink size %d", v.size())
		}
	}
	if v.isDir() && v.hasBlockMap() {
		if v.size()%uint64(fs.bs) != 0 {
			return fs.corrupt(v.ino, "directory size %d is not a multiple of the block size", v.size())
		}
		if v.size()>>fs.bsBits > fs.blocksCount {
			return fs.corrupt(v.ino, "directory size %d exceeds the file system", v.size())
		}
	}
	return nil
}

// rdev decodes a device node's number from i_block: the old 8:8 encoding
// in i_block[0], else the new 12:20 one in i_block[1] (ext4 inodes.rst,
// "i_block").
func (v *vnode) rdev() uint64 {
	if b0 := v.iblock(0); b0 != 0 {
		return mkdev((b0>>8)&0xff, b0&0xff)
	}
	b1 := v.iblock(1)
	return mkdev((b1&0xfff00)>>8, (b1&0xff)|((b1>>12)&0xfff00))
}

func (v *vnode) setRdev(d uint64) {
	ma, mi := devMajor(d), devMinor(d)
	if ma < 256 && mi < 256 {
		v.setIblock(0, ma<<8|mi)
		v.setIblock(1, 0)
		return
	}
	v.setIblock(0, 0)
	v.setIblock(1, (mi&0xff)|(ma<<8)|((mi&^0xff)<<12))
	v.setIblock(2, 0)
}

func (v *vnode) attr() vnodeops.Attr {
	a := vnodeops.Attr{
		Mode:    v.mode(),
		Nlink:   v.links(),
		UID:     v.uid(),
		GID:     v.gid(),
		Size:    v.size(),
		Blocks:  v.blocks512(),
		BlkSize: uint32(v.fs.bs),
		Atime:   v.time(inAtime, inAtimeExtra),
		Mtime:   v.time(inMtime, inMtimeExtra),
		Ctime:   v.time(inCtime, inCtimeExtra),
		Ino:     v.ino,
		Gen:     uint64(v.generation()),
		Flags:   v.flags(),
	}
	if v.hasField(inCrtimeExtra) {
		a.Btime = v.time(inCrtime, inCrtimeExtra)
	}
	if t := v.ftype(); t == vnodeops.S_IFCHR || t == vnodeops.S_IFBLK {
		a.Rdev = v.rdev()
	}
	return a
}

// Getattr implements vnodeops.Vnode.
func (v *vnode) Getattr() (vnodeops.Attr, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	return v.attr(), nil
}

// Access implements vnodeops.Vnode: the Unix permission check, plus EROFS
// for writing on a read-only mount and EPERM for writing an immutable
// file.
func (v *vnode) Access(want uint32, cred vnodeops.Cred) error {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	if want&vnodeops.AccessWrite != 0 {
		if v.fs.ro {
			return syscall.EROFS
		}
		if v.flags()&flagImmutable != 0 {
			return syscall.EPERM
		}
	}
	return vnodeops.CheckAccess(v.attr(), want, cred)
}

// sync writes the in-memory inode to its table block. Caller holds fs.mu
// exclusively.
func (v *vnode) sync() error {
	return v.fs.writeInode(v.ino, v.raw)
}

// touch sets the modification and/or change time to now.
func (v *vnode) touch(mtime, ctime bool) {
	now := v.fs.nowNanos()
	if mtime {
		v.setTime(inMtime, inMtimeExtra, now)
	}
	if ctime {
		v.setTime(inCtime, inCtimeExtra, now)
	}
}
