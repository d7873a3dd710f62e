package ffs

import (
	"errors"
	"fmt"
	"io"

	"github.com/rump9p/rump9p/vnodeops"
)

// maxFindings bounds the findings Check reports.
const maxFindings = 100

// Check is a consistency check of an unmounted FFS on r, a device of
// size bytes, in the spirit of fsck_ffs's passes but without repairs.
// It is built on layout.go's decoding alone, none of the driver's
// allocation code, so that it judges what the driver writes
// independently. It walks every inode in use and checks that each
// fragment is referenced at most once and lies inside the file system,
// that the cylinder groups' free maps are the complement of the
// references and the metadata, that di_blocks counts what the block map
// holds, that directories are sound chunks naming inodes in use, that
// cg_cs, cg_frsum, the cluster maps and summaries, the summary area and
// fs_cstotal are exact, that every link count equals the directory
// entries naming the inode, that every inode in use is reachable from
// the root and every directory's ".." names its parent, and that the
// file system is marked clean.
//
// It returns at most maxFindings findings, in the order found (none:
// the file system is consistent), or an error when there is no
// superblock to check or the device cannot be read.
func Check(r io.ReaderAt, size int64) ([]string, error) {
	var sb *superblock
	for _, loc := range sbSearch {
		if loc+sbBlockSize > size {
			continue
		}
		raw := make([]byte, sbBlockSize)
		if _, err := r.ReadAt(raw, loc); err != nil {
			return nil, err
		}
		if s, err := decodeSuper(raw, loc, size); err == nil {
			sb = s
			break
		} else if !errors.Is(err, errNoSuper) {
			return nil, err
		}
	}
	if sb == nil {
		return nil, errNoSuper
	}
	var out []string
	bad := func(format string, a ...any) {
		if len(out) < maxFindings {
			out = append(out, fmt.Sprintf(format, a...))
		}
	}
	if sb.clean&fsIsClean == 0 {
		bad("not marked clean")
	}
	var ioErr error
	// frag reads the block holding fragment a, from a on.
	frag := func(a int64) []byte {
		buf := make([]byte, sb.bsize-(a&(sb.frag-1))<<sb.fshift)
		if _, err := r.ReadAt(buf, a<<sb.fshift); err != nil && ioErr == nil {
			ioErr = err
		}
		return buf
	}
	used := make([]uint64, (sb.size+63)/64) // fragments in use
	isUsed := func(i int64) bool { return used[i/64]&(1<<(i%64)) != 0 }
	use := func(i int64) { used[i/64] |= 1 << (i % 64) }
	claim := func(ino uint64, a, n int64) bool {
		if a <= 0 || a+n > sb.size {
			bad("ino %d: address %d+%d outside the file system", ino, a, n)
			return false
		}
		for i := a; i < a+n; i++ {
			if isUsed(i) {
				bad("ino %d: fragment %d referenced twice", ino, i)
				return false
			}
		}
		for i := a; i < a+n; i++ {
			use(i)
		}
		return true
	}
	cgs := make([]*cgView, sb.ncg)
	for c := range sb.ncg {
		v, err := sb.decodeCg(frag(sb.cgtod(c)), c)
		if err != nil {
			bad("%v", err)
			return out, ioErr
		}
		cgs[c] = v
		lo := sb.cgBase(c) + sb.sblkno
		if c == 0 {
			lo = 0
		}
		for i := lo; i < sb.cgBase(c)+sb.dblkno && i < sb.size; i++ {
			use(i)
		}
	}
	for i := sb.csaddr; i < sb.csaddr+(sb.cssize+sb.fsize-1)>>sb.fshift; i++ {
		use(i)
	}
	refs := map[uint64]int{}
	dotdot := map[uint64]uint64{}     // directory -> what its ".." names
	children := map[uint64][]uint64{} // directory -> inodes its entries name
	nlink := map[uint64]int{}
	dirs := make([]int64, sb.ncg)
	var iblk []byte
	for c := range sb.ncg {
		v := cgs[c]
		for i := int64(0); i < sb.ipg; i++ {
			ino := uint64(c)*uint64(sb.ipg) + uint64(i)
			inUse := v.inodeUsed(i)
			if sb.ufs2 && i >= v.initedIblk() {
				if inUse {
					bad("ino %d: in use past cg_initediblk", ino)
				}
				continue
			}
			if i%sb.inopb == 0 {
				a, _ := sb.inoLoc(ino)
				iblk = frag(a)
			}
			_, off := sb.inoLoc(ino)
			d := dinode{b: iblk[off : off+sb.dinodeSize()], bo: sb.bo, ufs2: sb.ufs2}
			if ino < rootIno {
				continue
			}
			if inUse != (d.mode() != 0) {
				bad("ino %d: map says used %v, mode %#o", ino, inUse, d.mode())
				continue
			}
			if !inUse {
				continue
			}
			nlink[ino] = int(d.nlink())
			typ := uint32(d.mode()) & vnodeops.S_IFMT
			if typ == vnodeops.S_IFDIR {
				dirs[c]++
			}
			held := checkInodeBlocks(sb, d, ino, frag, claim, bad, func(dirData []byte) {
				for o := 0; o+dirBlkSize <= len(dirData); o += dirBlkSize {
					chunk := dirData[o : o+dirBlkSize]
					for p := 0; p < dirBlkSize; {
						e, err := decodeDirent(sb.bo, sb.oldDirFormat, chunk, p)
						if err != nil {
							bad("ino %d: directory chunk %d: %v", ino, o, err)
							break
						}
						if e.ino != 0 {
							refs[uint64(e.ino)]++
							switch name := string(e.name); {
							case o == 0 && p == 0:
								if e.ino != uint32(ino) || name != "." {
									bad("ino %d: directory does not start with \".\"", ino)
								}
							case o == 0 && p == 12:
								if name != ".." {
									bad("ino %d: directory's second entry is not \"..\"", ino)
								}
								dotdot[ino] = uint64(e.ino)
							case name != "." && name != "..":
								children[ino] = append(children[ino], uint64(e.ino))
							}
						}
						p += e.reclen
					}
				}
			})
			if held<<sb.fshift != int64(d.blocks())*devBSize {
				bad("ino %d: di_blocks %d, block map holds %d fragments", ino, d.blocks(), held)
			}
		}
	}
	for ino, n := range nlink {
		if refs[ino] != n {
			bad("ino %d: link count %d, %d entries name it", ino, n, refs[ino])
		}
	}
	// Reachability from the root, and ".." of every directory naming
	// the directory that holds it.
	reached := map[uint64]bool{rootIno: true}
	queue := []uint64{rootIno}
	if dotdot[rootIno] != rootIno {
		bad("ino %d: the root's \"..\" names %d", rootIno, dotdot[rootIno])
	}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		for _, child := range children[dir] {
			if _, isDir := dotdot[child]; isDir && dotdot[child] != dir {
				bad("ino %d: \"..\" names %d, but directory %d holds it", child, dotdot[child], dir)
			}
			if !reached[child] {
				reached[child] = true
				queue = append(queue, child)
			}
		}
	}
	for ino := range nlink {
		if !reached[ino] {
			bad("ino %d: in use but not reachable from the root", ino)
		}
	}
	for ino := range refs {
		if _, ok := nlink[ino]; !ok {
			bad("entry names free inode %d", ino)
		}
	}
	var total csum
	area := make([]byte, sb.cssize)
	if _, err := r.ReadAt(area, sb.csaddr<<sb.fshift); err != nil && ioErr == nil {
		ioErr = err
	}
	for c := range sb.ncg {
		v := cgs[c]
		var cs csum
		var frsum [maxFrag]int
		for i := int64(0); i < sb.fpg; i++ {
			a := sb.cgBase(c) + i
			free := v.fragFree(i)
			if i >= v.ndblk {
				if free {
					bad("cg %d: fragment %d past the group marked free", c, i)
				}
				continue
			}
			if free == isUsed(a) {
				bad("cg %d: fragment %d marked free %v, in use %v", c, a, free, isUsed(a))
			}
		}
		nblk := (v.ndblk + sb.frag - 1) / sb.frag
		run := int64(0)
		clsum := make([]int64, sb.contigsumsize+1)
		for b := int64(0); b <= nblk; b++ {
			var ac blockAcct
			if b < nblk {
				ac = v.acct(b, sb.frag)
			}
			if ac.whole {
				cs.nbfree++
				run++
			} else {
				cs.nffree += int64(ac.nffree)
				for k := 1; k < maxFrag; k++ {
					frsum[k] += ac.runs[k]
				}
				if run > 0 && sb.contigsumsize > 0 {
					clsum[min(run, sb.contigsumsize)]++
				}
				run = 0
			}
			if sb.contigsumsize > 0 && b < v.nclust && v.clusterFree(b) != ac.whole {
				bad("cg %d: cluster map of block %d says free %v", c, b, v.clusterFree(b))
			}
		}
		for k := 1; k < int(sb.frag); k++ {
			if int(v.frsum(k)) != frsum[k] {
				bad("cg %d: frsum[%d] %d, want %d", c, k, v.frsum(k), frsum[k])
			}
		}
		for k := int64(1); k <= sb.contigsumsize; k++ {
			got := int64(int32(sb.bo.Uint32(v.b[v.csumOff+4*k:])))
			if got != clsum[k] {
				bad("cg %d: cluster sum[%d] %d, want %d", c, k, got, clsum[k])
			}
		}
		for i := int64(0); i < sb.ipg; i++ {
			if !v.inodeUsed(i) {
				cs.nifree++
			}
		}
		cs.ndir = dirs[c]
		if v.cs() != cs {
			bad("cg %d: cg_cs %+v, want %+v", c, v.cs(), cs)
		}
		if got := decodeCsum(sb.bo, area[c*csumLen:]); got != cs {
			bad("cg %d: summary area %+v, want %+v", c, got, cs)
		}
		total.add(cs)
	}
	if sb.cstotal != total {
		bad("fs_cstotal %+v, want %+v", sb.cstotal, total)
	}
	return out, ioErr
}

// checkInodeBlocks claims the fragments inode d holds and returns how
// many; it hands a directory's data to dir.
func checkInodeBlocks(sb *superblock, d dinode, ino uint64, readFrags func(int64) []byte, claim func(uint64, int64, int64) bool, bad func(string, ...any), dir func([]byte)) int64 {
	typ := uint32(d.mode()) & vnodeops.S_IFMT
	size := d.size()
	var held int64
	var dirData []byte
	if ext := int64(d.extSize()); ext > 0 {
		for i := int64(0); i < 2 && i<<sb.bshift < ext; i++ {
			n := sb.blkSize(uint64(ext), i) >> sb.fshift
			if claim(ino, d.extAddr(int(i)), n) {
				held += n
			}
		}
	}
	switch typ {
	case vnodeops.S_IFREG, vnodeops.S_IFDIR:
	case vnodeops.S_IFLNK:
		if int64(size) < sb.maxsymlinklen {
			return held
		}
	default:
		return held
	}
	nblocks := int64((size + uint64(sb.bsize) - 1) >> sb.bshift)
	var walk func(a int64, level int, start int64)
	walk = func(a int64, level int, start int64) {
		if a&(sb.frag-1) != 0 {
			bad("ino %d: block address %d is not a block's", ino, a)
			return
		}
		if level == 0 {
			if start >= nblocks {
				bad("ino %d: block %d past the size", ino, start)
			}
			if claim(ino, a, sb.frag) {
				held += sb.frag
				if typ == vnodeops.S_IFDIR {
					dirData = append(dirData, readFrags(a)[:sb.bsize]...)
				}
			}
			return
		}
		if !claim(ino, a, sb.frag) {
			return
		}
		held += sb.frag
		span := int64(1)
		for range level - 1 {
			span *= sb.nindir
		}
		raw := make([]byte, sb.bsize)
		copy(raw, readFrags(a))
		for i := int64(0); i < sb.nindir; i++ {
			var p int64
			if sb.ufs2 {
				p = int64(sb.bo.Uint64(raw[8*i:]))
			} else {
				p = int64(int32(sb.bo.Uint32(raw[4*i:])))
			}
			if p != 0 {
				walk(p, level-1, start+i*span)
			}
		}
	}
	for lbn := int64(0); lbn < nDAddr; lbn++ {
		a := d.addr(int(lbn))
		if a == 0 {
			if typ == vnodeops.S_IFDIR && lbn < nblocks {
				bad("ino %d: directory hole at %d", ino, lbn)
			}
			continue
		}
		if lbn >= nblocks {
			bad("ino %d: direct block %d past the size %d", ino, lbn, size)
			continue
		}
		n := sb.blkSize(size, lbn) >> sb.fshift
		if a&(sb.frag-1)+n > sb.frag {
			bad("ino %d: block %d (%d fragments at %d) crosses a block", ino, lbn, n, a)
			continue
		}
		if claim(ino, a, n) {
			held += n
			if typ == vnodeops.S_IFDIR {
				dirData = append(dirData, readFrags(a)[:min(n<<sb.fshift, int64(size)-lbn<<sb.bshift)]...)
			}
		}
	}
	start, span := int64(nDAddr), int64(1)
	for l := 0; l < nIAddr; l++ {
		span *= sb.nindir
		if a := d.addr(nDAddr + l); a != 0 {
			walk(a, l+1, start)
		}
		start += span
	}
	if typ == vnodeops.S_IFDIR {
		dir(dirData[:min(int64(len(dirData)), int64(size))])
	}
	return held
}
