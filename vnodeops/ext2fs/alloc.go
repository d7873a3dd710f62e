package ext2fs

import (
	"math/bits"
	"syscall"
)

// Block and inode allocation through the per-group bitmaps (Poirier,
// "Block Bitmap", "Inode Bitmap"): bit i of group g's block bitmap is
// block s_first_data_block + g*s_blocks_per_group + i; bit i of its inode
// bitmap is inode g*s_inodes_per_group + i + 1. mke2fs marks the group's
// own metadata (superblock backups, descriptor copies, reserved GDT
// blocks, bitmaps, inode table) and the padding past the last block as
// used, so allocation never hands them out. Every function here is called
// with fs.mu held exclusively.

// findZero returns the first clear bit in bm within [from, limit), or -1.
func findZero(bm []byte, from, limit int) int {
	i := from
	for i < limit {
		if i&63 == 0 && i+64 <= limit {
			w := le.Uint64(bm[i>>3:])
			if w == ^uint64(0) {
				i += 64
				continue
			}
			return i + bits.TrailingZeros64(^w)
		}
		if bm[i>>3]&(1<<(i&7)) == 0 {
			return i
		}
		i++
	}
	return -1
}

func setBit(bm []byte, i int)       { bm[i>>3] |= 1 << (i & 7) }
func clearBit(bm []byte, i int)     { bm[i>>3] &^= 1 << (i & 7) }
func testBit(bm []byte, i int) bool { return bm[i>>3]&(1<<(i&7)) != 0 }

// allocBlock allocates one block, preferring goal and then the groups
// after it. reserved says whether the caller may use the root-reserved
// blocks.
func (fs *fsys) allocBlock(goal uint64, reserved bool) (uint64, error) {
	if fs.ro {
		return 0, syscall.EROFS
	}
	if fs.freeBlocks == 0 || (!reserved && fs.freeBlocks <= fs.rBlocks) {
		return 0, syscall.ENOSPC
	}
	if goal < uint64(fs.firstDataBlock) || goal >= fs.blocksCount {
		goal = uint64(fs.firstDataBlock)
	}
	g0 := uint32((goal - uint64(fs.firstDataBlock)) / uint64(fs.bpg))
	start := int((goal - uint64(fs.firstDataBlock)) % uint64(fs.bpg))
	for i := uint32(0); i <= fs.ngroups; i++ {
		g := (g0 + i) % fs.ngroups
		gr := &fs.groups[g]
		if gr.freeBlocks == 0 {
			continue
		}
		from := 0
		if i == 0 {
			from = start
		}
		b, err := fs.cache.Get(int64(gr.blockBitmap))
		if err != nil {
			return 0, fs.corrupt(0, "reading block bitmap of group %d: %v", g, err)
		}
		bm := b.Data()
		n := int(fs.groupBlocks(g))
		bit := findZero(bm, from, n)
		if bit < 0 && from > 0 {
			bit = findZero(bm, 0, from)
		}
		if bit < 0 {
			b.Release()
			if i == 0 && from > 0 {
				continue
			}
			return 0, fs.corrupt(0, "group %d counts %d free blocks but its bitmap is full", g, gr.freeBlocks)
		}
		blk := fs.groupFirstBlock(g) + uint64(bit)
		if !fs.validBlock(blk) {
			b.Release()
			return 0, fs.corrupt(0, "free block %d outside the file system", blk)
		}
		setBit(bm, bit)
		b.MarkDirty()
		b.Release()
		gr.freeBlocks--
		fs.freeBlocks--
		fs.sbDirty = true
		if err := fs.writeGroup(g); err != nil {
			return 0, err
		}
		return blk, nil
	}
	return 0, syscall.ENOSPC
}

// freeBlock returns block blk to its group and drops any cached copy.
func (fs *fsys) freeBlock(blk uint64) error {
	if !fs.validBlock(blk) {
		return fs.corrupt(0, "freeing block %d outside the file system", blk)
	}
	g := uint32((blk - uint64(fs.firstDataBlock)) / uint64(fs.bpg))
	bit := int((blk - uint64(fs.firstDataBlock)) % uint64(fs.bpg))
	gr := &fs.groups[g]
	b, err := fs.cache.Get(int64(gr.blockBitmap))
	if err != nil {
		return fs.corrupt(0, "reading block bitmap of group %d: %v", g, err)
	}
	bm := b.Data()
	if !testBit(bm, bit) {
		b.Release()
		return fs.corrupt(0, "freeing free block %d", blk)
	}
	clearBit(bm, bit)
	b.MarkDirty()
	b.Release()
	fs.cache.Invalidate(int64(blk))
	gr.freeBlocks++
	fs.freeBlocks++
	fs.sbDirty = true
	return fs.writeGroup(g)
}

// pickGroup chooses the group for a new inode: the parent's group first
// for files; for directories, the group with the fewest directories among
// those with at least the average free inodes and blocks, searched from
// the parent's group on (spreading directories as ext2 does, without
// Orlov's refinements).
func (fs *fsys) pickGroup(parent uint64, dir bool) (uint32, bool) {
	pg := uint32(0)
	if parent >= 1 && parent <= uint64(fs.inodesCount) {
		pg = uint32((parent - 1) / uint64(fs.ipg))
	}
	if dir && fs.ngroups > 1 {
		avgI := fs.freeInodes / fs.ngroups
		avgB := fs.freeBlocks / uint64(fs.ngroups)
		best, found := uint32(0), false
		for i := uint32(0); i < fs.ngroups; i++ {
			g := (pg + i) % fs.ngroups
			gr := &fs.groups[g]
			if gr.freeInodes == 0 || gr.freeInodes < avgI || uint64(gr.freeBlocks) < avgB {
				continue
			}
			if !found || gr.usedDirs < fs.groups[best].usedDirs {
				best, found = g, true
			}
		}
		if found {
			return best, true
		}
	}
	for i := uint32(0); i < fs.ngroups; i++ {
		g := (pg + i) % fs.ngroups
		if fs.groups[g].freeInodes > 0 {
			return g, true
		}
	}
	return 0, false
}

// allocInode allocates an inode near parent and counts a directory in
// its group's used_dirs.
func (fs *fsys) allocInode(parent uint64, dir bool) (uint64, error) {
	if fs.ro {
		return 0, syscall.EROFS
	}
	if fs.freeInodes == 0 {
		return 0, syscall.ENOSPC
	}
	g0, ok := fs.pickGroup(parent, dir)
	if !ok {
		return 0, syscall.ENOSPC
	}
	for i := uint32(0); i < fs.ngroups; i++ {
		g := (g0 + i) % fs.ngroups
		gr := &fs.groups[g]
		if gr.freeInodes == 0 {
			continue
		}
		b, err := fs.cache.Get(int64(gr.inodeBitmap))
		if err != nil {
			return 0, fs.corrupt(0, "reading inode bitmap of group %d: %v", g, err)
		}
		bm := b.Data()
		from := 0
		if base := uint64(g) * uint64(fs.ipg); base+1 < uint64(fs.firstIno) {
			from = int(uint64(fs.firstIno) - 1 - base) // never the reserved inodes
			from = min(from, int(fs.ipg))
		}
		bit := findZero(bm, from, int(fs.ipg))
		if bit < 0 {
			b.Release()
			return 0, fs.corrupt(0, "group %d counts %d free inodes but its bitmap is full", g, gr.freeInodes)
		}
		setBit(bm, bit)
		b.MarkDirty()
		b.Release()
		gr.freeInodes--
		fs.freeInodes--
		if dir {
			gr.usedDirs++
		}
		fs.sbDirty = true
		if err := fs.writeGroup(g); err != nil {
			return 0, err
		}
		return uint64(g)*uint64(fs.ipg) + uint64(bit) + 1, nil
	}
	return 0, syscall.ENOSPC
}

// freeInode returns inode ino to its group.
func (fs *fsys) freeInode(ino uint64, dir bool) error {
	if ino < uint64(fs.firstIno) || ino > uint64(fs.inodesCount) {
		return fs.corrupt(ino, "freeing a reserved or out-of-range inode")
	}
	g := uint32((ino - 1) / uint64(fs.ipg))
	bit := int((ino - 1) % uint64(fs.ipg))
	gr := &fs.groups[g]
	b, err := fs.cache.Get(int64(gr.inodeBitmap))
	if err != nil {
		return fs.corrupt(ino, "reading inode bitmap of group %d: %v", g, err)
	}
	bm := b.Data()
	if !testBit(bm, bit) {
		b.Release()
		return fs.corrupt(ino, "freeing a free inode")
	}
	clearBit(bm, bit)
	b.MarkDirty()
	b.Release()
	gr.freeInodes++
	fs.freeInodes++
	if dir && gr.usedDirs > 0 {
		gr.usedDirs--
	}
	fs.sbDirty = true
	return fs.writeGroup(g)
}
