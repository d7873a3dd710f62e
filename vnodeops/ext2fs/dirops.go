package ext2fs

import (
	"math/rand/v2"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// linkMax is ext2's limit on a link count (EXT2_LINK_MAX).
const linkMax = 32000

// writeRecord stores a directory record at off of data.
func (fs *fsys) writeRecord(data []byte, off int, ino uint64, recLen int, name string, ft uint8) {
	le.PutUint32(data[off:], uint32(ino))
	le.PutUint16(data[off+4:], fs.encRecLen(recLen))
	data[off+6] = byte(len(name))
	if fs.filetype {
		data[off+7] = ft
	} else {
		data[off+7] = 0 // high byte of name_len
	}
	n := copy(data[off+direntHeader:], name)
	clear(data[off+direntHeader+n : off+direntHeader+align4(n)])
}

// dirModified does what every change of directory v's entries needs: the
// htree index flag goes (the index would no longer match), and the times.
func (v *vnode) dirModified() {
	if f := v.flags(); f&flagIndex != 0 {
		v.setFlags(f &^ flagIndex)
	}
	v.touch(true, true)
}

// addEntry enters name -> ino into directory v, in the first gap large
// enough (splitting a record) or in a new block at the end. Caller holds
// fs.mu exclusively and has checked that name is absent.
func (v *vnode) addEntry(name string, ino uint64, ft uint8) error {
	fs := v.fs
	need := direntHeader + align4(len(name))
	nblk := v.dirBlocks()
	start := uint64(0)
	if need >= v.roomNeed {
		start = min(v.roomBelow, nblk)
	}
	for lblk := start; lblk < nblk; lblk++ {
		b, err := v.dirBlock(lblk)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		data := b.Data()
		placed := false
		err = v.parseRecords(data, func(e dirent) bool {
			used := 0
			if e.ino != 0 {
				used = direntHeader + align4(len(e.name))
			}
			if e.recLen-used < need {
				return true
			}
			if used == 0 {
				fs.writeRecord(data, e.off, ino, e.recLen, name, ft)
			} else {
				le.PutUint16(data[e.off+4:], fs.encRecLen(used))
				fs.writeRecord(data, e.off+used, ino, e.recLen-used, name, ft)
			}
			placed = true
			return false
		})
		if placed {
			b.MarkDirty()
		}
		b.Release()
		if err != nil {
			return err
		}
		if placed {
			v.roomBelow, v.roomNeed = lblk, need
			return v.entryAdded(name, ino, ft)
		}
	}
	// Grow the directory by one block.
	if (nblk+1)<<fs.bsBits > 1<<32-1 {
		return syscall.EFBIG
	}
	pblk, _, err := v.bmapAlloc(nblk)
	if err != nil {
		v.sync()
		return err
	}
	b, err := fs.cache.GetNew(int64(pblk))
	if err != nil {
		v.sync()
		return fs.corrupt(v.ino, "new directory block %d: %v", pblk, err)
	}
	fs.writeRecord(b.Data(), 0, ino, fs.bs, name, ft)
	b.Release()
	v.roomBelow, v.roomNeed = nblk, need
	v.put32(inSizeLo, uint32((nblk+1)<<fs.bsBits))
	return v.entryAdded(name, ino, ft)
}

func (v *vnode) entryAdded(name string, ino uint64, ft uint8) error {
	if m := v.fs.getIdx(v.ino); m != nil {
		m[name] = dirIdxEnt{ino, ft}
	}
	v.dirModified()
	return v.sync()
}

// removeEntry deletes name from directory v: its record merges into the
// one before it, or, first in its block, keeps its space with inode 0.
func (v *vnode) removeEntry(name string) error {
	d, loc, ok, err := v.findEntry(name)
	if err != nil {
		return err
	}
	if !ok {
		return syscall.ENOENT
	}
	b, err := v.dirBlock(loc.lblk)
	if err != nil || b == nil {
		return v.fs.corrupt(v.ino, "directory block vanished")
	}
	data := b.Data()
	if loc.prevOff >= 0 {
		prevLen := v.fs.decRecLen(le.Uint16(data[loc.prevOff+4:]))
		le.PutUint16(data[loc.prevOff+4:], v.fs.encRecLen(prevLen+d.recLen))
	} else {
		le.PutUint32(data[loc.off:], 0)
	}
	b.MarkDirty()
	b.Release()
	v.roomBelow = min(v.roomBelow, loc.lblk)
	if m := v.fs.getIdx(v.ino); m != nil {
		delete(m, name)
	}
	v.dirModified()
	return v.sync()
}

// setEntry points the existing entry name of v at ino.
func (v *vnode) setEntry(name string, ino uint64, ft uint8) error {
	_, loc, ok, err := v.findEntry(name)
	if err != nil {
		return err
	}
	if !ok {
		return syscall.ENOENT
	}
	b, err := v.dirBlock(loc.lblk)
	if err != nil || b == nil {
		return v.fs.corrupt(v.ino, "directory block vanished")
	}
	data := b.Data()
	le.PutUint32(data[loc.off:], uint32(ino))
	if v.fs.filetype {
		data[loc.off+7] = ft
	}
	b.MarkDirty()
	b.Release()
	if m := v.fs.getIdx(v.ino); m != nil {
		m[name] = dirIdxEnt{ino, ft}
	}
	v.dirModified()
	return v.sync()
}

// isEmpty reports whether directory v holds nothing but "." and "..".
func (v *vnode) isEmpty() (bool, error) {
	for lblk := uint64(0); lblk < v.dirBlocks(); lblk++ {
		b, err := v.dirBlock(lblk)
		if err != nil {
			return false, err
		}
		if b == nil {
			continue
		}
		empty := true
		err = v.parseRecords(b.Data(), func(e dirent) bool {
			if e.ino != 0 && string(e.name) != "." && string(e.name) != ".." {
				empty = false
				return false
			}
			return true
		})
		b.Release()
		if err != nil || !empty {
			return false, err
		}
	}
	return true, nil
}

// prepDir checks the common preconditions of an operation that adds name
// to directory v. Caller holds fs.mu exclusively.
func (v *vnode) prepDir(name string) error {
	if err := v.checkWritable(); err != nil {
		return err
	}
	if !v.isDir() {
		return syscall.ENOTDIR
	}
	if v.freed || v.links() == 0 {
		return syscall.ENOENT
	}
	if len(name) > 255 {
		return syscall.ENAMETOOLONG
	}
	if name == "." || name == ".." {
		return syscall.EEXIST
	}
	_, _, err := v.lookupLocked(name)
	switch err {
	case nil:
		return syscall.EEXIST
	case syscall.ENOENT:
		return nil
	}
	return err
}

// newInode allocates and initialises an inode in memory (not yet
// written) near directory v.
func (v *vnode) newInode(mode, uid, gid uint32) (*vnode, error) {
	fs := v.fs
	isDir := mode&vnodeops.S_IFMT == vnodeops.S_IFDIR
	ino, err := fs.allocInode(v.ino, isDir)
	if err != nil {
		return nil, err
	}
	c := &vnode{fs: fs, ino: ino, raw: make([]byte, fs.inodeSize)}
	c.put16(inMode, uint16(mode))
	c.setUID(uid)
	c.setGID(gid)
	c.setLinks(1)
	if fs.inodeSize > goodOldInodeSize {
		c.put16(inExtraIsize, uint16(fs.wantExtra))
	}
	now := fs.nowNanos()
	c.setTime(inAtime, inAtimeExtra, now)
	c.setTime(inMtime, inMtimeExtra, now)
	c.setTime(inCtime, inCtimeExtra, now)
	if c.hasField(inCrtimeExtra) {
		c.setTime(inCrtime, inCrtimeExtra, now)
	}
	c.put32(inGeneration, rand.Uint32())
	return c, nil
}

// discard undoes newInode after a later step failed: the inode's blocks
// and bitmap bit are released.
func (v *vnode) discard() {
	v.setLinks(0)
	if v.hasBlockMap() {
		v.truncateBlocks(0)
	}
	v.put32(inDtime, uint32(v.fs.now().Unix()))
	v.sync()
	v.fs.freeInode(v.ino, v.isDir())
}

// makeNode is Create/Mknod/Symlink's common tail: write c and enter it.
func (v *vnode) makeNode(name string, c *vnode) (uint64, error) {
	if err := c.sync(); err != nil {
		c.discard()
		return 0, err
	}
	if err := v.addEntry(name, c.ino, modeToFT(c.mode())); err != nil {
		c.discard()
		return 0, err
	}
	return c.ino, nil
}

// Create implements vnodeops.Vnode.
func (v *vnode) Create(name string, perm, uid, gid uint32) (uint64, error) {
	return v.Mknod(name, vnodeops.S_IFREG|perm&vnodeops.PermMask, uid, gid, 0)
}

// Mknod implements vnodeops.Vnode. Device numbers go into i_block in the
// old 8:8 encoding when they fit, else the new one.
func (v *vnode) Mknod(name string, mode, uid, gid uint32, rdev uint64) (uint64, error) {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.prepDir(name); err != nil {
		return 0, err
	}
	switch mode & vnodeops.S_IFMT {
	case vnodeops.S_IFREG, vnodeops.S_IFCHR, vnodeops.S_IFBLK, vnodeops.S_IFIFO, vnodeops.S_IFSOCK:
	case 0:
		mode |= vnodeops.S_IFREG
	default:
		return 0, syscall.EINVAL
	}
	c, err := v.newInode(mode&(vnodeops.S_IFMT|vnodeops.PermMask), uid, gid)
	if err != nil {
		return 0, err
	}
	if t := c.ftype(); t == vnodeops.S_IFCHR || t == vnodeops.S_IFBLK {
		c.setRdev(rdev)
	}
	return v.makeNode(name, c)
}

// Symlink implements vnodeops.Vnode: targets under 60 bytes live in
// i_block (fast), longer ones in one block.
func (v *vnode) Symlink(name, target string, uid, gid uint32) (uint64, error) {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.prepDir(name); err != nil {
		return 0, err
	}
	if len(target) == 0 {
		return 0, syscall.ENOENT
	}
	if len(target) >= fs.bs || len(target) >= 4096 {
		return 0, syscall.ENAMETOOLONG
	}
	c, err := v.newInode(vnodeops.S_IFLNK|0o777, uid, gid)
	if err != nil {
		return 0, err
	}
	if len(target) < 60 {
		copy(c.raw[inBlock:], target)
	} else {
		blk, err := c.allocData(fs.groupFirstBlock(uint32((c.ino - 1) / uint64(fs.ipg))))
		if err != nil {
			c.discard()
			return 0, err
		}
		c.setIblock(0, uint32(blk))
		b, err := fs.cache.GetNew(int64(blk))
		if err != nil {
			c.discard()
			return 0, fs.corrupt(c.ino, "new symlink block %d: %v", blk, err)
		}
		copy(b.Data(), target)
		b.Release()
	}
	c.put32(inSizeLo, uint32(len(target)))
	return v.makeNode(name, c)
}

// Mkdir implements vnodeops.Vnode.
func (v *vnode) Mkdir(name string, perm, uid, gid uint32) (uint64, error) {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.prepDir(name); err != nil {
		return 0, err
	}
	if v.links() >= linkMax {
		return 0, syscall.EMLINK
	}
	c, err := v.newInode(vnodeops.S_IFDIR|perm&vnodeops.PermMask, uid, gid)
	if err != nil {
		return 0, err
	}
	c.setLinks(2)
	blk, err := c.allocData(fs.groupFirstBlock(uint32((c.ino - 1) / uint64(fs.ipg))))
	if err != nil {
		c.discard()
		return 0, err
	}
	c.setIblock(0, uint32(blk))
	b, err := fs.cache.GetNew(int64(blk))
	if err != nil {
		c.discard()
		return 0, fs.corrupt(c.ino, "new directory block %d: %v", blk, err)
	}
	fs.writeRecord(b.Data(), 0, c.ino, 12, ".", ftDir)
	fs.writeRecord(b.Data(), 12, v.ino, fs.bs-12, "..", ftDir)
	b.Release()
	c.put32(inSizeLo, uint32(fs.bs))
	ino, err := v.makeNode(name, c)
	if err != nil {
		return 0, err
	}
	v.setLinks(v.links() + 1)
	return ino, v.sync()
}

// Link implements vnodeops.Vnode.
func (v *vnode) Link(vp vnodeops.Vnode, name string) error {
	fs := v.fs
	t, ok := vp.(*vnode)
	if !ok || t.fs != fs {
		return syscall.EXDEV
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.prepDir(name); err != nil {
		return err
	}
	if err := t.checkWritable(); err != nil {
		return err
	}
	if t.isDir() {
		return syscall.EPERM
	}
	if t.freed || t.links() == 0 {
		return syscall.ENOENT
	}
	if t.links() >= linkMax {
		return syscall.EMLINK
	}
	// Raise the count before the entry exists: a crash leaves a count
	// too high, which fsck repairs without loss.
	t.setLinks(t.links() + 1)
	t.touch(false, true)
	if err := t.sync(); err != nil {
		return err
	}
	if err := v.addEntry(name, t.ino, modeToFT(t.mode())); err != nil {
		t.setLinks(t.links() - 1)
		t.sync()
		return err
	}
	return nil
}

// checkEntry verifies that name in directory v names vp's inode.
func (v *vnode) checkEntry(name string, vp *vnode) error {
	ino, _, err := v.lookupLocked(name)
	if err != nil {
		return err
	}
	if ino != vp.ino {
		return syscall.ENOENT
	}
	return nil
}

// Remove implements vnodeops.Vnode.
func (v *vnode) Remove(name string, vp vnodeops.Vnode) error {
	fs := v.fs
	t, ok := vp.(*vnode)
	if !ok || t.fs != fs {
		return syscall.EXDEV
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.checkWritable(); err != nil {
		return err
	}
	if !v.isDir() {
		return syscall.ENOTDIR
	}
	if t.isDir() {
		return syscall.EISDIR
	}
	if err := v.checkEntry(name, t); err != nil {
		return err
	}
	if err := v.removeEntry(name); err != nil {
		return err
	}
	if n := t.links(); n > 0 {
		t.setLinks(n - 1)
	}
	t.touch(false, true)
	return t.sync()
}

// Rmdir implements vnodeops.Vnode.
func (v *vnode) Rmdir(name string, vp vnodeops.Vnode) error {
	fs := v.fs
	t, ok := vp.(*vnode)
	if !ok || t.fs != fs {
		return syscall.EXDEV
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.checkWritable(); err != nil {
		return err
	}
	if !v.isDir() || !t.isDir() {
		return syscall.ENOTDIR
	}
	if t == v || name == "." {
		return syscall.EINVAL
	}
	if name == ".." {
		return syscall.ENOTEMPTY
	}
	if err := t.checkWritable(); err != nil {
		return err
	}
	if err := v.checkEntry(name, t); err != nil {
		return err
	}
	empty, err := t.isEmpty()
	if err != nil {
		return err
	}
	if !empty {
		return syscall.ENOTEMPTY
	}
	if err := v.removeEntry(name); err != nil {
		return err
	}
	t.setLinks(0)
	t.touch(false, true)
	if err := t.sync(); err != nil {
		return err
	}
	if n := v.links(); n > 2 {
		v.setLinks(n - 1)
	}
	return v.sync()
}

// Rename implements vnodeops.Vnode. The new entry is made (or retargeted)
// before the old one goes, so a crash never loses the file.
func (v *vnode) Rename(fromName string, fvp vnodeops.Vnode, toDir vnodeops.Vnode, toName string, tvp vnodeops.Vnode) error {
	fs := v.fs
	fv, ok1 := fvp.(*vnode)
	td, ok2 := toDir.(*vnode)
	if !ok1 || !ok2 || fv.fs != fs || td.fs != fs {
		return syscall.EXDEV
	}
	var tv *vnode
	if tvp != nil {
		t, ok := tvp.(*vnode)
		if !ok || t.fs != fs {
			return syscall.EXDEV
		}
		tv = t
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, x := range []*vnode{v, td, fv} {
		if err := x.checkWritable(); err != nil {
			return err
		}
	}
	if !v.isDir() || !td.isDir() {
		return syscall.ENOTDIR
	}
	if len(toName) > 255 {
		return syscall.ENAMETOOLONG
	}
	if fromName == "." || fromName == ".." || toName == "." || toName == ".." {
		return syscall.EINVAL
	}
	if td.freed || td.links() == 0 {
		return syscall.ENOENT
	}
	if err := v.checkEntry(fromName, fv); err != nil {
		return err
	}
	isDir := fv.isDir()
	moved := isDir && v != td
	ft := modeToFT(fv.mode())
	if tv != nil {
		if err := tv.checkWritable(); err != nil {
			return err
		}
		if err := td.checkEntry(toName, tv); err != nil {
			return err
		}
		if tv.isDir() {
			if !isDir {
				return syscall.EISDIR
			}
			empty, err := tv.isEmpty()
			if err != nil {
				return err
			}
			if !empty {
				return syscall.ENOTEMPTY
			}
		} else if isDir {
			return syscall.ENOTDIR
		}
		if err := td.setEntry(toName, fv.ino, ft); err != nil {
			return err
		}
		if tv.isDir() {
			tv.setLinks(0)
			if n := td.links(); n > 2 {
				td.setLinks(n - 1)
			}
		} else if n := tv.links(); n > 0 {
			tv.setLinks(n - 1)
		}
		tv.touch(false, true)
		if err := tv.sync(); err != nil {
			return err
		}
	} else {
		if _, _, err := td.lookupLocked(toName); err == nil {
			return syscall.EEXIST
		} else if err != syscall.ENOENT {
			return err
		}
		if moved && td.links() >= linkMax {
			return syscall.EMLINK
		}
		if err := td.addEntry(toName, fv.ino, ft); err != nil {
			return err
		}
	}
	if err := v.removeEntry(fromName); err != nil {
		return err
	}
	if moved {
		if err := fv.setEntry("..", td.ino, ftDir); err != nil {
			return err
		}
		if n := v.links(); n > 2 {
			v.setLinks(n - 1)
		}
		td.setLinks(td.links() + 1)
		if err := v.sync(); err != nil {
			return err
		}
		if err := td.sync(); err != nil {
			return err
		}
	}
	fv.touch(false, true)
	return fv.sync()
}
