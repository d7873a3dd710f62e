package ext2fs

import (
	"bytes"
	"syscall"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// Directories are files of linked records (Poirier, "Linked Directories";
// ext4 directory.rst): inode u32, rec_len u16, name_len u8 and file_type
// u8 (name_len u16 without the filetype feature), then the name. A record
// never crosses a block; the last one of a block runs to its end. Htree
// (dir_index) directories keep the same records in their leaf blocks and
// hide the index in records that look empty, so they are read linearly.
//
// A readdir cookie is the byte offset of a record in the directory; an
// entry's Next is the offset just past its record. Inline-data
// directories (ext4 inlinedata.rst) use offsets in i_block followed by the
// system.data value, with "." and ".." synthesised at cookies 0 and 1.

// dirent is one parsed record.
type dirent struct {
	off    int // in its block
	ino    uint32
	recLen int
	ft     uint8
	name   []byte
}

// decRecLen decodes rec_len; blocks of 64 KiB and more spell their length
// in the low bits (directory.rst).
func (fs *fsys) decRecLen(raw uint16) int {
	if fs.bs < 65536 {
		return int(raw)
	}
	if raw == 65535 || raw == 0 {
		return 65536
	}
	return int(raw&65532) | int(raw&3)<<16
}

func (fs *fsys) encRecLen(n int) uint16 {
	if fs.bs < 65536 {
		return uint16(n)
	}
	if n == 65536 {
		return 65535
	}
	return uint16(n&65532) | uint16(n>>16)&3
}

func align4(n int) int { return (n + 3) &^ 3 }

// parseRecords walks the records of data (a block or an inline region),
// validating each, and calls fn until it returns false.
func (v *vnode) parseRecords(data []byte, fn func(d dirent) bool) error {
	fs := v.fs
	off := 0
	for off < len(data) {
		if off+direntHeader > len(data) {
			return fs.corrupt(v.ino, "directory record at %d overruns its block", off)
		}
		d := dirent{off: off, ino: le.Uint32(data[off:]), recLen: fs.decRecLen(le.Uint16(data[off+4:]))}
		nl := int(data[off+6])
		if fs.filetype {
			d.ft = data[off+7]
		} else {
			nl |= int(data[off+7]) << 8
		}
		if d.recLen < direntHeader || d.recLen%4 != 0 || off+d.recLen > len(data) {
			return fs.corrupt(v.ino, "directory record at %d has bad rec_len %d", off, d.recLen)
		}
		if d.ino != 0 {
			if nl == 0 || direntHeader+nl > d.recLen {
				return fs.corrupt(v.ino, "directory record at %d has bad name_len %d", off, nl)
			}
			if uint64(d.ino) > uint64(fs.inodesCount) {
				return fs.corrupt(v.ino, "directory entry names inode %d out of range", d.ino)
			}
			d.name = data[off+direntHeader : off+direntHeader+nl]
		}
		if !fn(d) {
			return nil
		}
		off += d.recLen
	}
	return nil
}

// dirBlock returns the pinned buffer of directory block lblk, or nil for a
// hole, after verifying its checksum tail under metadata_csum. Caller
// holds fs.mu.
func (v *vnode) dirBlock(lblk uint64) (*blkdev.Buf, error) {
	pblk, _, err := v.bmap(lblk)
	if err != nil || pblk == 0 {
		return nil, err
	}
	b, err := v.fs.cache.Get(int64(pblk))
	if err != nil {
		return nil, v.fs.corrupt(v.ino, "reading directory block %d: %v", pblk, err)
	}
	if v.fs.csum {
		if err := v.verifyDirBlock(b.Data()); err != nil {
			b.Release()
			return nil, err
		}
	}
	return b, nil
}

// verifyDirBlock checks a leaf block's checksum tail (directory.rst,
// "Checksums"): crc32c seeded per inode over the block before the tail.
// Blocks without a tail are htree index nodes (or blocks written without
// room for one) and pass, as in Linux.
func (v *vnode) verifyDirBlock(d []byte) error {
	bs := len(d)
	t := d[bs-dirTailSize:]
	if le.Uint32(t) != 0 || le.Uint16(t[4:]) != dirTailSize || t[6] != 0 || t[7] != dirTailFT {
		return nil
	}
	got := crc32cRaw(v.fs.inodeSeed(v.ino, v.generation()), d[:bs-dirTailSize])
	if got != le.Uint32(t[8:]) {
		return v.fs.corrupt(v.ino, "directory block checksum mismatch")
	}
	return nil
}

func (v *vnode) isInline() bool { return v.flags()&flagInlineData != 0 }

// dirBlocks is the number of blocks of a block-mapped directory.
func (v *vnode) dirBlocks() uint64 { return v.size() >> v.fs.bsBits }

// entLoc locates a record found by findEntry.
type entLoc struct {
	lblk    uint64
	off     int
	prevOff int // the record before it in its block, or -1
}

// findEntry looks name up in block-mapped directory v. ok is false when
// absent. Caller holds fs.mu.
func (v *vnode) findEntry(name string) (d dirent, loc entLoc, ok bool, err error) {
	nb := []byte(name)
	for lblk := uint64(0); lblk < v.dirBlocks(); lblk++ {
		b, err := v.dirBlock(lblk)
		if err != nil {
			return d, loc, false, err
		}
		if b == nil {
			continue
		}
		prev := -1
		err = v.parseRecords(b.Data(), func(e dirent) bool {
			if e.ino != 0 && bytes.Equal(e.name, nb) {
				d, loc, ok = e, entLoc{lblk: lblk, off: e.off, prevOff: prev}, true
				d.name = nil
				return false
			}
			prev = e.off
			return true
		})
		b.Release()
		if err != nil || ok {
			return d, loc, ok, err
		}
	}
	return d, loc, false, nil
}

// dirIndexMin is the size in blocks from which a directory gets a name
// index in memory for Lookup; the file system keeps up to dirIndexMax of
// them, beyond the vnodes' lifetimes, since the kernel reclaims vnodes as
// soon as they are unreferenced.
const (
	dirIndexMin    = 8
	dirIndexMax    = 32
	dirIndexBlocks = 1 << 16 // larger directories are scanned instead
)

func (fs *fsys) getIdx(ino uint64) map[string]dirIdxEnt {
	fs.idxMu.Lock()
	defer fs.idxMu.Unlock()
	return fs.idx[ino]
}

func (fs *fsys) putIdx(ino uint64, m map[string]dirIdxEnt) {
	fs.idxMu.Lock()
	defer fs.idxMu.Unlock()
	if fs.idx == nil {
		fs.idx = make(map[uint64]map[string]dirIdxEnt)
	}
	for k := range fs.idx {
		if len(fs.idx) < dirIndexMax {
			break
		}
		delete(fs.idx, k)
	}
	fs.idx[ino] = m
}

func (fs *fsys) dropIdx(ino uint64) {
	fs.idxMu.Lock()
	defer fs.idxMu.Unlock()
	delete(fs.idx, ino)
}

// lookupLocked finds name in directory v; it returns ENOENT when absent.
// Caller holds fs.mu (shared or exclusive).
func (v *vnode) lookupLocked(name string) (uint64, uint8, error) {
	if v.isInline() {
		return v.inlineLookup(name)
	}
	if n := v.dirBlocks(); n >= dirIndexMin && n <= dirIndexBlocks {
		idx := v.fs.getIdx(v.ino)
		if idx == nil {
			var err error
			idx, err = v.buildIndex()
			if err != nil {
				return 0, 0, err
			}
			v.fs.putIdx(v.ino, idx)
		}
		e, ok := idx[name]
		if !ok {
			return 0, 0, syscall.ENOENT
		}
		return e.ino, e.ft, nil
	}
	d, _, ok, err := v.findEntry(name)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, syscall.ENOENT
	}
	return uint64(d.ino), d.ft, nil
}

func (v *vnode) buildIndex() (map[string]dirIdxEnt, error) {
	idx := make(map[string]dirIdxEnt)
	for lblk := uint64(0); lblk < v.dirBlocks(); lblk++ {
		b, err := v.dirBlock(lblk)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		err = v.parseRecords(b.Data(), func(e dirent) bool {
			if e.ino != 0 {
				idx[string(e.name)] = dirIdxEnt{uint64(e.ino), e.ft}
			}
			return true
		})
		b.Release()
		if err != nil {
			return nil, err
		}
	}
	return idx, nil
}

// Lookup implements vnodeops.Vnode.
func (v *vnode) Lookup(name string) (uint64, error) {
	fs := v.fs
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if !v.isDir() {
		return 0, syscall.ENOTDIR
	}
	if v.freed || v.links() == 0 {
		return 0, syscall.ENOENT
	}
	if name == "." {
		return v.ino, nil
	}
	if name == ".." && v.ino == rootIno {
		return rootIno, nil
	}
	ino, _, err := v.lookupLocked(name)
	if err != nil {
		return 0, err
	}
	if !fs.validIno(ino) {
		return 0, fs.corrupt(v.ino, "entry %q names reserved inode %d", name, ino)
	}
	if name == ".." && ino == v.ino {
		return 0, fs.corrupt(v.ino, "\"..\" of a directory other than the root names itself")
	}
	if name == ".." {
		// ".." must name a directory, or walking up could go astray.
		raw, err := fs.readInode(ino)
		if err != nil {
			return 0, err
		}
		if le.Uint16(raw[inMode:])&vnodeops.S_IFMT != vnodeops.S_IFDIR {
			return 0, fs.corrupt(v.ino, "\"..\" names non-directory %d", ino)
		}
	}
	return ino, nil
}

// dtOf returns the DT_* type of an entry: from file_type, or without the
// filetype feature from the inode.
func (v *vnode) dtOf(ino uint32, ft uint8) uint8 {
	if v.fs.filetype {
		return ft2dt(ft)
	}
	raw, err := v.fs.readInode(uint64(ino))
	if err != nil {
		return vnodeops.DT_UNKNOWN
	}
	return vnodeops.DTFromMode(uint32(le.Uint16(raw[inMode:])))
}

// Readdir implements vnodeops.Vnode. It gathers one block of entries at a
// time under the lock and calls fn without it.
func (v *vnode) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	fs := v.fs
	fs.mu.RLock()
	if !v.isDir() {
		fs.mu.RUnlock()
		return syscall.ENOTDIR
	}
	if v.isInline() {
		ents, err := v.inlineReaddir(cookie)
		fs.mu.RUnlock()
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !fn(e) {
				return nil
			}
		}
		return nil
	}
	fs.mu.RUnlock()
	bs := uint64(fs.bs)
	pos := cookie
	var ents []vnodeops.Dirent
	for {
		fs.mu.RLock()
		lblk := pos / bs
		if v.freed || lblk >= v.dirBlocks() {
			fs.mu.RUnlock()
			return nil
		}
		ents = ents[:0]
		b, err := v.dirBlock(lblk)
		if err == nil && b != nil {
			from := int(pos % bs)
			base := lblk * bs
			err = v.parseRecords(b.Data(), func(e dirent) bool {
				if e.off >= from && e.ino != 0 {
					ents = append(ents, vnodeops.Dirent{
						Name: string(e.name),
						Ino:  uint64(e.ino),
						Type: e.ft, // converted below, outside the buffer
						Next: base + uint64(e.off+e.recLen),
					})
				}
				return true
			})
			b.Release()
			for i := range ents {
				ents[i].Type = v.dtOf(uint32(ents[i].Ino), ents[i].Type)
			}
		}
		fs.mu.RUnlock()
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !fn(e) {
				return nil
			}
		}
		pos = (lblk + 1) * bs
	}
}

// Readlink implements vnodeops.Vnode.
func (v *vnode) Readlink() (string, error) {
	fs := v.fs
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if !v.isLnk() {
		return "", syscall.EINVAL
	}
	n := v.size()
	switch {
	case v.isInline():
		data, err := v.inlineData()
		if err != nil {
			return "", err
		}
		if uint64(len(data)) < n {
			return "", fs.corrupt(v.ino, "inline symlink shorter than its size")
		}
		return string(data[:n]), nil
	case v.isFastSymlink():
		return string(v.raw[inBlock : inBlock+int(n)]), nil
	}
	if n > uint64(fs.bs) {
		return "", fs.corrupt(v.ino, "symlink of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := v.readLocked(buf, 0); err != nil {
		return "", err
	}
	return string(buf), nil
}

// ---- Inline data (ext4 inlinedata.rst) ----

// inlineXattr returns the value of the in-inode extended attribute
// system.data, or nil (ext4 attributes.rst: after i_extra_isize come the
// magic, then entries whose value offsets count from the first entry).
func (v *vnode) inlineXattr() ([]byte, error) {
	ents := v.inodeXattrs()
	recs, err := v.parseXattrs(ents, ents)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.index == xattrIndexSys && r.name == "data" {
			if r.inum != 0 {
				return nil, v.fs.corrupt(v.ino, "system.data value out of range")
			}
			return r.value, nil
		}
	}
	return nil, nil
}

// inlineData returns the inline bytes of a file: i_block then system.data.
func (v *vnode) inlineData() ([]byte, error) {
	x, err := v.inlineXattr()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 60+len(x))
	out = append(out, v.raw[inBlock:inBlock+60]...)
	return append(out, x...), nil
}

// inlineRegions returns the record regions of an inline directory with
// their cookie bases: i_block after the 4-byte parent, then system.data.
func (v *vnode) inlineRegions() (parent uint32, regs [][]byte, bases []uint64, err error) {
	x, err := v.inlineXattr()
	if err != nil {
		return 0, nil, nil, err
	}
	parent = le.Uint32(v.raw[inBlock:])
	regs = [][]byte{v.raw[inBlock+4 : inBlock+60]}
	bases = []uint64{4}
	if len(x) > 0 {
		regs = append(regs, x)
		bases = append(bases, 60)
	}
	return parent, regs, bases, nil
}

func (v *vnode) inlineLookup(name string) (uint64, uint8, error) {
	parent, regs, _, err := v.inlineRegions()
	if err != nil {
		return 0, 0, err
	}
	if name == ".." {
		if parent == 0 || uint64(parent) > uint64(v.fs.inodesCount) {
			return 0, 0, v.fs.corrupt(v.ino, "inline directory parent %d out of range", parent)
		}
		return uint64(parent), ftDir, nil
	}
	nb := []byte(name)
	for _, r := range regs {
		var found dirent
		ok := false
		if err := v.parseRecords(r, func(e dirent) bool {
			if e.ino != 0 && bytes.Equal(e.name, nb) {
				found, ok = e, true
				return false
			}
			return true
		}); err != nil {
			return 0, 0, err
		}
		if ok {
			return uint64(found.ino), found.ft, nil
		}
	}
	return 0, 0, syscall.ENOENT
}

func (v *vnode) inlineReaddir(cookie uint64) ([]vnodeops.Dirent, error) {
	parent, regs, bases, err := v.inlineRegions()
	if err != nil {
		return nil, err
	}
	var out []vnodeops.Dirent
	if cookie == 0 {
		out = append(out, vnodeops.Dirent{Name: ".", Ino: v.ino, Type: vnodeops.DT_DIR, Next: 1})
	}
	if cookie <= 1 {
		out = append(out, vnodeops.Dirent{Name: "..", Ino: uint64(parent), Type: vnodeops.DT_DIR, Next: 4})
	}
	for i, r := range regs {
		base := bases[i]
		if err := v.parseRecords(r, func(e dirent) bool {
			pos := base + uint64(e.off)
			if e.ino != 0 && pos >= cookie {
				out = append(out, vnodeops.Dirent{Name: string(e.name), Ino: uint64(e.ino),
					Type: v.dtOf(e.ino, e.ft), Next: pos + uint64(e.recLen)})
			}
			return true
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
