package ffs

// On-disk layout of the Berkeley Fast File System, UFS1 (4.4BSD) and UFS2.
//
// The facts come from NetBSD's headers: sys/ufs/ffs/fs.h (struct fs, the
// superblock; struct cg, the cylinder group; the superblock search list;
// the address macros), sys/ufs/ufs/dinode.h (struct ufs1_dinode and
// struct ufs2_dinode) and sys/ufs/ufs/dir.h (struct direct, DIRBLKSIZ),
// and FreeBSD's sys/ufs/ufs/extattr.h (struct extattr, the UFS2 extended
// attribute area). Every multi-byte field is stored in the byte order of
// the machine that made the file system; this file decodes and encodes
// with the order the superblock's magic number reveals.
//
// This file holds only decoding, encoding and validation of single
// structures: nothing here knows about allocation state, so that a
// checker can be built on it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Superblock search (fs.h SBLOCKSEARCH) and sizes.
var sbSearch = []int64{65536, 8192, 0, 262144}

const (
	sbBlockSize = 8192 // SBLOCKSIZE: space reserved for a superblock
	sbStructLen = 1376 // sizeof(struct fs)

	magicUFS1 = 0x011954
	magicUFS2 = 0x19540119
	cgMagic   = 0x090255

	minBSize    = 4096
	maxBSize    = 65536
	maxFrag     = 8
	maxContig   = 16 // FS_MAXCONTIG
	nDAddr      = 12 // UFS_NDADDR
	nIAddr      = 3  // UFS_NIADDR
	rootIno     = 2  // UFS_ROOTINO
	whiteoutIno = 1  // UFS_WINO: the inode of whiteout entries
	dirBlkSize  = 512
	maxNameLen  = 255
	devBSize    = 512 // DEV_BSIZE: the unit of di_blocks

	dinode1Size = 128
	dinode2Size = 256

	fsOKInodeFmt = 2 // FS_44INODEFMT

	// fs_clean values.
	fsIsClean = 0x01

	// fs_flags bits (NetBSD fs.h and FreeBSD fs.h; the two disagree above
	// 0x80, see knownFlags).
	fsUnclean      = 0x001
	fsDoSoftDep    = 0x002
	fsNeedsFsck    = 0x004
	fsSUJ          = 0x008 // FreeBSD: soft updates journaling
	fsACLs         = 0x010
	fsMultiLabel   = 0x020
	fsGJournal     = 0x040 // FreeBSD
	fsFlagsUpdated = 0x080
	fsDoWAPBL      = 0x100 // NetBSD (FreeBSD: NFSv4 ACLs)
	fsDoQuota2     = 0x200 // NetBSD (FreeBSD: metadata check hashes)
	fsTrim         = 0x400 // FreeBSD
	fsInternal     = 0x80000000
)

// Superblock field offsets (fs.h struct fs).
const (
	sbSblkno          = 8
	sbCblkno          = 12
	sbIblkno          = 16
	sbDblkno          = 20
	sbOldCgoffset     = 24
	sbOldCgmask       = 28
	sbOldTime         = 32
	sbOldSize         = 36
	sbOldDsize        = 40
	sbNcg             = 44
	sbBsize           = 48
	sbFsize           = 52
	sbFrag            = 56
	sbMinfree         = 60
	sbMaxcontig       = 88
	sbMaxbpg          = 92
	sbSbsize          = 104
	sbNindir          = 116
	sbInopb           = 120
	sbOldCsaddr       = 152
	sbCssize          = 156
	sbCgsize          = 160
	sbIpg             = 184
	sbFpg             = 188
	sbOldCstotal      = 192
	sbFmod            = 208
	sbClean           = 209
	sbRonly           = 210
	sbOldFlags        = 211
	sbJournalVersion  = 864
	sbJournalLocation = 865
	sbJournallocs     = 872
	sbSblockloc       = 1000
	sbCstotal         = 1008
	sbTime            = 1072
	sbSize            = 1080
	sbDsize           = 1088
	sbCsaddr          = 1096
	sbFlags           = 1312
	sbContigsumsize   = 1316
	sbMaxsymlinklen   = 1320
	sbOldInodefmt     = 1324
	sbMagic           = 1372
)

// csum is one cylinder group's summary (fs.h struct csum), as kept in the
// summary area at fs_csaddr and in each cg's cg_cs.
type csum struct {
	ndir, nbfree, nifree, nffree int64
}

func (c *csum) add(d csum) {
	c.ndir += d.ndir
	c.nbfree += d.nbfree
	c.nifree += d.nifree
	c.nffree += d.nffree
}

const csumLen = 16

func decodeCsum(bo binary.ByteOrder, b []byte) csum {
	return csum{
		ndir:   int64(int32(bo.Uint32(b[0:]))),
		nbfree: int64(int32(bo.Uint32(b[4:]))),
		nifree: int64(int32(bo.Uint32(b[8:]))),
		nffree: int64(int32(bo.Uint32(b[12:]))),
	}
}

func encodeCsum(bo binary.ByteOrder, b []byte, c csum) {
	bo.PutUint32(b[0:], uint32(c.ndir))
	bo.PutUint32(b[4:], uint32(c.nbfree))
	bo.PutUint32(b[8:], uint32(c.nifree))
	bo.PutUint32(b[12:], uint32(c.nffree))
}

// superblock is a decoded and validated struct fs. raw keeps the bytes as
// read (fs_sbsize of them) so that encode writes back every field this
// driver does not interpret unchanged.
type superblock struct {
	raw  []byte
	bo   binary.ByteOrder
	ufs2 bool
	loc  int64 // byte offset where it was found

	sblkno, cblkno, iblkno, dblkno int64 // fragment offsets inside a cg
	ncg                            uint32
	bsize, fsize, frag             int64
	bshift, fshift, fragshift      uint
	minfree                        int64
	maxcontig, maxbpg              int64
	sbsize                         int64
	nindir, inopb                  int64
	cssize, cgsize                 int64
	ipg, fpg                       int64
	clean                          byte
	flags                          uint32
	contigsumsize                  int64
	maxsymlinklen                  int64
	oldDirFormat                   bool // UFS1 without FS_44INODEFMT: no d_type
	size, dsize, csaddr            int64
	cstotal                        csum
	time                           int64
	wapblVersion, wapblLocation    byte
	wapblLocs                      [4]uint64
}

// errNoSuper says the bytes hold no FFS superblock at all (as opposed to
// a corrupt one).
var errNoSuper = errors.New("no FFS superblock")

// sniffMagic returns the byte order and UFS version a superblock's magic
// number shows, or ok false.
func sniffMagic(raw []byte) (bo binary.ByteOrder, ufs2, ok bool) {
	if len(raw) < sbStructLen {
		return nil, false, false
	}
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		switch o.Uint32(raw[sbMagic:]) {
		case magicUFS1:
			return o, false, true
		case magicUFS2:
			return o, true, true
		}
	}
	return nil, false, false
}

// decodeSuper decodes and validates the superblock read at byte offset
// loc of a device of devSize bytes. It returns errNoSuper when the magic
// is absent or the superblock belongs elsewhere (a backup copy, or a UFS1
// alternate at 64 KiB), and a descriptive error for a corrupt one.
func decodeSuper(raw []byte, loc, devSize int64) (*superblock, error) {
	bo, ufs2, ok := sniffMagic(raw)
	if !ok {
		return nil, errNoSuper
	}
	i32 := func(off int) int64 { return int64(int32(bo.Uint32(raw[off:]))) }
	i64 := func(off int) int64 { return int64(bo.Uint64(raw[off:])) }
	s := &superblock{bo: bo, ufs2: ufs2, loc: loc}
	sblockloc := i64(sbSblockloc)
	if ufs2 {
		// fs.h: the standard superblock records its own location; a copy
		// found elsewhere is a backup.
		if sblockloc != loc {
			return nil, errNoSuper
		}
	} else {
		// A UFS1 superblock at 64 KiB is most likely the backup of a cg,
		// and fs_sblockloc of old UFS1 file systems is 0.
		if loc == 65536 && sblockloc != loc {
			return nil, errNoSuper
		}
		if sblockloc != 0 && sblockloc != loc {
			return nil, errNoSuper
		}
	}
	s.sblkno, s.cblkno, s.iblkno, s.dblkno = i32(sbSblkno), i32(sbCblkno), i32(sbIblkno), i32(sbDblkno)
	s.ncg = uint32(i32(sbNcg))
	s.bsize, s.fsize, s.frag = i32(sbBsize), i32(sbFsize), i32(sbFrag)
	s.minfree = i32(sbMinfree)
	s.maxcontig, s.maxbpg = i32(sbMaxcontig), i32(sbMaxbpg)
	s.sbsize = i32(sbSbsize)
	s.nindir, s.inopb = i32(sbNindir), i32(sbInopb)
	s.cssize, s.cgsize = i32(sbCssize), i32(sbCgsize)
	s.ipg, s.fpg = i32(sbIpg), i32(sbFpg)
	s.clean = raw[sbClean]
	s.contigsumsize = i32(sbContigsumsize)
	s.maxsymlinklen = i32(sbMaxsymlinklen)
	s.wapblVersion, s.wapblLocation = raw[sbJournalVersion], raw[sbJournalLocation]
	for i := range s.wapblLocs {
		s.wapblLocs[i] = bo.Uint64(raw[sbJournallocs+8*i:])
	}
	if ufs2 {
		s.size, s.dsize, s.csaddr = i64(sbSize), i64(sbDsize), i64(sbCsaddr)
		s.time = i64(sbTime)
		s.flags = bo.Uint32(raw[sbFlags:])
		s.cstotal = csum{i64(sbCstotal), i64(sbCstotal + 8), i64(sbCstotal + 16), i64(sbCstotal + 24)}
	} else {
		// NetBSD's ffs_oldfscompat_read: the 32-bit fields are the
		// authority for UFS1.
		s.size, s.dsize, s.csaddr = i32(sbOldSize), i32(sbOldDsize), i32(sbOldCsaddr)
		s.time = int64(bo.Uint32(raw[sbOldTime:]))
		s.cstotal = decodeCsum(bo, raw[sbOldCstotal:])
		s.flags = uint32(raw[sbOldFlags])
		if raw[sbOldFlags]&fsFlagsUpdated != 0 {
			s.flags = bo.Uint32(raw[sbFlags:])
		}
		s.oldDirFormat = i32(sbOldInodefmt) < fsOKInodeFmt
		if i32(sbOldCgoffset) != 0 && i32(sbOldCgmask) != -1 {
			return nil, fmt.Errorf("UFS1 with rotated cylinder groups (fs_old_cgoffset %d) is not supported", i32(sbOldCgoffset))
		}
	}
	s.flags &^= fsInternal

	bad := func(format string, a ...any) (*superblock, error) {
		return nil, fmt.Errorf("corrupt superblock at %d: %s", loc, fmt.Sprintf(format, a...))
	}
	pow2 := func(v int64) bool { return v > 0 && v&(v-1) == 0 }
	switch {
	case !pow2(s.bsize) || s.bsize < minBSize || s.bsize > maxBSize:
		return bad("block size %d", s.bsize)
	case !pow2(s.fsize) || s.fsize < devBSize || s.fsize > s.bsize:
		return bad("fragment size %d", s.fsize)
	case s.frag != s.bsize/s.fsize || s.frag > maxFrag:
		return bad("%d fragments per block of %d/%d", s.frag, s.bsize, s.fsize)
	case s.sbsize < sbStructLen || s.sbsize > sbBlockSize:
		return bad("superblock size %d", s.sbsize)
	}
	s.bshift = uint(bits.TrailingZeros64(uint64(s.bsize)))
	s.fshift = uint(bits.TrailingZeros64(uint64(s.fsize)))
	s.fragshift = s.bshift - s.fshift
	ptr, dsz := int64(4), int64(dinode1Size)
	if ufs2 {
		ptr, dsz = 8, dinode2Size
	}
	blocksPerCg := s.fpg / max(s.frag, 1)
	switch {
	case s.nindir != s.bsize/ptr:
		return bad("%d pointers per block", s.nindir)
	case s.inopb != s.bsize/dsz:
		return bad("%d inodes per block", s.inopb)
	case s.ncg < 1 || s.ipg < s.inopb || s.ipg%s.inopb != 0 || s.ipg > 1<<28:
		return bad("%d groups of %d inodes", s.ncg, s.ipg)
	case uint64(s.ncg)*uint64(s.ipg) >= 1<<32:
		return bad("%d groups of %d inodes overflow inode numbers", s.ncg, s.ipg)
	case s.fpg < s.frag || s.fpg%s.frag != 0 || s.fpg > 8*s.bsize:
		return bad("%d fragments per group", s.fpg)
	case s.size <= 0 || s.size > int64(s.ncg)*s.fpg || s.size <= int64(s.ncg-1)*s.fpg:
		return bad("size %d fragments for %d groups of %d", s.size, s.ncg, s.fpg)
	case int64(s.ncg-1)*s.fpg+s.dblkno > s.size:
		return bad("last group of %d fragments cannot hold its metadata", s.size-int64(s.ncg-1)*s.fpg)
	case s.size > devSize>>s.fshift:
		return bad("size %d fragments of %d bytes exceeds the %d-byte device", s.size, s.fsize, devSize)
	case s.sblkno < 0 || s.cblkno <= s.sblkno || s.iblkno <= s.cblkno || s.dblkno <= s.iblkno:
		return bad("group layout sblkno %d cblkno %d iblkno %d dblkno %d", s.sblkno, s.cblkno, s.iblkno, s.dblkno)
	case s.cblkno%s.frag != 0 || s.iblkno%s.frag != 0 || s.dblkno%s.frag != 0:
		return bad("group layout not block aligned")
	case s.iblkno+(s.ipg/s.inopb)*s.frag > s.dblkno || s.dblkno > s.fpg:
		return bad("inode blocks %d..%d overlap data at %d", s.iblkno, s.iblkno+(s.ipg/s.inopb)*s.frag, s.dblkno)
	case s.cgsize < 168 || s.cgsize > s.bsize || (s.iblkno-s.cblkno)*s.fsize < s.cgsize:
		return bad("cylinder group size %d", s.cgsize)
	case s.cssize < int64(s.ncg)*csumLen || s.cssize > (int64(s.ncg)*csumLen+s.bsize-1)&^(s.bsize-1) ||
		s.csaddr <= 0 || s.csaddr+(s.cssize+s.fsize-1)>>s.fshift > s.size:
		return bad("summary area %d bytes at %d", s.cssize, s.csaddr)
	case s.contigsumsize < 0 || s.contigsumsize > maxContig:
		return bad("cluster summary size %d", s.contigsumsize)
	case s.minfree < 0 || s.minfree > 99:
		return bad("minfree %d", s.minfree)
	case blocksPerCg <= 0:
		return bad("no blocks per group")
	}
	if ufs2 {
		if s.maxsymlinklen < 0 || s.maxsymlinklen > 120 {
			return bad("max short symlink length %d", s.maxsymlinklen)
		}
	} else if s.maxsymlinklen < 0 || s.maxsymlinklen > 60 {
		return bad("max short symlink length %d", s.maxsymlinklen)
	}
	s.raw = raw[:s.sbsize:s.sbsize]
	return s, nil
}

// encode stores the fields this driver changes (clean flag, fmod, time,
// totals, flags) into s.raw and returns it. For UFS1 the 32-bit copies
// are kept in step with the 64-bit ones, as NetBSD's
// ffs_oldfscompat_write does.
func (s *superblock) encode() []byte {
	bo, raw := s.bo, s.raw
	raw[sbClean] = s.clean
	raw[sbFmod] = 0
	raw[sbRonly] = 0
	bo.PutUint64(raw[sbTime:], uint64(s.time))
	for i, v := range []int64{s.cstotal.ndir, s.cstotal.nbfree, s.cstotal.nifree, s.cstotal.nffree} {
		bo.PutUint64(raw[sbCstotal+8*i:], uint64(v))
	}
	if s.ufs2 {
		bo.PutUint32(raw[sbFlags:], s.flags)
	} else {
		bo.PutUint32(raw[sbOldTime:], uint32(s.time))
		encodeCsum(bo, raw[sbOldCstotal:], s.cstotal)
		if raw[sbOldFlags]&fsFlagsUpdated != 0 {
			bo.PutUint32(raw[sbFlags:], s.flags)
		} else {
			raw[sbOldFlags] = byte(s.flags)
		}
	}
	return raw
}

// Address arithmetic (fs.h macros). Fragment addresses ("daddr") count
// fs_fsize units from the start of the file system.

func (s *superblock) cgBase(c uint32) int64     { return int64(c) * s.fpg }
func (s *superblock) cgtod(c uint32) int64      { return s.cgBase(c) + s.cblkno }
func (s *superblock) cgimin(c uint32) int64     { return s.cgBase(c) + s.iblkno }
func (s *superblock) cgdmin(c uint32) int64     { return s.cgBase(c) + s.dblkno }
func (s *superblock) dtog(d int64) uint32       { return uint32(d / s.fpg) }
func (s *superblock) inoToCg(ino uint64) uint32 { return uint32(ino / uint64(s.ipg)) }
func (s *superblock) numInodes() uint64         { return uint64(s.ncg) * uint64(s.ipg) }
func (s *superblock) dinodeSize() int64 {
	if s.ufs2 {
		return dinode2Size
	}
	return dinode1Size
}

// inoLoc returns the fragment address of the block holding inode ino and
// the inode's byte offset in that block (ino_to_fsba, ino_to_fsbo).
func (s *superblock) inoLoc(ino uint64) (int64, int64) {
	c := s.inoToCg(ino)
	idx := int64(ino % uint64(s.ipg))
	return s.cgimin(c) + (idx/s.inopb)<<s.fragshift, (idx % s.inopb) * s.dinodeSize()
}

// blkSize is the size of logical block lbn of a file of size bytes
// (fs.h sblksize): a full block except for the last direct block, which
// holds only as many fragments as the size needs.
func (s *superblock) blkSize(size uint64, lbn int64) int64 {
	if lbn >= nDAddr || size >= uint64(lbn+1)<<s.bshift {
		return s.bsize
	}
	return s.fragRoundup(int64(size) & (s.bsize - 1))
}

func (s *superblock) fragRoundup(n int64) int64 { return (n + s.fsize - 1) &^ (s.fsize - 1) }

// maxFileSize is the largest size the block map can describe.
func (s *superblock) maxFileSize() int64 {
	n := uint64(s.nindir)
	blocks := uint64(nDAddr) + n + n*n + n*n*n
	lim := uint64(1)<<63 - 1
	if blocks > lim>>s.bshift {
		return int64(lim)
	}
	return int64(blocks << s.bshift)
}

// ---- Cylinder groups (fs.h struct cg) ----

const (
	cgMagicOff      = 4
	cgCgx           = 12
	cgNdblk         = 20
	cgCs            = 24
	cgFrsum         = 52
	cgIusedoff      = 92
	cgFreeoff       = 96
	cgClustersumoff = 104
	cgClusteroff    = 108
	cgNclusterblks  = 112
	cgInitediblk    = 120
	cgTime          = 136
	cgOldTime       = 8
)

// cgView is a validated view of a cylinder group block. Its methods read
// and write the block in place; the caller owns the buffer.
type cgView struct {
	b       []byte
	bo      binary.ByteOrder
	ndblk   int64 // fragments in this group
	ipg     int64
	iused   []byte // inode bitmap, 1 = in use
	free    []byte // fragment bitmap, 1 = free
	csumOff int64  // cluster summary: int32 counts, index 1..contigsumsize
	clOff   int64  // cluster bitmap, 1 = free block
	nclust  int64
}

// decodeCg validates the cylinder group c in b against the superblock.
func (s *superblock) decodeCg(b []byte, c uint32) (*cgView, error) {
	bo := s.bo
	if int64(len(b)) < s.cgsize {
		return nil, fmt.Errorf("cylinder group %d: short block", c)
	}
	if bo.Uint32(b[cgMagicOff:]) != cgMagic {
		return nil, fmt.Errorf("cylinder group %d: bad magic %#x", c, bo.Uint32(b[cgMagicOff:]))
	}
	if bo.Uint32(b[cgCgx:]) != c {
		return nil, fmt.Errorf("cylinder group %d: records itself as group %d", c, bo.Uint32(b[cgCgx:]))
	}
	v := &cgView{b: b[:s.cgsize], bo: bo, ipg: s.ipg}
	v.ndblk = int64(int32(bo.Uint32(b[cgNdblk:])))
	want := min(s.fpg, s.size-s.cgBase(c))
	if v.ndblk != want {
		return nil, fmt.Errorf("cylinder group %d: %d fragments, want %d", c, v.ndblk, want)
	}
	in := func(off, n int64) bool { return off >= 168 && n >= 0 && off+n <= s.cgsize }
	iu, fr := int64(int32(bo.Uint32(b[cgIusedoff:]))), int64(int32(bo.Uint32(b[cgFreeoff:])))
	if !in(iu, (s.ipg+7)/8) || !in(fr, (s.fpg+7)/8) {
		return nil, fmt.Errorf("cylinder group %d: maps outside the block", c)
	}
	v.iused = v.b[iu : iu+(s.ipg+7)/8]
	v.free = v.b[fr : fr+(s.fpg+7)/8]
	if s.contigsumsize > 0 {
		v.csumOff = int64(int32(bo.Uint32(b[cgClustersumoff:])))
		v.clOff = int64(int32(bo.Uint32(b[cgClusteroff:])))
		v.nclust = int64(int32(bo.Uint32(b[cgNclusterblks:])))
		if v.nclust != v.ndblk/s.frag || !in(v.csumOff, 4*(s.contigsumsize+1)) || v.csumOff%4 != 0 ||
			!in(v.clOff, (v.nclust+7)/8) {
			return nil, fmt.Errorf("cylinder group %d: bad cluster maps", c)
		}
	}
	if s.ufs2 {
		ini := int64(int32(bo.Uint32(b[cgInitediblk:])))
		if ini < 0 || ini > s.ipg {
			return nil, fmt.Errorf("cylinder group %d: %d initialized inodes", c, ini)
		}
	}
	return v, nil
}

func (v *cgView) cs() csum          { return decodeCsum(v.bo, v.b[cgCs:]) }
func (v *cgView) setCs(c csum)      { encodeCsum(v.bo, v.b[cgCs:], c) }
func (v *cgView) frsum(i int) int32 { return int32(v.bo.Uint32(v.b[cgFrsum+4*i:])) }
func (v *cgView) addFrsum(i int, d int) {
	v.bo.PutUint32(v.b[cgFrsum+4*i:], uint32(v.frsum(i)+int32(d)))
}
func (v *cgView) inodeUsed(i int64) bool {
	return v.iused[i>>3]&(1<<(i&7)) != 0
}
func (v *cgView) setInodeUsed(i int64, used bool) {
	if used {
		v.iused[i>>3] |= 1 << (i & 7)
	} else {
		v.iused[i>>3] &^= 1 << (i & 7)
	}
}
func (v *cgView) fragFree(i int64) bool {
	return i < v.ndblk && v.free[i>>3]&(1<<(i&7)) != 0
}
func (v *cgView) setFragFree(i int64, free bool) {
	if free {
		v.free[i>>3] |= 1 << (i & 7)
	} else {
		v.free[i>>3] &^= 1 << (i & 7)
	}
}
func (v *cgView) clusterFree(i int64) bool {
	return v.clOff != 0 && i < v.nclust && v.b[v.clOff+i>>3]&(1<<(i&7)) != 0
}
func (v *cgView) setClusterFree(i int64, free bool) {
	if free {
		v.b[v.clOff+i>>3] |= 1 << (i & 7)
	} else {
		v.b[v.clOff+i>>3] &^= 1 << (i & 7)
	}
}
func (v *cgView) addClusterSum(i int64, d int) {
	off := v.csumOff + 4*i
	v.bo.PutUint32(v.b[off:], uint32(int32(v.bo.Uint32(v.b[off:]))+int32(d)))
}
func (v *cgView) initedIblk() int64 { return int64(int32(v.bo.Uint32(v.b[cgInitediblk:]))) }
func (v *cgView) setInitedIblk(n int64) {
	v.bo.PutUint32(v.b[cgInitediblk:], uint32(n))
}
func (v *cgView) setTime(sec int64, ufs2 bool) {
	if ufs2 {
		v.bo.PutUint64(v.b[cgTime:], uint64(sec))
	} else {
		v.bo.PutUint32(v.b[cgOldTime:], uint32(sec))
	}
}

// blockAcct is what one block of a group contributes to the group's
// summaries (fs.h, ffs_fragacct): a wholly free block counts in nbfree
// and the cluster map; a partly free one counts its free fragments in
// nffree and each maximal run of free fragments in cg_frsum.
type blockAcct struct {
	whole  bool
	nffree int
	runs   [maxFrag]int
}

// acct computes the contribution of block bno (a block index in the
// group) with frag fragments per block.
func (v *cgView) acct(bno, frag int64) blockAcct {
	var a blockAcct
	base := bno * frag
	n, run := 0, 0
	for i := int64(0); i < frag; i++ {
		if v.fragFree(base + i) {
			n++
			run++
			continue
		}
		if run > 0 {
			a.runs[run]++
			run = 0
		}
	}
	if n == int(frag) {
		a.whole = true
		return a
	}
	if run > 0 {
		a.runs[run]++
	}
	a.nffree = n
	return a
}

// ---- Inodes (dinode.h) ----

// Field offsets of struct ufs1_dinode and struct ufs2_dinode.
const (
	diMode  = 0
	diNlink = 2

	d1Size      = 8
	d1Atime     = 16
	d1Atimensec = 20
	d1Mtime     = 24
	d1Mtimensec = 28
	d1Ctime     = 32
	d1Ctimensec = 36
	d1Db        = 40
	d1Ib        = 88
	d1Flags     = 100
	d1Blocks    = 104
	d1Gen       = 108
	d1UID       = 112
	d1GID       = 116

	d2UID       = 4
	d2GID       = 8
	d2Blksize   = 12
	d2Size      = 16
	d2Blocks    = 24
	d2Atime     = 32
	d2Mtime     = 40
	d2Ctime     = 48
	d2Birthtime = 56
	d2Mtimensec = 64
	d2Atimensec = 68
	d2Ctimensec = 72
	d2Birthnsec = 76
	d2Gen       = 80
	d2Flags     = 88
	d2Extsize   = 92
	d2Extb      = 96
	d2Db        = 112
	d2Ib        = 208
)

// BSD file flags (sys/stat.h), reported in vnodeops.Attr.Flags as stored.
const (
	ufImmutable = 0x00000002
	ufAppend    = 0x00000004
	sfImmutable = 0x00020000
	sfAppend    = 0x00040000

	flagsImmutable = ufImmutable | sfImmutable
	flagsAppend    = ufAppend | sfAppend
)

// dinode is one on-disk inode, UFS1 or UFS2, in its own byte order.
// Its accessors read and write b in place.
type dinode struct {
	b    []byte
	bo   binary.ByteOrder
	ufs2 bool
}

// A time stamp: seconds and nanoseconds.
type tspec struct{ sec, nsec int64 }

func (t tspec) nanos() int64 { return t.sec*1e9 + t.nsec }

func tspecOf(ns int64) tspec {
	s, n := ns/1e9, ns%1e9
	if n < 0 {
		s, n = s-1, n+1e9
	}
	return tspec{s, n}
}

func (d dinode) u16(o int) uint16      { return d.bo.Uint16(d.b[o:]) }
func (d dinode) u32(o int) uint32      { return d.bo.Uint32(d.b[o:]) }
func (d dinode) u64(o int) uint64      { return d.bo.Uint64(d.b[o:]) }
func (d dinode) put32(o int, v uint32) { d.bo.PutUint32(d.b[o:], v) }
func (d dinode) put64(o int, v uint64) { d.bo.PutUint64(d.b[o:], v) }

func (d dinode) mode() uint16      { return d.u16(diMode) }
func (d dinode) setMode(m uint16)  { d.bo.PutUint16(d.b[diMode:], m) }
func (d dinode) nlink() uint16     { return d.u16(diNlink) }
func (d dinode) setNlink(n uint16) { d.bo.PutUint16(d.b[diNlink:], n) }
func (d dinode) pick(o1, o2 int) int {
	if d.ufs2 {
		return o2
	}
	return o1
}
func (d dinode) size() uint64      { return d.u64(d.pick(d1Size, d2Size)) }
func (d dinode) setSize(n uint64)  { d.put64(d.pick(d1Size, d2Size), n) }
func (d dinode) uid() uint32       { return d.u32(d.pick(d1UID, d2UID)) }
func (d dinode) setUID(u uint32)   { d.put32(d.pick(d1UID, d2UID), u) }
func (d dinode) gid() uint32       { return d.u32(d.pick(d1GID, d2GID)) }
func (d dinode) setGID(g uint32)   { d.put32(d.pick(d1GID, d2GID), g) }
func (d dinode) flags() uint32     { return d.u32(d.pick(d1Flags, d2Flags)) }
func (d dinode) setFlags(f uint32) { d.put32(d.pick(d1Flags, d2Flags), f) }
func (d dinode) gen() uint32       { return d.u32(d.pick(d1Gen, d2Gen)) }
func (d dinode) setGen(g uint32)   { d.put32(d.pick(d1Gen, d2Gen), g) }

// extSize is UFS2's di_extsize: the bytes of the extended attribute
// area; UFS1 has none.
func (d dinode) extSize() uint32 {
	if d.ufs2 {
		return d.u32(d2Extsize)
	}
	return 0
}

// blocks is di_blocks: 512-byte units held, indirect blocks included.
func (d dinode) blocks() uint64 {
	if d.ufs2 {
		return d.u64(d2Blocks)
	}
	return uint64(d.u32(d1Blocks))
}

func (d dinode) setBlocks(n uint64) {
	if d.ufs2 {
		d.put64(d2Blocks, n)
	} else {
		d.put32(d1Blocks, uint32(n))
	}
}

func (d dinode) ptrOff(i int) int {
	if d.ufs2 {
		return d2Db + 8*i
	}
	return d1Db + 4*i
}

// addr returns pointer i of the inode: db[0..11] then ib[0..2] (the
// arrays are adjacent in both formats).
func (d dinode) addr(i int) int64 {
	if d.ufs2 {
		return int64(d.u64(d.ptrOff(i)))
	}
	return int64(int32(d.u32(d.ptrOff(i))))
}

func (d dinode) setAddr(i int, a int64) {
	if d.ufs2 {
		d.put64(d.ptrOff(i), uint64(a))
	} else {
		d.put32(d.ptrOff(i), uint32(a))
	}
}

// extAddr returns di_extb[i] of a UFS2 inode.
func (d dinode) extAddr(i int) int64 { return int64(d.u64(d2Extb + 8*i)) }

// shortLink is the space for a symbolic link target stored in the inode:
// the block pointers (dinode.h: di_shortlink).
func (d dinode) shortLink() []byte {
	return d.b[d.ptrOff(0) : d.ptrOff(0)+(nDAddr+nIAddr)*d.pick(4, 8)]
}

// rdev is a device node's number, kept in di_db[0] (dinode.h di_rdev):
// 32 bits in UFS1, 64 in UFS2.
func (d dinode) rdev() uint64 {
	if d.ufs2 {
		return d.u64(d.ptrOff(0))
	}
	return uint64(d.u32(d.ptrOff(0)))
}

func (d dinode) setRdev(r uint64) {
	if d.ufs2 {
		d.put64(d.ptrOff(0), r)
	} else {
		d.put32(d.ptrOff(0), uint32(r))
	}
}

func (d dinode) atime() tspec {
	if d.ufs2 {
		return tspec{int64(d.u64(d2Atime)), int64(d.u32(d2Atimensec))}
	}
	return tspec{int64(int32(d.u32(d1Atime))), int64(d.u32(d1Atimensec))}
}
func (d dinode) mtime() tspec {
	if d.ufs2 {
		return tspec{int64(d.u64(d2Mtime)), int64(d.u32(d2Mtimensec))}
	}
	return tspec{int64(int32(d.u32(d1Mtime))), int64(d.u32(d1Mtimensec))}
}
func (d dinode) ctime() tspec {
	if d.ufs2 {
		return tspec{int64(d.u64(d2Ctime)), int64(d.u32(d2Ctimensec))}
	}
	return tspec{int64(int32(d.u32(d1Ctime))), int64(d.u32(d1Ctimensec))}
}

// birthtime is UFS2's creation time; UFS1 keeps none.
func (d dinode) birthtime() tspec {
	if d.ufs2 {
		return tspec{int64(d.u64(d2Birthtime)), int64(d.u32(d2Birthnsec))}
	}
	return tspec{}
}

func (d dinode) setTime(o1s, o1n, o2s, o2n int, t tspec) {
	if d.ufs2 {
		d.put64(o2s, uint64(t.sec))
		d.put32(o2n, uint32(t.nsec))
	} else {
		d.put32(o1s, uint32(int32(t.sec)))
		d.put32(o1n, uint32(t.nsec))
	}
}
func (d dinode) setAtime(t tspec) { d.setTime(d1Atime, d1Atimensec, d2Atime, d2Atimensec, t) }
func (d dinode) setMtime(t tspec) { d.setTime(d1Mtime, d1Mtimensec, d2Mtime, d2Mtimensec, t) }
func (d dinode) setCtime(t tspec) { d.setTime(d1Ctime, d1Ctimensec, d2Ctime, d2Ctimensec, t) }
func (d dinode) setBirthtime(t tspec) {
	if d.ufs2 {
		d.put64(d2Birthtime, uint64(t.sec))
		d.put32(d2Birthnsec, uint32(t.nsec))
	}
}

// setBlksize sets UFS2's di_blksize (the size of the last block, kept for
// information).
func (d dinode) setBlksize(n uint32) {
	if d.ufs2 {
		d.put32(d2Blksize, n)
	}
}

// ---- Directories (dir.h) ----

// A directory is a sequence of DIRBLKSIZ chunks; an entry never crosses
// a chunk boundary. struct direct: d_ino (4), d_reclen (2), d_type (1),
// d_namlen (1), the name NUL-terminated and padded to 4 bytes. In the
// old format (4.2BSD, UFS1 before FS_44INODEFMT) d_type and d_namlen
// form a 16-bit d_namlen.
const direntHdr = 8

// direntSize is DIRECTSIZ: the space an entry with a name of n bytes
// needs.
func direntSize(n int) int { return (direntHdr + n + 1 + 3) &^ 3 }

// dirent is one decoded directory entry at offset off of its chunk.
type dirent struct {
	ino    uint32
	reclen int
	typ    uint8
	name   []byte // aliases the block
}

// BSD d_type values (dir.h DT_*) are Linux's: vnodeops.DT_* apply.

// decodeDirent decodes the entry at chunk[off:], validating it against
// the chunk: reclen a multiple of 4 that fits, a name that fits its
// record and holds neither NUL nor '/'. An entry with d_ino 0 is free
// space; its name is not checked.
func decodeDirent(bo binary.ByteOrder, oldFmt bool, chunk []byte, off int) (dirent, error) {
	if off+direntHdr > len(chunk) {
		return dirent{}, fmt.Errorf("entry at %d runs past its chunk", off)
	}
	e := dirent{ino: bo.Uint32(chunk[off:]), reclen: int(bo.Uint16(chunk[off+4:]))}
	var nlen int
	if oldFmt {
		nlen = int(bo.Uint16(chunk[off+6:]))
	} else {
		e.typ, nlen = chunk[off+6], int(chunk[off+7])
	}
	if e.reclen < direntHdr || e.reclen%4 != 0 || off+e.reclen > len(chunk) {
		return dirent{}, fmt.Errorf("entry at %d: record length %d", off, e.reclen)
	}
	if e.ino == 0 {
		return e, nil
	}
	if nlen == 0 || nlen > maxNameLen || direntSize(nlen) > e.reclen {
		return dirent{}, fmt.Errorf("entry at %d: name length %d in a record of %d", off, nlen, e.reclen)
	}
	e.name = chunk[off+direntHdr : off+direntHdr+nlen]
	for _, c := range e.name {
		if c == 0 || c == '/' {
			return dirent{}, fmt.Errorf("entry at %d: name holds NUL or '/'", off)
		}
	}
	return e, nil
}

// encodeDirent writes an entry at chunk[off:] with the given record
// length, NUL-padding its name.
func encodeDirent(bo binary.ByteOrder, oldFmt bool, chunk []byte, off int, ino uint32, reclen int, typ uint8, name string) {
	bo.PutUint32(chunk[off:], ino)
	bo.PutUint16(chunk[off+4:], uint16(reclen))
	if oldFmt {
		bo.PutUint16(chunk[off+6:], uint16(len(name)))
	} else {
		chunk[off+6] = typ
		chunk[off+7] = byte(len(name))
	}
	n := copy(chunk[off+direntHdr:], name)
	end := off + direntSize(len(name))
	clear(chunk[off+direntHdr+n : end])
}

// ---- UFS2 extended attributes (FreeBSD extattr.h struct extattr) ----

// An attribute record: ea_length (4, the whole record, a multiple of 8),
// ea_namespace (1), ea_contentpadlen (1), ea_namelength (1), the name,
// padding to 8, the content, ea_contentpadlen bytes of padding.
const (
	eaNamespaceUser   = 1
	eaNamespaceSystem = 2
)

// extattr is one decoded attribute.
type extattr struct {
	namespace byte
	name      string
	value     []byte
}

// decodeExtattrs decodes the extended attribute area of a UFS2 inode.
func decodeExtattrs(bo binary.ByteOrder, area []byte) ([]extattr, error) {
	var out []extattr
	for off := 0; off+7 <= len(area); {
		l := int(bo.Uint32(area[off:]))
		if l == 0 {
			break // the rest is unused
		}
		if l < 8 || l%8 != 0 || off+l > len(area) {
			return nil, fmt.Errorf("extended attribute at %d: length %d", off, l)
		}
		ns, pad, nlen := area[off+4], int(area[off+5]), int(area[off+6])
		hdr := (7 + nlen + 7) &^ 7
		if nlen == 0 || hdr+pad > l {
			return nil, fmt.Errorf("extended attribute at %d: name length %d, padding %d in %d bytes", off, nlen, pad, l)
		}
		out = append(out, extattr{
			namespace: ns,
			name:      string(area[off+7 : off+7+nlen]),
			value:     area[off+hdr : off+l-pad],
		})
		off += l
	}
	return out, nil
}
