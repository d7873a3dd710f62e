package ffs

import (
	"math/rand/v2"
	"syscall"

	"github.com/rump9p/rump9p/blkdev"
)

// Allocation in the manner of NetBSD's ffs_alloc.c: blocks and fragments
// come from the cylinder group of a preferred address (the block after
// the file's previous one, so sequential writes stay contiguous), else
// the inode's group, else the other groups in turn; inodes of new
// directories go to a group with many free inodes and few directories,
// other inodes to their directory's group.
//
// Every change of a fragment's state goes through changeFrags, which
// recomputes what the block contributes to the summaries before and after
// (blockAcct) and applies the difference to cg_cs, cg_frsum, the cluster
// map and summary, the in-memory fs_cs and fs_cstotal: all of them stay
// exact. Caller holds fs.mu exclusively throughout.

// changeFrags marks n fragments from fragment index start of group c (in
// view v) free or in use, keeping every summary exact. The range lies
// inside one block.
func (fs *fsys) changeFrags(c uint32, v *cgView, start, n int64, free bool) {
	sb := fs.sb
	bno := start >> sb.fragshift
	before := v.acct(bno, sb.frag)
	for i := start; i < start+n; i++ {
		v.setFragFree(i, free)
	}
	after := v.acct(bno, sb.frag)
	var d csum
	if before.whole {
		d.nbfree--
	}
	if after.whole {
		d.nbfree++
	}
	d.nffree = int64(after.nffree - before.nffree)
	for k := 1; k < int(sb.frag); k++ {
		if diff := after.runs[k] - before.runs[k]; diff != 0 {
			v.addFrsum(k, diff)
		}
	}
	if before.whole != after.whole && v.clOff != 0 && bno < v.nclust {
		fs.clusterAcct(v, bno, after.whole)
	}
	cs := v.cs()
	cs.add(d)
	v.setCs(cs)
	fs.cs[c].add(d)
	fs.sb.cstotal.add(d)
	v.setTime(fs.now().Unix(), sb.ufs2)
}

// clusterAcct updates the cluster map and the cluster summary (counts of
// free runs of each length, runs of fs_contigsumsize or more counted in
// the last slot) for block bno becoming free or used, as ffs_clusteracct
// does.
func (fs *fsys) clusterAcct(v *cgView, bno int64, free bool) {
	css := fs.sb.contigsumsize
	v.setClusterFree(bno, free)
	cnt := 1
	if !free {
		cnt = -1
	}
	forw := int64(0)
	for i := bno + 1; i < min(bno+1+css, v.nclust) && v.clusterFree(i); i++ {
		forw++
	}
	back := int64(0)
	for i := bno - 1; i >= max(bno-css, 0) && v.clusterFree(i); i-- {
		back++
	}
	v.addClusterSum(min(back+forw+1, css), cnt)
	if back > 0 {
		v.addClusterSum(back, -cnt)
	}
	if forw > 0 {
		v.addClusterSum(forw, -cnt)
	}
}

// freeSpace is the number of free fragments.
func (fs *fsys) freeSpace() int64 {
	return fs.sb.cstotal.nbfree*fs.sb.frag + fs.sb.cstotal.nffree
}

// reserved reports whether allocating n fragments would dip into the
// minfree reserve, which only files owned by root may use.
func (fs *fsys) reserved(n int64, uid uint32) bool {
	return uid != 0 && fs.freeSpace()-n < fs.sb.dsize*fs.sb.minfree/100
}

// allocFrags allocates n fragments (1 ≤ n ≤ frag) inside one block:
// exactly at pref when that is free, else in pref's group, else in group
// cg, else anywhere. It returns the fragment address.
func (fs *fsys) allocFrags(pref int64, cg uint32, n int64, uid uint32) (int64, error) {
	sb := fs.sb
	if fs.reserved(n, uid) {
		return 0, syscall.ENOSPC
	}
	first := cg
	if pref > 0 && pref < sb.size {
		first = sb.dtog(pref)
	} else {
		pref = 0
	}
	order := []uint32{first}
	if cg != first {
		order = append(order, cg)
	}
	for i := uint32(1); i < sb.ncg; i++ {
		if c := (first + i) % sb.ncg; c != cg {
			order = append(order, c)
		}
	}
	for _, c := range order {
		cs := fs.cs[c]
		if cs.nbfree == 0 && (n == sb.frag || cs.nffree < n) {
			continue
		}
		a, err := fs.allocInCg(c, pref, n)
		if err != nil {
			return 0, err
		}
		if a > 0 {
			return a, nil
		}
	}
	return 0, syscall.ENOSPC
}

// allocInCg allocates n fragments in group c, 0 when it has no room.
func (fs *fsys) allocInCg(c uint32, pref, n int64) (int64, error) {
	sb := fs.sb
	b, v, err := fs.getCg(c)
	if err != nil {
		return 0, fs.corrupt(0, "%v", err)
	}
	defer b.Release()
	base := sb.cgBase(c)
	nblk := v.ndblk >> sb.fragshift
	startBlk := int64(0)
	if pref >= base && pref < base+v.ndblk {
		p := pref - base
		if fs.runFree(v, p, n) {
			fs.changeFrags(c, v, p, n, false)
			b.MarkDirty()
			return base + p, nil
		}
		startBlk = p >> sb.fragshift
	}
	// Fragments: the smallest free run that fits, in a partly used block
	// (cg_frsum says whether one exists), as ffs_alloccg does.
	if n < sb.frag {
		for k := n; k < sb.frag; k++ {
			if v.frsum(int(k)) <= 0 {
				continue
			}
			for j := int64(0); j < v.ndblk>>sb.fragshift+1; j++ {
				blk := (startBlk + j) % (nblk + 1)
				if s := fs.runOf(v, blk, k); s >= 0 {
					fs.changeFrags(c, v, s, n, false)
					b.MarkDirty()
					return base + s, nil
				}
			}
		}
	}
	// A whole free block.
	for j := int64(0); j < nblk; j++ {
		blk := (startBlk + j) % nblk
		if v.acct(blk, sb.frag).whole {
			fs.changeFrags(c, v, blk<<sb.fragshift, n, false)
			b.MarkDirty()
			return base + blk<<sb.fragshift, nil
		}
	}
	return 0, nil
}

// runFree reports whether the n fragments from index p are free and lie
// in one block.
func (fs *fsys) runFree(v *cgView, p, n int64) bool {
	if p&(fs.sb.frag-1)+n > fs.sb.frag {
		return false
	}
	for i := p; i < p+n; i++ {
		if !v.fragFree(i) {
			return false
		}
	}
	return true
}

// runOf returns the start of a maximal free run of exactly k fragments in
// a partly used block blk, or -1.
func (fs *fsys) runOf(v *cgView, blk, k int64) int64 {
	frag := fs.sb.frag
	base := blk * frag
	if base >= v.ndblk {
		return -1
	}
	run := int64(0)
	for i := int64(0); i <= frag; i++ {
		if i < frag && v.fragFree(base+i) {
			run++
			continue
		}
		if run == k && k < frag {
			return base + i - run
		}
		run = 0
	}
	return -1
}

// extendFrags grows the allocation of have fragments at a to want
// fragments in place when the following fragments of the block are free.
func (fs *fsys) extendFrags(a, have, want int64, uid uint32) (bool, error) {
	sb := fs.sb
	if a&(sb.frag-1)+want > sb.frag || fs.reserved(want-have, uid) {
		return false, nil
	}
	c := sb.dtog(a)
	b, v, err := fs.getCg(c)
	if err != nil {
		return false, fs.corrupt(0, "%v", err)
	}
	defer b.Release()
	p := a - sb.cgBase(c)
	if !fs.runFree(v, p+have, want-have) {
		return false, nil
	}
	fs.changeFrags(c, v, p+have, want-have, false)
	b.MarkDirty()
	return true, nil
}

// freeFrags frees n fragments at a (inside one block) and drops their
// cached data. Freeing a fragment that is already free is logged as
// corruption and skipped.
func (fs *fsys) freeFrags(ino uint64, a, n int64) error {
	sb := fs.sb
	if err := fs.checkAddr(ino, a, n); err != nil {
		return err
	}
	c := sb.dtog(a)
	b, v, err := fs.getCg(c)
	if err != nil {
		return fs.corrupt(ino, "%v", err)
	}
	defer b.Release()
	p := a - sb.cgBase(c)
	if p < sb.dblkno && c == 0 || p < sb.dblkno && p >= sb.sblkno {
		return fs.corrupt(ino, "freeing metadata fragment %d", a)
	}
	for i := p; i < p+n; i++ {
		if v.fragFree(i) {
			return fs.corrupt(ino, "freeing free fragment %d", sb.cgBase(c)+i)
		}
	}
	fs.changeFrags(c, v, p, n, true)
	b.MarkDirty()
	if n == sb.frag {
		fs.cache.Invalidate(a >> sb.fragshift)
	}
	return nil
}

// ---- Inodes ----

// ufsLinkMax is UFS_LINK_MAX: di_nlink is a signed 16-bit count.
const ufsLinkMax = 32767

// dirPref picks the group of a new directory: among groups with at least
// the average number of free inodes, the one with the fewest directories
// (4.4BSD ffs_dirpref), more free blocks breaking ties.
func (fs *fsys) dirPref() uint32 {
	sb := fs.sb
	avg := sb.cstotal.nifree / int64(sb.ncg)
	best, found := uint32(0), false
	for c := uint32(0); c < sb.ncg; c++ {
		cs := fs.cs[c]
		if cs.nifree == 0 || cs.nifree < avg {
			continue
		}
		if !found || cs.ndir < fs.cs[best].ndir || (cs.ndir == fs.cs[best].ndir && cs.nbfree > fs.cs[best].nbfree) {
			best, found = c, true
		}
	}
	return best
}

// allocInode allocates an inode near parent (for a directory: in the
// group dirPref picks) and returns its number and a fresh zeroed dinode
// with a new generation number.
func (fs *fsys) allocInode(parent uint64, dir bool) (uint64, dinode, error) {
	sb := fs.sb
	if sb.cstotal.nifree <= 0 {
		return 0, dinode{}, syscall.ENOSPC
	}
	start := sb.inoToCg(parent)
	if dir {
		start = fs.dirPref()
	}
	for i := uint32(0); i < sb.ncg; i++ {
		c := (start + i) % sb.ncg
		if fs.cs[c].nifree <= 0 {
			continue
		}
		ino, d, err := fs.allocInodeInCg(c, dir)
		if err != nil || ino != 0 {
			return ino, d, err
		}
	}
	return 0, dinode{}, syscall.ENOSPC
}

func (fs *fsys) allocInodeInCg(c uint32, dir bool) (uint64, dinode, error) {
	sb := fs.sb
	b, v, err := fs.getCg(c)
	if err != nil {
		return 0, dinode{}, fs.corrupt(0, "%v", err)
	}
	defer b.Release()
	idx := int64(-1)
	for i := int64(0); i < sb.ipg; i++ {
		if i >= int64(len(v.iused))*8 {
			break
		}
		if !v.inodeUsed(i) && !(c == 0 && i < rootIno) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return 0, dinode{}, nil
	}
	ino := uint64(c)*uint64(sb.ipg) + uint64(idx)
	if sb.ufs2 {
		// Inodes past cg_initediblk hold garbage: zero their blocks
		// first (ffs_nodealloccg).
		for inited := v.initedIblk(); idx >= inited; inited += sb.inopb {
			blk, _ := fs.inodeBlock(uint64(c)*uint64(sb.ipg) + uint64(inited))
			nb, err := fs.cache.GetNew(blk)
			if err != nil {
				return 0, dinode{}, fs.corrupt(ino, "zeroing inode block: %v", err)
			}
			nb.Release()
			v.setInitedIblk(min(inited+sb.inopb, sb.ipg))
		}
	}
	raw, err := fs.readInode(ino)
	if err != nil {
		return 0, dinode{}, err
	}
	d := dinode{b: raw, bo: sb.bo, ufs2: sb.ufs2}
	if d.mode() != 0 {
		return 0, dinode{}, fs.corrupt(ino, "free inode has mode %#o", d.mode())
	}
	gen := d.gen() + 1
	if gen == 0 || d.gen() == 0 {
		gen = rand.Uint32()>>1 | 1
	}
	clear(raw)
	d.setGen(gen)
	v.setInodeUsed(idx, true)
	delta := csum{nifree: -1}
	if dir {
		delta.ndir = 1
	}
	fs.applyInodeDelta(c, v, delta)
	b.MarkDirty()
	return ino, d, nil
}

func (fs *fsys) applyInodeDelta(c uint32, v *cgView, d csum) {
	cs := v.cs()
	cs.add(d)
	v.setCs(cs)
	fs.cs[c].add(d)
	fs.sb.cstotal.add(d)
	v.setTime(fs.now().Unix(), fs.sb.ufs2)
}

// freeInode marks inode ino free in its group.
func (fs *fsys) freeInode(ino uint64, dir bool) error {
	sb := fs.sb
	c := sb.inoToCg(ino)
	b, v, err := fs.getCg(c)
	if err != nil {
		return fs.corrupt(ino, "%v", err)
	}
	defer b.Release()
	idx := int64(ino % uint64(sb.ipg))
	if !v.inodeUsed(idx) {
		return fs.corrupt(ino, "freeing a free inode")
	}
	v.setInodeUsed(idx, false)
	delta := csum{nifree: 1}
	if dir {
		delta.ndir = -1
	}
	fs.applyInodeDelta(c, v, delta)
	b.MarkDirty()
	return nil
}

// zeroFrags zeroes n fragments at a in the cache (a whole block without
// reading it).
func (fs *fsys) zeroFrags(a, n int64) error {
	sb := fs.sb
	var b *blkdev.Buf
	var err error
	if n == sb.frag {
		b, err = fs.cache.GetNew(a >> sb.fragshift)
	} else {
		b, err = fs.cache.Get(a >> sb.fragshift)
	}
	if err != nil {
		return fs.corrupt(0, "zeroing block %d: %v", a, err)
	}
	off := (a & (sb.frag - 1)) << sb.fshift
	clear(b.Data()[off : off+n<<sb.fshift])
	b.MarkDirty()
	b.Release()
	return nil
}
