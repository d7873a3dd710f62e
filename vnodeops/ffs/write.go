package ffs

import (
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// The block map of a file keeps one invariant that readers rely on
// (fs.h blksize): every block is a full block except the last block of
// a file when it is a direct block (lbn < 12), which holds only the
// fragments the size needs. allocBlock and growTail keep it as files
// grow, truncateLocked as they shrink. Caller holds fs.mu exclusively in
// everything below.

// addBlocks adds n fragments (may be negative) to di_blocks.
func (v *vnode) addBlocks(n int64) {
	v.di.setBlocks(uint64(int64(v.di.blocks()) + n<<v.fs.sb.fshift/devBSize))
}

// pref is where logical block lbn should go, as ffs_blkpref chooses:
// right after the file's previous block; at the start of the inode's
// group's data for the first blocks; and past the single indirect range,
// every fs_maxbpg blocks, in the next group (from the previous block's)
// with at least the average number of free blocks, so that one big file
// does not fill a group.
func (v *vnode) pref(lbn int64) int64 {
	fs := v.fs
	sb := fs.sb
	var prev int64
	if lbn > 0 {
		if a, err := v.bmap(lbn - 1); err == nil && a > 0 {
			prev = a &^ (sb.frag - 1)
		}
	}
	idx := lbn
	if lbn >= nDAddr {
		idx = (lbn - nDAddr) % sb.nindir
	}
	if sb.maxbpg > 0 && lbn >= nDAddr+sb.nindir && idx%sb.maxbpg == 0 {
		start := sb.inoToCg(v.ino) + uint32(lbn/sb.maxbpg)
		if prev > 0 {
			start = sb.dtog(prev) + 1
		}
		avg := sb.cstotal.nbfree / int64(sb.ncg)
		for i := uint32(0); i < sb.ncg; i++ {
			if c := (start + i) % sb.ncg; fs.cs[c].nbfree >= avg {
				return sb.cgdmin(c)
			}
		}
	}
	if prev > 0 {
		return prev + sb.frag
	}
	return sb.cgdmin(sb.inoToCg(v.ino))
}

// allocBlock makes logical block lbn hold as many fragments as it needs
// in a file of newSize bytes (v.di.size() being the current size):
// allocating it, zeroed, if it is a hole, or growing its fragments in
// place or by moving them. Missing indirect blocks are allocated zeroed
// and written before the pointers to them. It returns the block's
// fragment address.
func (v *vnode) allocBlock(lbn int64, newSize uint64) (int64, error) {
	fs := v.fs
	sb := fs.sb
	uid := v.di.uid()
	cg := sb.inoToCg(v.ino)
	ptr, path, err := fs.indirPath(lbn)
	if err != nil {
		return 0, err
	}
	if path == nil {
		want := sb.blkSize(newSize, lbn) >> sb.fshift
		a := v.di.addr(ptr)
		if a == 0 {
			a, err = fs.allocFrags(v.pref(lbn), cg, want, uid)
			if err != nil {
				return 0, err
			}
			if err := fs.zeroFrags(a, want); err != nil {
				return 0, err
			}
			v.di.setAddr(ptr, a)
			v.addBlocks(want)
			return a, nil
		}
		have := sb.blkSize(v.di.size(), lbn) >> sb.fshift
		if have >= want {
			return a, nil
		}
		if err := fs.checkAddr(v.ino, a, have); err != nil {
			return 0, err
		}
		ok, err := fs.extendFrags(a, have, want, uid)
		if err != nil {
			return 0, err
		}
		if ok {
			v.addBlocks(want - have)
			return a, fs.zeroFrags(a+have, want-have)
		}
		na, err := fs.allocFrags(a, cg, want, uid)
		if err != nil {
			return 0, err
		}
		if err := fs.moveFrags(a, na, have, want); err != nil {
			return 0, err
		}
		v.di.setAddr(ptr, na)
		v.addBlocks(want - have)
		return na, fs.freeFrags(v.ino, a, have)
	}
	a := v.di.addr(ptr)
	if a == 0 {
		if a, err = v.newIndir(v.pref(lbn), cg, uid); err != nil {
			return 0, err
		}
		v.di.setAddr(ptr, a)
	}
	for level, i := range path {
		b, err := fs.getIndir(v.ino, a)
		if err != nil {
			return 0, err
		}
		child := fs.ptrAt(b.Data(), i)
		if child == 0 {
			if level < len(path)-1 {
				child, err = v.newIndir(a+sb.frag, cg, uid)
			} else if child, err = fs.allocFrags(v.pref(lbn), cg, sb.frag, uid); err == nil {
				v.addBlocks(sb.frag)
				err = fs.zeroFrags(child, sb.frag)
			}
			if err != nil {
				b.Release()
				return 0, err
			}
			fs.setPtrAt(b.Data(), i, child)
			b.MarkDirty()
		}
		b.Release()
		a = child
	}
	return a, nil
}

// newIndir allocates a zeroed indirect block and writes it, so that it
// reaches the image before any pointer to it.
func (v *vnode) newIndir(pref int64, cg uint32, uid uint32) (int64, error) {
	fs := v.fs
	a, err := fs.allocFrags(pref, cg, fs.sb.frag, uid)
	if err != nil {
		return 0, err
	}
	v.addBlocks(fs.sb.frag)
	if err := fs.zeroFrags(a, fs.sb.frag); err != nil {
		return 0, err
	}
	if err := fs.cache.Flush(a >> fs.sb.fragshift); err != nil {
		return 0, errno(err)
	}
	return a, nil
}

// moveFrags copies have fragments from a to the want fragments at na,
// which allocFrags has just handed out, zeroing the rest.
func (fs *fsys) moveFrags(a, na, have, want int64) error {
	sb := fs.sb
	src, err := fs.cache.Get(a >> sb.fragshift)
	if err != nil {
		return fs.corrupt(0, "reading block %d: %v", a, err)
	}
	off := (a & (sb.frag - 1)) << sb.fshift
	data := append([]byte(nil), src.Data()[off:off+have<<sb.fshift]...)
	src.Release()
	if err := fs.zeroFrags(na, want); err != nil {
		return err
	}
	dst, err := fs.cache.Get(na >> sb.fragshift)
	if err != nil {
		return fs.corrupt(0, "reading block %d: %v", na, err)
	}
	copy(dst.Data()[(na&(sb.frag-1))<<sb.fshift:], data)
	dst.MarkDirty()
	dst.Release()
	return nil
}

// growTail, before the file grows to newSize past its last block, makes
// that block (when it is a direct block held in fragments) a whole
// block. A last block that stays the last is grown by the caller's
// allocBlock of it.
func (v *vnode) growTail(newSize uint64) error {
	old := v.di.size()
	if newSize <= old || old == 0 {
		return nil
	}
	bshift := v.fs.sb.bshift
	last := int64(old-1) >> bshift
	if last >= nDAddr || int64(newSize-1)>>bshift == last || v.di.addr(int(last)) == 0 {
		return nil
	}
	_, err := v.allocBlock(last, newSize)
	return err
}

// writeLocked writes p at off block by block, growing the size as it
// goes so that the block map invariant holds after every block.
func (v *vnode) writeLocked(p []byte, off int64) (int, error) {
	fs := v.fs
	sb := fs.sb
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		lbn := pos >> sb.bshift
		in := pos & (sb.bsize - 1)
		cnt := min(int64(len(p)-n), sb.bsize-in)
		step := max(v.di.size(), uint64(pos+cnt))
		if err := v.growTail(step); err != nil {
			return n, err
		}
		a, err := v.allocBlock(lbn, step)
		if err != nil {
			return n, err
		}
		b, err := fs.cache.Get(a >> sb.fragshift)
		if err != nil {
			return n, fs.corrupt(v.ino, "reading block %d: %v", a, err)
		}
		boff := (a&(sb.frag-1))<<sb.fshift + in
		copy(b.Data()[boff:boff+cnt], p[n:])
		b.MarkDirty()
		b.Release()
		if step > v.di.size() {
			v.di.setSize(step)
			v.di.setBlksize(uint32(sb.blkSize(step, int64((step-1)>>sb.bshift))))
		}
		n += int(cnt)
	}
	return n, nil
}

// checkWritable returns EROFS on a read-only mount and EPERM for an
// immutable file (or, with noAppend, an append-only one).
func (v *vnode) checkWritable(noAppend bool) error {
	if v.fs.ro {
		return syscall.EROFS
	}
	if v.fs.unmounted {
		return syscall.EIO
	}
	f := v.di.flags()
	if f&flagsImmutable != 0 || (noAppend && f&flagsAppend != 0) {
		return syscall.EPERM
	}
	return nil
}

func (v *vnode) nowSpec() tspec { return tspecOf(v.fs.now().UnixNano()) }

// Write implements vnodeops.Writer. An append-only file takes writes at
// its end only (EPERM elsewhere).
func (v *vnode) Write(p []byte, off int64) (int, error) {
	v.fs.mu.Lock()
	defer v.fs.mu.Unlock()
	if err := v.checkWritable(false); err != nil {
		return 0, err
	}
	if v.isDir() {
		return 0, syscall.EISDIR
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if v.di.flags()&flagsAppend != 0 && uint64(off) != v.di.size() {
		return 0, syscall.EPERM
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off+int64(len(p)) > v.fs.sb.maxFileSize() || off+int64(len(p)) < off {
		return 0, syscall.EFBIG
	}
	n, err := v.writeLocked(p, off)
	now := v.nowSpec()
	v.di.setMtime(now)
	v.di.setCtime(now)
	if werr := v.fs.writeInode(v); err == nil {
		err = werr
	}
	return n, err
}

// truncateLocked sets the size, freeing the blocks past it (indirect
// blocks too) and the fragments the new last block no longer needs, and
// zeroing the rest of that block so that a later growth reads zeros.
func (v *vnode) truncateLocked(newSize uint64) error {
	fs := v.fs
	sb := fs.sb
	old := v.di.size()
	if newSize >= old {
		if err := v.growTail(newSize); err != nil {
			return err
		}
		// A last direct block that stays the last takes the fragments
		// the new size needs; a hole stays a hole.
		if last := int64(newSize-1) >> sb.bshift; old > 0 && last < nDAddr && last == int64(old-1)>>sb.bshift && v.di.addr(int(last)) != 0 {
			if _, err := v.allocBlock(last, newSize); err != nil {
				return err
			}
		}
		v.di.setSize(newSize)
		return nil
	}
	keep := int64((newSize + uint64(sb.bsize) - 1) >> sb.bshift)
	if in := int64(newSize) & (sb.bsize - 1); in != 0 {
		lbn := int64(newSize >> sb.bshift)
		a, err := v.bmap(lbn)
		if err != nil {
			return err
		}
		if a != 0 {
			b, data, err := fs.fragBuf(v.ino, a, sb.blkSize(old, lbn))
			if err != nil {
				return err
			}
			clear(data[in:])
			b.MarkDirty()
			b.Release()
		}
	}
	fl := &freeList{seen: map[int64]bool{}}
	for i := keep; i < nDAddr; i++ {
		a := v.di.addr(int(i))
		if a == 0 {
			continue
		}
		n := sb.blkSize(old, i) >> sb.fshift
		v.di.setAddr(int(i), 0)
		v.addBlocks(-n)
		fl.spans = append(fl.spans, span{a, n})
	}
	if last := keep - 1; last >= 0 && last < nDAddr {
		if a := v.di.addr(int(last)); a != 0 {
			have, want := sb.blkSize(old, last)>>sb.fshift, sb.blkSize(newSize, last)>>sb.fshift
			if want < have {
				v.addBlocks(want - have)
				fl.spans = append(fl.spans, span{a + want, have - want})
			}
		}
	}
	start, width := int64(nDAddr), int64(1)
	var treeErr error
	for l := 0; l < nIAddr && treeErr == nil; l++ {
		width *= sb.nindir
		if a := v.di.addr(nDAddr + l); a != 0 && start+width > keep {
			var freed int64
			freed, treeErr = v.truncTree(a, l+1, start, keep, fl)
			v.addBlocks(-freed)
			if start >= keep && treeErr == nil {
				v.di.setAddr(nDAddr+l, 0)
			}
		}
		start += width
	}
	v.di.setSize(newSize)
	if newSize > 0 {
		v.di.setBlksize(uint32(sb.blkSize(newSize, int64(newSize-1)>>sb.bshift)))
	}
	// Unreference, then free: the inode and the kept indirect blocks
	// reach the image before the maps that free what they no longer
	// point at.
	if err := fs.writeInode(v); err != nil {
		return err
	}
	blk, _ := fs.inodeBlock(v.ino)
	if err := fs.cache.Flush(blk); err != nil {
		return errno(err)
	}
	for _, b := range fl.indir {
		if err := fs.cache.Flush(b); err != nil {
			return errno(err)
		}
	}
	for _, s := range fl.spans {
		if err := fs.freeFrags(v.ino, s.a, s.n); err != nil {
			return err
		}
	}
	return treeErr
}

// freeList gathers what a truncation releases, so that the pointers to
// it are gone from the image before the maps say it is free.
type freeList struct {
	spans []span         // fragment runs to free
	indir []int64        // cache blocks of kept indirect blocks that changed
	seen  map[int64]bool // indirect blocks visited (a corrupt map may loop)
}

type span struct{ a, n int64 }

// truncTree gathers what the subtree rooted at a (level 0: a data block,
// level k: an indirect block of level k) holds at logical blocks keep
// and above, clearing the pointers to it; start is the subtree's first
// logical block. It returns the fragments gathered.
func (v *vnode) truncTree(a int64, level int, start, keep int64, fl *freeList) (int64, error) {
	fs := v.fs
	sb := fs.sb
	if level == 0 {
		if start < keep {
			return 0, nil
		}
		fl.spans = append(fl.spans, span{a, sb.frag})
		return sb.frag, nil
	}
	if fl.seen[a] {
		return 0, fs.corrupt(v.ino, "indirect block %d reached twice", a)
	}
	fl.seen[a] = true
	b, err := fs.getIndir(v.ino, a)
	if err != nil {
		return 0, err
	}
	childSpan := int64(1)
	for range level - 1 {
		childSpan *= sb.nindir
	}
	var freed int64
	data := b.Data()
	for i := int64(0); i < sb.nindir; i++ {
		cs := start + i*childSpan
		if cs+childSpan <= keep {
			continue
		}
		child := fs.ptrAt(data, i)
		if child == 0 {
			continue
		}
		f, err := v.truncTree(child, level-1, cs, keep, fl)
		freed += f
		if err != nil {
			b.Release()
			return freed, err
		}
		if cs >= keep {
			fs.setPtrAt(data, i, 0)
			b.MarkDirty()
		}
	}
	b.Release()
	if start >= keep {
		freed += sb.frag
		fl.spans = append(fl.spans, span{a, sb.frag})
	} else {
		fl.indir = append(fl.indir, a>>sb.fragshift)
	}
	return freed, nil
}

// hasBlocks reports whether the inode's pointers are a block map (not a
// device number or a short symlink).
func (v *vnode) hasBlocks() bool {
	switch v.typ() {
	case vnodeops.S_IFREG, vnodeops.S_IFDIR:
		return true
	case vnodeops.S_IFLNK:
		return !v.shortSymlink()
	}
	return false
}

// freeLocked releases an unlinked inode: its blocks, its extended
// attribute area, and the inode itself.
func (v *vnode) freeLocked() error {
	fs := v.fs
	sb := fs.sb
	dir := v.isDir()
	if v.hasBlocks() {
		if err := v.truncateLocked(0); err != nil {
			return err
		}
	}
	if ext := int64(v.di.extSize()); ext > 0 {
		for i := int64(0); i < 2 && i<<sb.bshift < ext; i++ {
			if a := v.di.extAddr(int(i)); a != 0 {
				if err := fs.freeFrags(v.ino, a, sb.blkSize(uint64(ext), i)>>sb.fshift); err != nil {
					return err
				}
			}
		}
	}
	fs.dropIndex(v.ino)
	gen := v.di.gen()
	clear(v.di.b)
	v.di.setGen(gen)
	v.freed = true
	if err := fs.writeInode(v); err != nil {
		return err
	}
	return fs.freeInode(v.ino, dir)
}

// Setattr implements vnodeops.Writer. An immutable file takes no change
// but of its flags; an append-only one cannot be truncated.
func (v *vnode) Setattr(sa vnodeops.SetAttr) error {
	v.fs.mu.Lock()
	defer v.fs.mu.Unlock()
	if err := v.checkWritable(false); err != nil && err != syscall.EPERM {
		return err
	}
	f := v.di.flags()
	if f&flagsImmutable != 0 && sa.Mask&^vnodeops.SetFlags != 0 {
		return syscall.EPERM
	}
	now := v.nowSpec()
	if sa.Mask&vnodeops.SetSize != 0 {
		switch {
		case v.isDir():
			return syscall.EISDIR
		case v.typ() != vnodeops.S_IFREG:
			return syscall.EINVAL
		case f&flagsAppend != 0 && sa.Size != v.di.size():
			return syscall.EPERM
		case sa.Size > uint64(v.fs.sb.maxFileSize()):
			return syscall.EFBIG
		}
		if sa.Size != v.di.size() {
			if err := v.truncateLocked(sa.Size); err != nil {
				v.fs.writeInode(v)
				return err
			}
		}
		v.di.setMtime(now)
	}
	if sa.Mask&vnodeops.SetMode != 0 {
		v.di.setMode(uint16(v.typ() | sa.Mode&vnodeops.PermMask))
	}
	if sa.Mask&vnodeops.SetUID != 0 {
		v.di.setUID(sa.UID)
	}
	if sa.Mask&vnodeops.SetGID != 0 {
		v.di.setGID(sa.GID)
	}
	if sa.Mask&vnodeops.SetAtime != 0 {
		v.di.setAtime(tspecOf(sa.Atime))
	}
	if sa.Mask&vnodeops.SetMtime != 0 {
		v.di.setMtime(tspecOf(sa.Mtime))
	}
	if sa.Mask&vnodeops.SetFlags != 0 {
		v.di.setFlags(sa.Flags)
	}
	if sa.Mask&vnodeops.SetCtime != 0 {
		v.di.setCtime(tspecOf(sa.Ctime))
	} else {
		v.di.setCtime(now)
	}
	return v.fs.writeInode(v)
}

// Fsync implements vnodeops.Writer: it writes every dirty buffer back
// under the lock (the cache does not track buffers per file), then syncs
// the device without it, so that other operations go on during the
// host's fsync: what this call must make durable is with the device.
func (v *vnode) Fsync(dataOnly bool) error {
	fs := v.fs
	fs.mu.Lock()
	if fs.ro || fs.unmounted {
		fs.mu.Unlock()
		return nil
	}
	err := fs.cache.WriteBack()
	fs.mu.Unlock()
	if err != nil {
		return errno(err)
	}
	return errno(fs.cache.SyncDevice())
}
