package ext2fs

// On-disk layout of ext2 and its descendants ext3 and ext4.
//
// Sources for every offset and constant in this file (facts only, no code):
//   - Dave Poirier, "The Second Extended File System: Internal Layout"
//     (nongnu.org/ext2-doc): superblock, block group descriptor, inode,
//     linked directory entries, indirect block maps, revision 0 versus 1.
//   - The Linux kernel's Documentation/filesystems/ext4/ (super.rst,
//     group_descr.rst, inodes.rst, ifork.rst, directory.rst,
//     checksums.rst, blockmap.rst, inlinedata.rst, attributes.rst): the
//     64-bit and checksum fields, extent trees, the directory leaf tail.

import (
	"encoding/binary"
	"hash/crc32"
)

var le = binary.LittleEndian

// Superblock: 1024 bytes at byte 1024 of the device (ext4 super.rst).
const (
	sbOffset = 1024
	sbSize   = 1024
	sbMagic  = 0xEF53

	sbInodesCount     = 0x00
	sbBlocksCountLo   = 0x04
	sbRBlocksCountLo  = 0x08
	sbFreeBlocksLo    = 0x0C
	sbFreeInodes      = 0x10
	sbFirstDataBlock  = 0x14
	sbLogBlockSize    = 0x18
	sbLogClusterSize  = 0x1C
	sbBlocksPerGroup  = 0x20
	sbInodesPerGroup  = 0x28
	sbMtime           = 0x2C
	sbWtime           = 0x30
	sbMntCount        = 0x34
	sbMagicOff        = 0x38
	sbState           = 0x3A
	sbRevLevel        = 0x4C
	sbDefResuid       = 0x50
	sbDefResgid       = 0x52
	sbFirstIno        = 0x54 // rev 1 only
	sbInodeSize       = 0x58
	sbFeatureCompat   = 0x5C
	sbFeatureIncompat = 0x60
	sbFeatureRoCompat = 0x64
	sbUUID            = 0x68
	sbJournalInum     = 0xE0
	sbLastOrphan      = 0xE8
	sbDescSize        = 0xFE
	sbFirstMetaBg     = 0x104
	sbBlocksCountHi   = 0x150
	sbRBlocksCountHi  = 0x154
	sbFreeBlocksHi    = 0x158
	sbMinExtraIsize   = 0x15C
	sbChecksumType    = 0x175
	sbChecksumSeed    = 0x270
	sbChecksum        = 0x3FC
)

// s_state bits.
const (
	stateValid  = 1 // cleanly unmounted
	stateErrors = 2 // errors detected
)

// Feature bits (ext4 super.rst, "s_feature_compat" and following).
const (
	compatDirPrealloc  = 0x1
	compatImagicInodes = 0x2
	compatHasJournal   = 0x4
	compatExtAttr      = 0x8
	compatResizeInode  = 0x10
	compatDirIndex     = 0x20
	compatLazyBG       = 0x40
	compatExcludeBmap  = 0x100
	compatSparseSuper2 = 0x200
	compatFastCommit   = 0x400
	compatStableInodes = 0x800
	compatOrphanFile   = 0x1000

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirdata     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargedir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatBtreeDir     = 0x4
	roCompatHugeFile     = 0x8
	roCompatGdtCsum      = 0x10
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatHasSnapshot  = 0x80
	roCompatQuota        = 0x100
	roCompatBigalloc     = 0x200
	roCompatMetadataCsum = 0x400
	roCompatReplica      = 0x800
	roCompatReadonly     = 0x1000
	roCompatProject      = 0x2000
	roCompatSharedBlocks = 0x4000
	roCompatVerity       = 0x8000
	roCompatOrphanPres   = 0x10000
)

// Feature policy. readIncompat lists the incompatible features this
// driver understands well enough to read; an image with any other
// incompatible feature is refused. writeIncompat, writeRoCompat and
// writeCompat list what it also keeps correct when writing; anything else
// refuses a read-write mount.
const (
	readIncompat = incompatFiletype | incompatRecover | incompatMetaBG |
		incompatExtents | incompat64bit | incompatMMP | incompatFlexBG |
		incompatEAInode | incompatCsumSeed | incompatLargedir |
		incompatInlineData | incompatCasefold

	writeIncompat = incompatFiletype | incompatMetaBG
	writeRoCompat = roCompatSparseSuper | roCompatLargeFile
	writeCompat   = compatDirPrealloc | compatImagicInodes | compatHasJournal |
		compatExtAttr | compatResizeInode | compatDirIndex | compatLazyBG
)

var compatNames = map[uint32]string{
	compatDirPrealloc: "dir_prealloc", compatImagicInodes: "imagic_inodes",
	compatHasJournal: "has_journal", compatExtAttr: "ext_attr",
	compatResizeInode: "resize_inode", compatDirIndex: "dir_index",
	compatLazyBG: "lazy_bg", compatExcludeBmap: "exclude_bitmap",
	compatSparseSuper2: "sparse_super2", compatFastCommit: "fast_commit",
	compatStableInodes: "stable_inodes", compatOrphanFile: "orphan_file",
}

var incompatNames = map[uint32]string{
	incompatCompression: "compression", incompatFiletype: "filetype",
	incompatRecover: "needs_recovery", incompatJournalDev: "journal_dev",
	incompatMetaBG: "meta_bg", incompatExtents: "extent",
	incompat64bit: "64bit", incompatMMP: "mmp", incompatFlexBG: "flex_bg",
	incompatEAInode: "ea_inode", incompatDirdata: "dirdata",
	incompatCsumSeed: "metadata_csum_seed", incompatLargedir: "large_dir",
	incompatInlineData: "inline_data", incompatEncrypt: "encrypt",
	incompatCasefold: "casefold",
}

var roCompatNames = map[uint32]string{
	roCompatSparseSuper: "sparse_super", roCompatLargeFile: "large_file",
	roCompatBtreeDir: "btree_dir", roCompatHugeFile: "huge_file",
	roCompatGdtCsum: "uninit_bg", roCompatDirNlink: "dir_nlink",
	roCompatExtraIsize: "extra_isize", roCompatHasSnapshot: "snapshot",
	roCompatQuota: "quota", roCompatBigalloc: "bigalloc",
	roCompatMetadataCsum: "metadata_csum", roCompatReplica: "replica",
	roCompatReadonly: "read-only", roCompatProject: "project",
	roCompatSharedBlocks: "shared_blocks", roCompatVerity: "verity",
	roCompatOrphanPres: "orphan_present",
}

// featureList names the bits of set using names, unknown ones as hex.
func featureList(set uint32, names map[uint32]string) []string {
	var out []string
	for bit := uint32(1); bit != 0; bit <<= 1 {
		if set&bit == 0 {
			continue
		}
		if n, ok := names[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, "0x"+hex32(bit))
		}
	}
	return out
}

func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}

// Block group descriptor (ext4 group_descr.rst): 32 bytes, or s_desc_size
// (at least 64) with the 64bit feature.
const (
	gdBlockBitmapLo  = 0x00
	gdInodeBitmapLo  = 0x04
	gdInodeTableLo   = 0x08
	gdFreeBlocksLo   = 0x0C
	gdFreeInodesLo   = 0x0E
	gdUsedDirsLo     = 0x10
	gdFlags          = 0x12
	gdItableUnusedLo = 0x1C
	gdChecksum       = 0x1E
	gdBlockBitmapHi  = 0x20
	gdInodeBitmapHi  = 0x24
	gdInodeTableHi   = 0x28
	gdFreeBlocksHi   = 0x2C
	gdFreeInodesHi   = 0x2E
	gdUsedDirsHi     = 0x30
	gdItableUnusedHi = 0x32
)

// Inode (ext4 inodes.rst; Poirier section "Inode Table").
const (
	inMode        = 0x00
	inUIDLo       = 0x02
	inSizeLo      = 0x04
	inAtime       = 0x08
	inCtime       = 0x0C
	inMtime       = 0x10
	inDtime       = 0x14
	inGIDLo       = 0x18
	inLinks       = 0x1A
	inBlocksLo    = 0x1C
	inFlags       = 0x20
	inBlock       = 0x28 // 15 x u32, 60 bytes
	inGeneration  = 0x64
	inFileACLLo   = 0x68
	inSizeHi      = 0x6C // i_dir_acl in revision 0 directories
	inBlocksHi    = 0x74 // osd2, Linux
	inFileACLHi   = 0x76
	inUIDHi       = 0x78
	inGIDHi       = 0x7A
	inChecksumLo  = 0x7C
	inExtraIsize  = 0x80
	inChecksumHi  = 0x82
	inCtimeExtra  = 0x84
	inMtimeExtra  = 0x88
	inAtimeExtra  = 0x8C
	inCrtime      = 0x90
	inCrtimeExtra = 0x94

	goodOldInodeSize = 128
	goodOldFirstIno  = 11
	rootIno          = 2
	resizeIno        = 7
	journalIno       = 8

	nDirBlocks = 12 // direct pointers in i_block
	indBlock   = 12
	dindBlock  = 13
	tindBlock  = 14
)

// i_flags bits.
const (
	flagSecrm      = 0x1
	flagImmutable  = 0x10
	flagAppend     = 0x20
	flagIndex      = 0x1000     // hashed-indexed directory (htree)
	flagHugeFile   = 0x40000    // i_blocks counts file system blocks
	flagExtents    = 0x80000    // i_block holds an extent tree
	flagEAInode    = 0x200000   // inode holds a large xattr value
	flagInlineData = 0x10000000 // data lives in i_block and system.data
	// userFlags are the chattr-settable flags Setattr may change.
	userFlags = 0x000000FF
)

// Directory entries (Poirier "Linked Directories"; ext4 directory.rst).
const (
	direntHeader = 8 // inode u32, rec_len u16, name_len u8, file_type u8
	// The checksum tail that closes a leaf block under metadata_csum: a
	// fake entry with inode 0, rec_len 12, name_len 0, file_type 0xDE and a
	// crc32c.
	dirTailSize = 12
	dirTailFT   = 0xDE

	ftUnknown = 0
	ftReg     = 1
	ftDir     = 2
	ftChr     = 3
	ftBlk     = 4
	ftFifo    = 5
	ftSock    = 6
	ftSymlink = 7
)

// Extent tree (ext4 ifork.rst "Extent Tree").
const (
	extMagic    = 0xF30A
	extHdrSize  = 12
	extEntSize  = 12
	extMaxDepth = 5
	extInitMax  = 32768 // ee_len above this marks an uninitialised extent
)

// Extended attributes (ext4 attributes.rst).
const (
	xattrMagic      = 0xEA020000
	xattrBlkRefOff  = 4 // h_refcount in an xattr block
	xattrIndexSys   = 7 // name index of "system."
	xattrEntryFixed = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cRaw is the crc32c register update that the ext4 checksums use
// (checksums.rst): seeded with the given value and without the final
// inversion that the standard crc32c applies. hash/crc32 inverts on entry
// and exit, so both inversions are undone here.
func crc32cRaw(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// ft2dt maps a directory entry's file_type to a DT_* value.
func ft2dt(ft uint8) uint8 {
	switch ft {
	case ftReg:
		return 8
	case ftDir:
		return 4
	case ftChr:
		return 2
	case ftBlk:
		return 6
	case ftFifo:
		return 1
	case ftSock:
		return 12
	case ftSymlink:
		return 10
	}
	return 0
}

// modeToFT maps S_IFMT bits to a directory entry's file_type.
func modeToFT(mode uint32) uint8 {
	switch mode & 0o170000 {
	case 0o100000:
		return ftReg
	case 0o040000:
		return ftDir
	case 0o020000:
		return ftChr
	case 0o060000:
		return ftBlk
	case 0o010000:
		return ftFifo
	case 0o140000:
		return ftSock
	case 0o120000:
		return ftSymlink
	}
	return ftUnknown
}

// Extended timestamps (ext4 inodes.rst "Inode Timestamps"): the extra
// word holds the nanoseconds in its upper 30 bits and two epoch bits that
// extend the signed 32-bit seconds.
func decodeTime(sec uint32, extra uint32, hasExtra bool) int64 {
	s := int64(int32(sec))
	if !hasExtra {
		return s * 1e9
	}
	s += int64(extra&3) << 32
	ns := int64(extra >> 2)
	if ns > 999999999 {
		ns = 999999999
	}
	return s*1e9 + ns
}

// encodeTime splits nanoseconds since the epoch into the seconds word and
// the extra word.
func encodeTime(t int64) (sec uint32, extra uint32) {
	s := t / 1e9
	ns := t % 1e9
	if ns < 0 {
		ns += 1e9
		s--
	}
	epoch := (s - int64(int32(s))) >> 32
	return uint32(int32(s)), uint32(ns)<<2 | uint32(epoch)&3
}

// Linux device numbers (the kernel's dev_t encoding, as in glibc's
// gnu_dev_major/minor).
func devMajor(d uint64) uint32 { return uint32((d>>8)&0xfff | (d>>32)&^uint64(0xfff)) }
func devMinor(d uint64) uint32 { return uint32(d&0xff | (d>>12)&^uint64(0xff)) }
func mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 |
		uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}
