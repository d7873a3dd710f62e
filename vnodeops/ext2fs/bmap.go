package ext2fs

import (
	"syscall"
)

// Block maps: the classic 12 direct, one single, one double and one triple
// indirect pointer of i_block (Poirier, "Inode Table", i_block; ext4
// blockmap.rst), and ext4 extent trees (ext4 ifork.rst).

// maxRun caps how many blocks one mapping lookup reports.
const maxRun = 1 << 16

// validBlock reports whether b may be a data or metadata block.
func (fs *fsys) validBlock(b uint64) bool {
	return b >= uint64(fs.firstDataBlock) && b < fs.blocksCount && b != 0
}

// bmap maps logical block lblk of v to a physical block. It returns pblk
// (0 for a hole or an uninitialised extent, which read as zeros) and n >=
// 1, the number of logical blocks from lblk that continue the same way
// (contiguous physical blocks, or hole). Caller holds fs.mu.
func (v *vnode) bmap(lblk uint64) (pblk, n uint64, err error) {
	if v.isExtents() {
		return v.extMap(lblk)
	}
	v.cmu.Lock()
	c := v.lastMap
	v.cmu.Unlock()
	if c.n > 0 && lblk >= c.lblk && lblk < c.lblk+c.n {
		d := lblk - c.lblk
		if c.pblk == 0 {
			return 0, c.n - d, nil
		}
		return c.pblk + d, c.n - d, nil
	}
	pblk, n, err = v.indMap(lblk)
	if err == nil {
		v.cmu.Lock()
		v.lastMap = mapCache{lblk: lblk, pblk: pblk, n: n}
		v.cmu.Unlock()
	}
	return pblk, n, err
}

// forgetMap drops cached mappings; called (with fs.mu exclusive) whenever
// the block map changes.
func (v *vnode) forgetMap() {
	v.lastMap = mapCache{}
	v.ext = extCache{}
}

// indPath splits lblk into the root slot of i_block and the indices at
// each indirect level.
func (fs *fsys) indPath(lblk uint64) (slot int, idx []uint64, err error) {
	p := uint64(fs.bs / 4)
	if lblk < nDirBlocks {
		return int(lblk), nil, nil
	}
	lblk -= nDirBlocks
	if lblk < p {
		return indBlock, []uint64{lblk}, nil
	}
	lblk -= p
	if lblk < p*p {
		return dindBlock, []uint64{lblk / p, lblk % p}, nil
	}
	lblk -= p * p
	if lblk < p*p*p {
		return tindBlock, []uint64{lblk / (p * p), (lblk / p) % p, lblk % p}, nil
	}
	return 0, nil, syscall.EFBIG
}

// span returns how many data blocks a pointer at level depth (counted
// from the bottom: 0 is a data pointer) covers.
func (fs *fsys) span(depth int) uint64 {
	p := uint64(fs.bs / 4)
	s := uint64(1)
	for ; depth > 0; depth-- {
		s *= p
	}
	return s
}

func (v *vnode) indMap(lblk uint64) (uint64, uint64, error) {
	fs := v.fs
	slot, idx, err := fs.indPath(lblk)
	if err != nil {
		return 0, maxRun, nil // beyond the map: a hole
	}
	if idx == nil {
		// Direct blocks: count the run among the direct pointers.
		first := uint64(v.iblock(slot))
		if first != 0 && !fs.validBlock(first) {
			return 0, 0, fs.corrupt(v.ino, "block pointer %d out of range", first)
		}
		n := uint64(1)
		for s := slot + 1; s < nDirBlocks; s++ {
			b := uint64(v.iblock(s))
			if (first == 0 && b != 0) || (first != 0 && b != first+n) {
				break
			}
			n++
		}
		return first, n, nil
	}
	ptr := uint64(v.iblock(slot))
	for level, i := range idx {
		depth := len(idx) - level // levels below this pointer
		if ptr == 0 {
			// Hole: to the end of this pointer's subtree.
			covered := fs.span(depth)
			var off uint64
			for l := level; l < len(idx); l++ {
				off += idx[l] * fs.span(len(idx)-l-1)
			}
			return 0, min(covered-off, maxRun), nil
		}
		if !fs.validBlock(ptr) {
			return 0, 0, fs.corrupt(v.ino, "indirect block pointer %d out of range", ptr)
		}
		b, err := fs.cache.Get(int64(ptr))
		if err != nil {
			return 0, 0, fs.corrupt(v.ino, "reading indirect block %d: %v", ptr, err)
		}
		d := b.Data()
		next := uint64(le.Uint32(d[4*i:]))
		if level == len(idx)-1 {
			// The leaf level: count the run inside this block.
			if next != 0 && !fs.validBlock(next) {
				b.Release()
				return 0, 0, fs.corrupt(v.ino, "block pointer %d out of range", next)
			}
			n := uint64(1)
			for j := i + 1; j < uint64(fs.bs/4) && n < maxRun; j++ {
				x := uint64(le.Uint32(d[4*j:]))
				if (next == 0 && x != 0) || (next != 0 && x != next+n) {
					break
				}
				n++
			}
			b.Release()
			if next != 0 && next+n > fs.blocksCount {
				n = fs.blocksCount - next
			}
			return next, n, nil
		}
		b.Release()
		ptr = next
	}
	return 0, 1, nil
}

// readBlock reads physical block pblk through the cache into dst (a whole
// block or part of one at off).
func (v *vnode) readBlock(pblk uint64, off int, dst []byte) error {
	b, err := v.fs.cache.Get(int64(pblk))
	if err != nil {
		return v.fs.corrupt(v.ino, "reading block %d: %v", pblk, err)
	}
	copy(dst, b.Data()[off:])
	b.Release()
	return nil
}

// ---- Extent trees (ext4 ifork.rst) ----

// extCache remembers the leaf extent of the last lookup.
type extCache struct {
	valid   bool
	lblk, n uint64
	pblk    uint64
	uninit  bool
}

type extHdr struct {
	entries, max, depth int
}

// extHeader validates an extent node (the 60-byte root in i_block or a
// tree block): magic, entry counts within the node and, for a block,
// depth as expected (wantDepth < 0: any depth up to extMaxDepth).
func (v *vnode) extHeader(node []byte, wantDepth int) (extHdr, error) {
	fs := v.fs
	if len(node) < extHdrSize || le.Uint16(node) != extMagic {
		return extHdr{}, fs.corrupt(v.ino, "bad extent header magic")
	}
	h := extHdr{int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))}
	if h.max == 0 || h.entries > h.max || extHdrSize+h.max*extEntSize > len(node) {
		return h, fs.corrupt(v.ino, "bad extent header counts (entries %d, max %d)", h.entries, h.max)
	}
	if h.depth > extMaxDepth || (wantDepth >= 0 && h.depth != wantDepth) {
		return h, fs.corrupt(v.ino, "bad extent tree depth %d", h.depth)
	}
	return h, nil
}

// extMap maps lblk through the extent tree.
func (v *vnode) extMap(lblk uint64) (uint64, uint64, error) {
	v.cmu.Lock()
	c := v.ext
	v.cmu.Unlock()
	if c.valid && lblk >= c.lblk && lblk < c.lblk+c.n {
		d := lblk - c.lblk
		if c.uninit || c.pblk == 0 {
			return 0, c.n - d, nil
		}
		return c.pblk + d, c.n - d, nil
	}
	if lblk >= 1<<32 {
		return 0, maxRun, nil
	}
	fs := v.fs
	node := v.raw[inBlock : inBlock+60]
	h, err := v.extHeader(node, -1)
	if err != nil {
		return 0, 0, err
	}
	limit := uint64(1) << 32 // first logical block past this subtree
	var buf []byte
	for {
		if h.depth == 0 {
			break
		}
		// Index node: the last entry whose ei_block <= lblk.
		i := v.extSearch(node, h.entries, uint32(lblk))
		if i < 0 {
			if h.entries == 0 {
				return 0, min(limit-lblk, maxRun), nil
			}
			first := uint64(le.Uint32(node[extHdrSize:]))
			return 0, min(first-lblk, maxRun), nil
		}
		e := node[extHdrSize+i*extEntSize:]
		if i+1 < h.entries {
			limit = min(limit, uint64(le.Uint32(node[extHdrSize+(i+1)*extEntSize:])))
		}
		child := uint64(le.Uint32(e[4:])) | uint64(le.Uint16(e[8:]))<<32
		if !fs.validBlock(child) {
			return 0, 0, fs.corrupt(v.ino, "extent index block %d out of range", child)
		}
		if buf == nil {
			buf = make([]byte, fs.bs)
		}
		if err := v.readBlock(child, 0, buf); err != nil {
			return 0, 0, err
		}
		nh, err := v.extHeader(buf, h.depth-1)
		if err != nil {
			return 0, 0, err
		}
		if fs.csum {
			if err := v.verifyExtentBlock(buf, nh); err != nil {
				return 0, 0, err
			}
		}
		node, h = buf, nh
	}
	i := v.extSearch(node, h.entries, uint32(lblk))
	if i < 0 {
		end := limit
		if h.entries > 0 {
			end = uint64(le.Uint32(node[extHdrSize:]))
		}
		if end <= lblk {
			return 0, 0, fs.corrupt(v.ino, "extent tree out of order")
		}
		return 0, min(end-lblk, maxRun), nil
	}
	e := node[extHdrSize+i*extEntSize:]
	start := uint64(le.Uint32(e))
	ln := uint64(le.Uint16(e[4:]))
	uninit := false
	if ln > extInitMax {
		ln -= extInitMax
		uninit = true
	}
	phys := uint64(le.Uint32(e[8:])) | uint64(le.Uint16(e[6:]))<<32
	if lblk >= start+ln {
		// In the hole after extent i.
		end := limit
		if i+1 < h.entries {
			end = uint64(le.Uint32(node[extHdrSize+(i+1)*extEntSize:]))
		}
		if end <= lblk {
			return 0, 0, fs.corrupt(v.ino, "extent tree out of order")
		}
		return 0, min(end-lblk, maxRun), nil
	}
	if ln == 0 || !fs.validBlock(phys) || phys+ln > fs.blocksCount {
		return 0, 0, fs.corrupt(v.ino, "extent (%d blocks at %d) out of range", ln, phys)
	}
	v.cmu.Lock()
	v.ext = extCache{valid: true, lblk: start, n: ln, pblk: phys, uninit: uninit}
	v.cmu.Unlock()
	d := lblk - start
	if uninit {
		return 0, ln - d, nil
	}
	return phys + d, ln - d, nil
}

// extSearch returns the index of the last entry whose first logical
// block is <= lblk, or -1. Index and leaf entries both start with it.
func (v *vnode) extSearch(node []byte, n int, lblk uint32) int {
	lo, hi := 0, n // invariant: entries < lo are <= lblk, entries >= hi are > lblk
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if le.Uint32(node[extHdrSize+m*extEntSize:]) <= lblk {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// verifyExtentBlock checks the crc32c tail after eh_max entries
// (checksums.rst: over the block up to the tail, seeded per inode).
func (v *vnode) verifyExtentBlock(buf []byte, h extHdr) error {
	off := extHdrSize + h.max*extEntSize
	if off+4 > len(buf) {
		return v.fs.corrupt(v.ino, "extent block has no room for its checksum")
	}
	want := le.Uint32(buf[off:])
	got := crc32cRaw(v.fs.inodeSeed(v.ino, v.generation()), buf[:off])
	if got != want {
		return v.fs.corrupt(v.ino, "extent block checksum mismatch")
	}
	return nil
}

// ---- Writing the indirect map (ext2/ext3 only) ----

// allocGoal picks a physical block near which to allocate for lblk.
func (v *vnode) allocGoal() uint64 {
	if v.lastAlloc != 0 {
		return v.lastAlloc + 1
	}
	g := uint32((v.ino - 1) / uint64(v.fs.ipg))
	return v.fs.groupFirstBlock(g)
}

// bmapAlloc returns the physical block of lblk, allocating it (and the
// indirect blocks leading to it) when it is a hole. fresh reports a newly
// allocated data block, which the caller must fully initialise (its
// buffer is returned pinned and zeroed via GetNew then). Caller holds
// fs.mu exclusively; v.raw is updated but not written back.
func (v *vnode) bmapAlloc(lblk uint64) (pblk uint64, fresh bool, err error) {
	fs := v.fs
	slot, idx, err := fs.indPath(lblk)
	if err != nil {
		return 0, false, err
	}
	if idx == nil {
		if b := uint64(v.iblock(slot)); b != 0 {
			if !fs.validBlock(b) {
				return 0, false, fs.corrupt(v.ino, "block pointer %d out of range", b)
			}
			return b, false, nil
		}
		nb, err := v.allocData(v.allocGoal())
		if err != nil {
			return 0, false, err
		}
		v.setIblock(slot, uint32(nb))
		v.forgetMap()
		return nb, true, nil
	}
	// The root pointer in the inode.
	ptr := uint64(v.iblock(slot))
	if ptr == 0 {
		nb, err := v.allocMeta()
		if err != nil {
			return 0, false, err
		}
		v.setIblock(slot, uint32(nb))
		ptr = nb
		v.forgetMap()
	}
	for level, i := range idx {
		if !fs.validBlock(ptr) {
			return 0, false, fs.corrupt(v.ino, "indirect block pointer %d out of range", ptr)
		}
		b, err := fs.cache.Get(int64(ptr))
		if err != nil {
			return 0, false, fs.corrupt(v.ino, "reading indirect block %d: %v", ptr, err)
		}
		next := uint64(le.Uint32(b.Data()[4*i:]))
		last := level == len(idx)-1
		if next != 0 {
			b.Release()
			if last {
				if !fs.validBlock(next) {
					return 0, false, fs.corrupt(v.ino, "block pointer %d out of range", next)
				}
				return next, false, nil
			}
			ptr = next
			continue
		}
		var nb uint64
		if last {
			nb, err = v.allocData(v.allocGoal())
		} else {
			nb, err = v.allocMeta()
		}
		if err != nil {
			b.Release()
			return 0, false, err
		}
		le.PutUint32(b.Data()[4*i:], uint32(nb))
		b.MarkDirty()
		b.Release()
		v.forgetMap()
		if last {
			return nb, true, nil
		}
		ptr = nb
	}
	return 0, false, syscall.EIO
}

// allocData allocates a data block for v near goal and counts it in
// i_blocks.
func (v *vnode) allocData(goal uint64) (uint64, error) {
	nb, err := v.fs.allocBlock(goal, v.mayUseReserved())
	if err != nil {
		return 0, err
	}
	v.addBlocks(1)
	v.lastAlloc = nb
	return nb, nil
}

// allocMeta allocates a zeroed indirect block for v.
func (v *vnode) allocMeta() (uint64, error) {
	nb, err := v.fs.allocBlock(v.allocGoal(), v.mayUseReserved())
	if err != nil {
		return 0, err
	}
	b, err := v.fs.cache.GetNew(int64(nb))
	if err != nil {
		v.fs.freeBlock(nb)
		return 0, v.fs.corrupt(v.ino, "new indirect block %d: %v", nb, err)
	}
	b.Release()
	v.addBlocks(1)
	v.lastAlloc = nb
	return nb, nil
}

// mayUseReserved applies the root reservation by file owner (see the
// package comment).
func (v *vnode) mayUseReserved() bool {
	u, g := v.uid(), v.gid()
	return u == 0 || u == v.fs.resuid || g == v.fs.resgid
}

// truncateBlocks frees every block of v at logical block keep and
// beyond, and indirect blocks left empty. Pointers are cleared before the
// blocks are freed. Caller holds fs.mu exclusively and writes the inode
// afterwards.
func (v *vnode) truncateBlocks(keep uint64) error {
	fs := v.fs
	v.forgetMap()
	v.lastAlloc = 0
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for s := 0; s < nDirBlocks; s++ {
		if uint64(s) >= keep {
			if b := uint64(v.iblock(s)); b != 0 {
				v.setIblock(s, 0)
				note(v.freeOwned(b))
			}
		}
	}
	base := uint64(nDirBlocks)
	for _, sd := range [][2]int{{indBlock, 1}, {dindBlock, 2}, {tindBlock, 3}} {
		slot, depth := sd[0], sd[1]
		cover := fs.span(depth)
		ptr := uint64(v.iblock(slot))
		if ptr != 0 && keep < base+cover {
			empty, err := v.truncTree(ptr, depth, base, keep)
			note(err)
			if err == nil && empty {
				v.setIblock(slot, 0)
				note(v.freeOwned(ptr))
			}
		}
		base += cover
	}
	return firstErr
}

// truncTree frees the blocks at or past keep below the indirect block ptr
// at the given depth, whose subtree starts at logical block base. It
// reports whether the block ptr is now all zeros (the caller then frees
// it).
func (v *vnode) truncTree(ptr uint64, depth int, base, keep uint64) (bool, error) {
	fs := v.fs
	if !fs.validBlock(ptr) {
		return false, fs.corrupt(v.ino, "indirect block pointer %d out of range", ptr)
	}
	b, err := fs.cache.Get(int64(ptr))
	if err != nil {
		return false, fs.corrupt(v.ino, "reading indirect block %d: %v", ptr, err)
	}
	defer b.Release()
	d := b.Data()
	child := fs.span(depth - 1)
	var firstErr error
	empty := true
	changed := false
	for i := 0; i < fs.bs/4; i++ {
		x := uint64(le.Uint32(d[4*i:]))
		if x == 0 {
			continue
		}
		start := base + uint64(i)*child
		if start+child <= keep {
			empty = false
			continue
		}
		if depth == 1 {
			le.PutUint32(d[4*i:], 0)
			changed = true
			if err := v.freeOwned(x); err != nil && firstErr == nil {
				firstErr = err
			}
			continue
		}
		sub, err := v.truncTree(x, depth-1, start, keep)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			empty = false
			continue
		}
		if sub {
			le.PutUint32(d[4*i:], 0)
			changed = true
			if err := v.freeOwned(x); err != nil && firstErr == nil {
				firstErr = err
			}
		} else {
			empty = false
		}
	}
	if changed {
		b.MarkDirty()
	}
	return empty, firstErr
}

// freeOwned frees block b of v and uncounts it from i_blocks.
func (v *vnode) freeOwned(b uint64) error {
	v.addBlocks(-1)
	return v.fs.freeBlock(b)
}
