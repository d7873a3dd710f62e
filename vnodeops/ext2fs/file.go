package ext2fs

import (
	"syscall"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// Open implements vnodeops.Vnode.
func (v *vnode) Open(flags int) error {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		v.fs.mu.RLock()
		defer v.fs.mu.RUnlock()
		if v.fs.ro {
			return syscall.EROFS
		}
	}
	return nil
}

// Close implements vnodeops.Vnode.
func (v *vnode) Close(flags int) error { return nil }

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

// readLocked reads file data; holes and uninitialised extents read as
// zeros. Runs of contiguous blocks of a regular file are read straight
// from the device: on a read-only mount nothing changes them, and on a
// read-write one every change of regular-file data is written through to
// the device (see writeData) before fs.mu is released. Other files (slow
// symlinks) are read through the cache. Caller holds fs.mu.
func (v *vnode) readLocked(p []byte, off int64) (int, error) {
	fs := v.fs
	size := int64(v.size())
	if off >= size || len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > size-off {
		p = p[:size-off]
	}
	if v.isInline() {
		data, err := v.inlineData()
		if err != nil {
			return 0, err
		}
		// Past the inline bytes a file reads as zeros (mke2fs -d makes
		// such files from sparse ones, and e2fsck accepts them).
		n := 0
		if off < int64(len(data)) {
			n = copy(p, data[off:])
		}
		clear(p[n:])
		return len(p), nil
	}
	if !v.hasBlockMap() {
		if v.isFastSymlink() {
			return copy(p, v.raw[inBlock+int(off):inBlock+60]), nil
		}
		return 0, nil
	}
	bs := int64(fs.bs)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		lblk := uint64(pos >> fs.bsBits)
		boff := pos & (bs - 1)
		pblk, n, err := v.bmap(lblk)
		if err != nil {
			return done, err
		}
		chunk := int64(len(p) - done)
		if lim := int64(n)*bs - boff; chunk > lim {
			chunk = lim
		}
		dst := p[done : done+int(chunk)]
		switch {
		case pblk == 0:
			clear(dst)
		case fs.ro || v.isReg():
			if _, err := fs.dev.ReadAt(dst, int64(pblk)*bs+boff); err != nil {
				return done, fs.corrupt(v.ino, "reading blocks at %d: %v", pblk, err)
			}
		default:
			for o := 0; o < len(dst); {
				cur := pos + int64(o)
				bo := int(cur & (bs - 1))
				pb := pblk + uint64((boff+int64(o))>>fs.bsBits)
				m := min(len(dst)-o, fs.bs-bo)
				if err := v.readBlock(pb, bo, dst[o:o+m]); err != nil {
					return done + o, err
				}
				o += m
			}
		}
		done += int(chunk)
	}
	return done, nil
}

// checkWritable returns EROFS on a read-only mount and for an inode
// whose format this driver does not write (extents, inline data).
func (v *vnode) checkWritable() error {
	if v.fs.ro || v.fs.unmounted {
		return syscall.EROFS
	}
	if v.isExtents() || v.isInline() {
		return syscall.EROFS
	}
	return nil
}

// zeroTail zeroes the bytes of the last block past size, so that growing
// the file reads zeros there.
func (v *vnode) zeroTail(size uint64) error {
	fs := v.fs
	boff := int(size & uint64(fs.bs-1))
	if boff == 0 || !v.hasBlockMap() {
		return nil
	}
	pblk, _, err := v.bmap(size >> fs.bsBits)
	if err != nil || pblk == 0 {
		return err
	}
	b, err := fs.cache.Get(int64(pblk))
	if err != nil {
		return fs.corrupt(v.ino, "reading block %d: %v", pblk, err)
	}
	clear(b.Data()[boff:])
	return v.writeData(b)
}

// writeData marks a data buffer of v dirty, writes a regular file's
// through to the device (readLocked reads those directly), and releases
// it.
func (v *vnode) writeData(b *blkdev.Buf) error {
	b.MarkDirty()
	var err error
	if v.isReg() {
		if werr := v.fs.cache.WriteBuf(b); werr != nil {
			err = v.fs.corrupt(v.ino, "writing block %d: %v", b.Blkno(), werr)
		}
	}
	b.Release()
	return err
}

// writeBlocks writes whole blocks of p, the first at logical block lblk,
// already mapped to pblk, straight to the device: as many as are
// contiguous on disk, in one write (a regular file's data is read from the
// device too, never through the cache; any cached copy is dropped). It
// returns the bytes written, a multiple of the block size. The caller holds
// fs.mu and has checked that p starts on a block boundary.
func (v *vnode) writeBlocks(p []byte, lblk, pblk uint64) (int, error) {
	fs := v.fs
	run := 1
	for (run+1)*fs.bs <= len(p) {
		next, _, err := v.bmapAlloc(lblk + uint64(run))
		if err != nil || next != pblk+uint64(run) {
			break // written by the caller's next round, or its error there
		}
		run++
	}
	data := p[:run*fs.bs]
	for i := range run {
		fs.cache.Invalidate(int64(pblk) + int64(i))
	}
	if _, err := fs.dev.WriteAt(data, int64(pblk)<<fs.bsBits); err != nil {
		return 0, fs.corrupt(v.ino, "writing blocks at %d: %v", pblk, err)
	}
	return len(data), nil
}

// Write implements vnodeops.Vnode.
func (v *vnode) Write(p []byte, off int64) (int, error) {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.checkWritable(); err != nil {
		return 0, err
	}
	if v.isDir() {
		return 0, syscall.EISDIR
	}
	if !v.isReg() {
		return 0, syscall.EINVAL
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if len(p) == 0 {
		return 0, nil
	}
	var tooBig error
	if off >= fs.maxFileSize {
		return 0, syscall.EFBIG
	}
	if int64(len(p)) > fs.maxFileSize-off {
		p = p[:fs.maxFileSize-off]
		tooBig = syscall.EFBIG
	}
	size := v.size()
	if uint64(off) > size {
		if err := v.zeroTail(size); err != nil {
			return 0, err
		}
	}
	done := 0
	var werr error
	for done < len(p) {
		pos := off + int64(done)
		lblk := uint64(pos >> fs.bsBits)
		boff := int(pos & int64(fs.bs-1))
		chunk := min(len(p)-done, fs.bs-boff)
		pblk, fresh, err := v.bmapAlloc(lblk)
		if err != nil {
			werr = err
			break
		}
		if boff == 0 && chunk == fs.bs {
			n, err := v.writeBlocks(p[done:], lblk, pblk)
			done += n
			if err != nil {
				werr = err
				break
			}
			continue
		}
		get := fs.cache.Get
		if fresh || chunk == fs.bs {
			get = fs.cache.GetNew
		}
		b, err := get(int64(pblk))
		if err != nil {
			werr = fs.corrupt(v.ino, "data block %d: %v", pblk, err)
			break
		}
		copy(b.Data()[boff:], p[done:done+chunk])
		if err := v.writeData(b); err != nil {
			werr = err
			break
		}
		done += chunk
	}
	if end := uint64(off) + uint64(done); end > size {
		v.setSize(end)
	}
	if done > 0 {
		v.touch(true, true)
	}
	if err := v.sync(); err != nil && werr == nil {
		werr = err
	}
	if werr == nil {
		werr = tooBig
	}
	return done, werr
}

// truncate sets a regular file's size, freeing blocks past it and zeroing
// the tail of its last block. Caller holds fs.mu exclusively.
func (v *vnode) truncate(n uint64) error {
	old := v.size()
	switch {
	case n < old:
		keep := (n + uint64(v.fs.bs) - 1) >> v.fs.bsBits
		v.setSize(n)
		if err := v.truncateBlocks(keep); err != nil {
			return err
		}
		return v.zeroTail(n)
	case n > old:
		if err := v.zeroTail(old); err != nil {
			return err
		}
		v.setSize(n)
	}
	return nil
}

// Setattr implements vnodeops.Vnode.
func (v *vnode) Setattr(sa vnodeops.SetAttr) error {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro || fs.unmounted {
		return syscall.EROFS
	}
	const known = vnodeops.SetMode | vnodeops.SetUID | vnodeops.SetGID | vnodeops.SetSize |
		vnodeops.SetAtime | vnodeops.SetMtime | vnodeops.SetCtime | vnodeops.SetFlags
	if sa.Mask&known == 0 {
		return nil
	}
	now := v.fs.nowNanos()
	if sa.Mask&vnodeops.SetSize != 0 {
		switch {
		case v.isDir():
			return syscall.EISDIR
		case !v.isReg():
			return syscall.EINVAL
		case sa.Size > uint64(fs.maxFileSize):
			return syscall.EFBIG
		}
		if err := v.checkWritable(); err != nil {
			return err
		}
		if sa.Size != v.size() {
			if err := v.truncate(sa.Size); err != nil {
				v.sync()
				return err
			}
		}
		v.setTime(inMtime, inMtimeExtra, now)
	}
	if sa.Mask&vnodeops.SetMode != 0 {
		v.put16(inMode, uint16(v.ftype()|sa.Mode&vnodeops.PermMask))
	}
	if sa.Mask&vnodeops.SetUID != 0 {
		v.setUID(sa.UID)
	}
	if sa.Mask&vnodeops.SetGID != 0 {
		v.setGID(sa.GID)
	}
	if sa.Mask&vnodeops.SetFlags != 0 {
		v.setFlags(v.flags()&^userFlags | sa.Flags&userFlags)
	}
	if sa.Mask&vnodeops.SetAtime != 0 {
		v.setTime(inAtime, inAtimeExtra, sa.Atime)
	}
	if sa.Mask&vnodeops.SetMtime != 0 {
		v.setTime(inMtime, inMtimeExtra, sa.Mtime)
	}
	if sa.Mask&vnodeops.SetCtime != 0 {
		v.setTime(inCtime, inCtimeExtra, sa.Ctime)
	} else {
		v.setTime(inCtime, inCtimeExtra, now)
	}
	return v.sync()
}

// Fsync implements vnodeops.Vnode: it writes back the whole cache (all
// metadata and data), then syncs the device.
func (v *vnode) Fsync(dataOnly bool) error {
	fs := v.fs
	fs.mu.Lock()
	err := fs.writeBackLocked()
	fs.mu.Unlock()
	if err != nil {
		return err
	}
	// The slow part, the host's fsync of the image, runs without fs.mu:
	// other operations go on meanwhile, and what this call must make
	// durable is already with the device.
	return fs.cache.SyncDevice()
}

// Inactive implements vnodeops.Vnode: an inode without links loses its
// blocks, its xattr block reference and finally its bitmap bit.
func (v *vnode) Inactive() error {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return v.inactiveLocked()
}

func (v *vnode) inactiveLocked() error {
	fs := v.fs
	if fs.ro || fs.unmounted || v.freed || v.links() != 0 {
		return nil
	}
	if v.isExtents() || v.isInline() {
		return nil // never on a writable mount
	}
	dir := v.isDir()
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if v.hasBlockMap() {
		note(v.truncateBlocks(0))
	}
	if acl := v.fileACL(); acl != 0 {
		v.put32(inFileACLLo, 0)
		v.put16(inFileACLHi, 0)
		v.addBlocks(-1)
		note(fs.releaseXattrBlock(v.ino, acl))
	}
	v.put32(inSizeLo, 0)
	v.put32(inSizeHi, 0)
	v.put32(inDtime, uint32(v.fs.now().Unix()))
	note(v.sync())
	note(fs.freeInode(v.ino, dir))
	v.freed = true
	fs.dropIdx(v.ino)
	return firstErr
}

// Reclaim implements vnodeops.Vnode. The inode has been written through
// on every change, so only the caches go.
func (v *vnode) Reclaim() error {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	v.forgetMap()
	fs.liveMu.Lock()
	if fs.live[v.ino] == v {
		delete(fs.live, v.ino)
	}
	fs.liveMu.Unlock()
	return nil
}
