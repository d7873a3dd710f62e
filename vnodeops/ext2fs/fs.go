// Package ext2fs is the ext2 file system driver: read-write for ext2 (and
// ext3 with a clean journal, which it leaves alone), read-only for ext4
// (extents, 64bit, flex_bg, metadata_csum, inline data).
//
// It registers itself as "ext2fs" with package vnodeops. Layout facts come
// from Dave Poirier's "The Second Extended File System" and the Linux
// kernel's Documentation/filesystems/ext4/; see layout.go.
//
// # Locking
//
// One sync.RWMutex per mounted file system (fsys.mu) guards every piece of
// on-disk state and every vnode's in-memory inode: operations that only
// read hold it shared, operations that write hold it exclusively. Buffers
// of the block cache are modified only with the lock held exclusively,
// and Sync holds it exclusively too, since the cache reads dirty buffers
// while writing them. Readdir calls its callback without the lock.
//
// # Reserved blocks
//
// The driver gets no credential on Write, so it applies the root
// reservation (s_r_blocks_count) by the owner of the file that grows: an
// allocation that would dip into the reserved blocks succeeds only for a
// file owned by uid 0, s_def_resuid or group s_def_resgid, and otherwise
// fails with ENOSPC.
//
// # What is not written
//
// Access times are not updated on read (as with noatime). Extended
// attributes are read and written in the inode body and in attribute
// blocks, shared blocks included (xattr.go, xattr_write.go); values kept
// in inodes of their own (ea_inode) are not. An htree (dir_index)
// directory that is modified has its index flag cleared, as old kernels
// did; e2fsck accepts the result.
package ext2fs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

func init() {
	vnodeops.Register(vnodeops.Driver{
		Name:        "ext2fs",
		NeedsDevice: true,
		Probe:       Probe,
		Mount:       Mount,
	})
}

// Probe reports whether r holds an ext2/3/4 superblock.
func Probe(r io.ReaderAt, size int64) bool {
	if size < sbOffset+sbSize {
		return false
	}
	var sb [sbSize]byte
	if n, err := r.ReadAt(sb[:], sbOffset); n != sbSize && err != nil {
		return false
	}
	return le.Uint16(sb[sbMagicOff:]) == sbMagic &&
		le.Uint32(sb[sbLogBlockSize:]) <= 6 &&
		le.Uint32(sb[sbRevLevel:]) <= 1 &&
		le.Uint32(sb[sbBlocksCountLo:]) != 0
}

// Options the driver accepts in MountArgs.Options.
const (
	// optROFallback: "true" makes a read-write mount of an image with a
	// feature the driver cannot write fall back to read-only (logging why)
	// instead of failing.
	optROFallback = "ro_fallback"
)

type group struct {
	blockBitmap, inodeBitmap, inodeTable uint64
	freeBlocks, freeInodes, usedDirs     uint32
	flags                                uint16
	descBlock                            uint64 // block holding the descriptor
	descOff                              int    // its offset in that block
}

// fsys is a mounted ext2/3/4 file system; it implements vnodeops.FS.
type fsys struct {
	mu    sync.RWMutex
	name  string
	dev   blkdev.Device
	cache *blkdev.Cache
	log   *slog.Logger
	ro    bool

	bs             int
	bsBits         uint
	sbRaw          []byte // the primary superblock as last written
	inodesCount    uint32
	blocksCount    uint64
	rBlocks        uint64
	freeBlocks     uint64
	freeInodes     uint32
	firstDataBlock uint32
	bpg, ipg       uint32
	rev            uint32
	firstIno       uint32
	inodeSize      int
	wantExtra      int // i_extra_isize given to new inodes
	compat         uint32
	incompat       uint32
	roCompat       uint32
	descSize       int
	ngroups        uint32
	groups         []group
	csum           bool
	csumSeed       uint32
	filetype       bool
	largeFile      bool
	hugeFile       bool
	resuid, resgid uint32
	mountState     uint16 // s_state at mount, restored at unmount
	sbDirty        bool
	maxFileSize    int64
	now            func() time.Time // MountArgs.Now
	unmounted      bool

	idxMu sync.Mutex
	idx   map[uint64]map[string]dirIdxEnt // see dirIndexMin

	liveMu sync.Mutex
	live   map[uint64]*vnode // vnodes handed out by VGet and not reclaimed
}

var errCorrupt = syscall.EIO

// corrupt logs one line naming the mount and the inode (0: none) and
// returns EIO.
func (fs *fsys) corrupt(ino uint64, format string, args ...any) error {
	fs.log.Error("ext2fs: corrupt file system", "ino", ino,
		"problem", fmt.Sprintf(format, args...))
	return errCorrupt
}

// mountErr is a mount failure that wraps an errno.
func mountErr(e syscall.Errno, format string, args ...any) error {
	return fmt.Errorf("ext2fs: %s: %w", fmt.Sprintf(format, args...), e)
}

// Mount mounts the ext2/3/4 file system on a.Dev.
func Mount(a vnodeops.MountArgs) (vnodeops.FS, error) {
	if a.Dev == nil {
		return nil, mountErr(syscall.EINVAL, "no device")
	}
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := vnodeops.ReadOptions(a.Options)
	fallback := opts.Bool(optROFallback, false)
	if err := opts.Err(); err != nil {
		return nil, mountErr(syscall.EINVAL, "%v", err)
	}
	fs := &fsys{name: a.Name, dev: a.Dev, log: log, now: a.Now, ro: a.ReadOnly || a.Dev.ReadOnly()}
	if fs.now == nil {
		fs.now = time.Now
	}
	if err := fs.readSuper(); err != nil {
		return nil, err
	}
	if err := fs.checkFeatures(fallback); err != nil {
		return nil, err
	}
	budget := a.CacheBytes
	if budget <= 0 {
		budget = 32 << 20
	}
	fs.cache = blkdev.NewCache(a.Dev, fs.bs, budget)
	if err := fs.readGroups(); err != nil {
		return nil, err
	}
	if !fs.ro {
		if fs.mountState&stateValid == 0 {
			log.Warn("ext2fs: mounting a file system that was not cleanly unmounted; run e2fsck")
		}
		if fs.mountState&stateErrors != 0 {
			log.Warn("ext2fs: file system has errors recorded; run e2fsck")
		}
		le.PutUint16(fs.sbRaw[sbMntCount:], le.Uint16(fs.sbRaw[sbMntCount:])+1)
		le.PutUint32(fs.sbRaw[sbMtime:], uint32(fs.now().Unix()))
		if err := fs.writeSuper(fs.mountState &^ stateValid); err != nil {
			return nil, err
		}
		if err := fs.cache.Sync(); err != nil {
			return nil, mountErr(syscall.EIO, "marking the file system in use: %v", err)
		}
	}
	return fs, nil
}

func (fs *fsys) readSuper() error {
	if fs.dev.Size() < sbOffset+sbSize {
		return mountErr(syscall.EINVAL, "device %s too small for ext2", fs.dev.Name())
	}
	sb := make([]byte, sbSize)
	if _, err := fs.dev.ReadAt(sb, sbOffset); err != nil {
		return mountErr(syscall.EIO, "reading superblock: %v", err)
	}
	fs.sbRaw = sb
	if le.Uint16(sb[sbMagicOff:]) != sbMagic {
		return mountErr(syscall.EINVAL, "no ext2 superblock (bad magic)")
	}
	fs.rev = le.Uint32(sb[sbRevLevel:])
	if fs.rev > 1 {
		return mountErr(syscall.EINVAL, "unknown revision level %d", fs.rev)
	}
	lbs := le.Uint32(sb[sbLogBlockSize:])
	if lbs > 6 {
		return mountErr(syscall.EINVAL, "bad block size exponent %d", lbs)
	}
	fs.bsBits = uint(10 + lbs)
	fs.bs = 1 << fs.bsBits
	if fs.rev >= 1 {
		fs.compat = le.Uint32(sb[sbFeatureCompat:])
		fs.incompat = le.Uint32(sb[sbFeatureIncompat:])
		fs.roCompat = le.Uint32(sb[sbFeatureRoCompat:])
		fs.firstIno = le.Uint32(sb[sbFirstIno:])
		fs.inodeSize = int(le.Uint16(sb[sbInodeSize:]))
	} else {
		fs.firstIno = goodOldFirstIno
		fs.inodeSize = goodOldInodeSize
	}
	is64 := fs.incompat&incompat64bit != 0
	fs.inodesCount = le.Uint32(sb[sbInodesCount:])
	fs.blocksCount = uint64(le.Uint32(sb[sbBlocksCountLo:]))
	fs.rBlocks = uint64(le.Uint32(sb[sbRBlocksCountLo:]))
	fs.freeBlocks = uint64(le.Uint32(sb[sbFreeBlocksLo:]))
	if is64 {
		fs.blocksCount |= uint64(le.Uint32(sb[sbBlocksCountHi:])) << 32
		fs.rBlocks |= uint64(le.Uint32(sb[sbRBlocksCountHi:])) << 32
		fs.freeBlocks |= uint64(le.Uint32(sb[sbFreeBlocksHi:])) << 32
	}
	fs.freeInodes = le.Uint32(sb[sbFreeInodes:])
	fs.firstDataBlock = le.Uint32(sb[sbFirstDataBlock:])
	fs.bpg = le.Uint32(sb[sbBlocksPerGroup:])
	fs.ipg = le.Uint32(sb[sbInodesPerGroup:])
	fs.resuid = uint32(le.Uint16(sb[sbDefResuid:]))
	fs.resgid = uint32(le.Uint16(sb[sbDefResgid:]))
	fs.mountState = le.Uint16(sb[sbState:])
	fs.filetype = fs.incompat&incompatFiletype != 0
	fs.largeFile = fs.roCompat&roCompatLargeFile != 0
	fs.hugeFile = fs.roCompat&roCompatHugeFile != 0

	// Validate everything later code relies on.
	switch {
	case fs.inodeSize < goodOldInodeSize || fs.inodeSize > fs.bs || fs.inodeSize&(fs.inodeSize-1) != 0:
		return mountErr(syscall.EINVAL, "bad inode size %d", fs.inodeSize)
	case fs.blocksCount == 0 || fs.firstDataBlock >= uint32(min(fs.blocksCount, 1<<32-1)):
		return mountErr(syscall.EINVAL, "bad block count %d / first data block %d", fs.blocksCount, fs.firstDataBlock)
	case fs.bs == 1024 && fs.firstDataBlock != 1, fs.bs > 1024 && fs.firstDataBlock != 0:
		return mountErr(syscall.EINVAL, "first data block %d does not fit block size %d", fs.firstDataBlock, fs.bs)
	case fs.bpg == 0 || fs.bpg > uint32(8*fs.bs):
		return mountErr(syscall.EINVAL, "bad blocks per group %d", fs.bpg)
	case fs.ipg == 0 || fs.ipg > uint32(8*fs.bs):
		return mountErr(syscall.EINVAL, "bad inodes per group %d", fs.ipg)
	case fs.firstIno < 3 || fs.firstIno > fs.inodesCount:
		return mountErr(syscall.EINVAL, "bad first inode %d", fs.firstIno)
	case fs.rBlocks > fs.blocksCount:
		return mountErr(syscall.EINVAL, "reserved block count %d above block count %d", fs.rBlocks, fs.blocksCount)
	}
	if fs.blocksCount > uint64(fs.dev.Size())>>fs.bsBits {
		return mountErr(syscall.EINVAL, "file system of %d blocks does not fit the %d-byte device", fs.blocksCount, fs.dev.Size())
	}
	ng := (fs.blocksCount - uint64(fs.firstDataBlock) + uint64(fs.bpg) - 1) / uint64(fs.bpg)
	if ng == 0 || ng*uint64(fs.ipg) != uint64(fs.inodesCount) {
		return mountErr(syscall.EINVAL, "inode count %d is not %d groups of %d", fs.inodesCount, ng, fs.ipg)
	}
	fs.ngroups = uint32(ng)
	fs.descSize = 32
	if is64 {
		fs.descSize = int(le.Uint16(sb[sbDescSize:]))
		if fs.descSize < 64 || fs.descSize > 1024 || fs.descSize&(fs.descSize-1) != 0 || fs.descSize > fs.bs {
			return mountErr(syscall.EINVAL, "bad group descriptor size %d", fs.descSize)
		}
	}
	if fs.freeInodes > fs.inodesCount {
		fs.freeInodes = fs.inodesCount
	}
	if fs.freeBlocks > fs.blocksCount {
		fs.freeBlocks = fs.blocksCount
	}
	if fs.roCompat&roCompatMetadataCsum != 0 {
		if sb[sbChecksumType] != 1 {
			return mountErr(syscall.EINVAL, "unknown checksum type %d", sb[sbChecksumType])
		}
		// checksums.rst: the superblock checksum covers the bytes before
		// s_checksum.
		if got, want := crc32cRaw(^uint32(0), sb[:sbChecksum]), le.Uint32(sb[sbChecksum:]); got != want {
			fs.log.Error("ext2fs: superblock checksum mismatch", "stored", want, "computed", got)
			return mountErr(syscall.EIO, "superblock checksum mismatch")
		}
		fs.csum = true
		if fs.incompat&incompatCsumSeed != 0 {
			fs.csumSeed = le.Uint32(sb[sbChecksumSeed:])
		} else {
			fs.csumSeed = crc32cRaw(^uint32(0), sb[sbUUID:sbUUID+16])
		}
	}
	fs.wantExtra = 0
	if fs.inodeSize >= goodOldInodeSize+32 {
		fs.wantExtra = 32
	}
	fs.maxFileSize = fs.computeMaxSize()
	return nil
}

// computeMaxSize is the largest file the indirect block map and the
// 32-bit i_blocks (512-byte units) can describe, or 2^31-1 without
// large_file.
// nowNanos is the clock's time in nanoseconds.
func (fs *fsys) nowNanos() int64 { return fs.now().UnixNano() }

// addressable is the largest size a block-mapped or extent-mapped file of
// this file system can have: 12 direct, single, double and triple
// indirect blocks, or 2^32 logical blocks (ext4 extents carry a 32-bit
// logical block number).
func (fs *fsys) addressable(extents bool) uint64 {
	if extents {
		return uint64(1) << (32 + fs.bsBits)
	}
	p := uint64(fs.bs / 4)
	return (nDirBlocks + p + p*p + p*p*p) << fs.bsBits
}

func (fs *fsys) computeMaxSize() int64 {
	if !fs.largeFile {
		return 1<<31 - 1
	}
	p := uint64(fs.bs / 4)
	mapped := nDirBlocks + p + p*p + p*p*p
	// i_blocks counts indirect blocks too; leave room for them.
	byBlocks := (uint64(1)<<32 - 1) / uint64(fs.bs/512)
	byBlocks -= byBlocks/(p-1) + 3
	n := min(mapped, byBlocks)
	if n > uint64(1)<<(63-fs.bsBits) {
		n = uint64(1) << (63 - fs.bsBits)
	}
	return int64(n << fs.bsBits)
}

// checkFeatures applies the feature policy: refuse images with unknown
// incompatible features, and refuse (or with fallback, demote to
// read-only) a read-write mount of features this driver does not write.
func (fs *fsys) checkFeatures(fallback bool) error {
	if bad := fs.incompat &^ readIncompat; bad != 0 {
		return mountErr(syscall.EINVAL, "unsupported incompatible feature(s): %s",
			strings.Join(featureList(bad, incompatNames), ", "))
	}
	if fs.incompat&incompatRecover != 0 && fs.ro {
		fs.log.Warn("ext2fs: journal needs recovery; mounting read-only without replaying it (recent changes may be missing)")
	}
	if fs.ro {
		return nil
	}
	var why string
	switch {
	case fs.incompat&incompatRecover != 0:
		why = "the journal needs recovery (needs_recovery); this driver does not replay journals: run e2fsck or mount read-only"
	case fs.incompat&^writeIncompat != 0:
		why = "incompatible feature(s) not supported for writing: " + strings.Join(featureList(fs.incompat&^writeIncompat, incompatNames), ", ")
	case fs.roCompat&^writeRoCompat != 0:
		why = "read-only-compatible feature(s) not supported for writing: " + strings.Join(featureList(fs.roCompat&^writeRoCompat, roCompatNames), ", ")
	case fs.compat&^writeCompat != 0:
		why = "compatible feature(s) not supported for writing: " + strings.Join(featureList(fs.compat&^writeCompat, compatNames), ", ")
	case le.Uint32(fs.sbRaw[sbLastOrphan:]) != 0:
		why = "the orphan inode list is not empty (s_last_orphan); this driver does not process it: run e2fsck or mount read-only"
	case fs.compat&compatHasJournal != 0 && le.Uint32(fs.sbRaw[sbJournalInum:]) == 0:
		why = "external journal device not supported for writing"
	case fs.bs > 65536:
		why = "block size not supported for writing"
	}
	if why == "" {
		if fs.compat&compatHasJournal != 0 {
			fs.log.Info("ext2fs: journalled file system mounted read-write without journalling; the journal is left untouched")
		}
		return nil
	}
	if fallback {
		fs.log.Warn("ext2fs: mounting read-only: " + why)
		fs.ro = true
		return nil
	}
	return mountErr(syscall.EROFS, "read-write mount refused: %s", why)
}

// groupFirstBlock returns the first block of group g.
func (fs *fsys) groupFirstBlock(g uint32) uint64 {
	return uint64(fs.firstDataBlock) + uint64(g)*uint64(fs.bpg)
}

// groupBlocks returns how many blocks group g spans (the last may be
// short).
func (fs *fsys) groupBlocks(g uint32) uint32 {
	first := fs.groupFirstBlock(g)
	if rest := fs.blocksCount - first; rest < uint64(fs.bpg) {
		return uint32(rest)
	}
	return fs.bpg
}

// hasSuper reports whether group g holds a superblock backup (and group
// descriptor copy): every group without sparse_super, else groups 0, 1 and
// powers of 3, 5 and 7 (Poirier, "Sparse Superblock").
func (fs *fsys) hasSuper(g uint32) bool {
	if fs.roCompat&roCompatSparseSuper == 0 || g <= 1 {
		return true
	}
	for _, b := range []uint32{3, 5, 7} {
		n := b
		for n < g {
			if n > (1<<32-1)/b {
				break
			}
			n *= b
		}
		if n == g {
			return true
		}
	}
	return false
}

// descLocation returns where group g's descriptor lives: in the table
// after the superblock, or with meta_bg in the first block of (or after the
// superblock backup in) the first group of its meta group (ext4
// group_descr.rst, "Meta Block Groups").
func (fs *fsys) descLocation(g uint32) (uint64, int) {
	perBlock := uint32(fs.bs / fs.descSize)
	idx := g / perBlock
	off := int(g%perBlock) * fs.descSize
	if fs.incompat&incompatMetaBG != 0 && idx >= le.Uint32(fs.sbRaw[sbFirstMetaBg:]) {
		first := idx * perBlock
		b := fs.groupFirstBlock(first)
		if fs.hasSuper(first) {
			b++
		}
		return b, off
	}
	return uint64(fs.firstDataBlock) + 1 + uint64(idx), off
}

func (fs *fsys) readGroups() error {
	fs.groups = make([]group, fs.ngroups)
	itBlocks := (uint64(fs.ipg)*uint64(fs.inodeSize) + uint64(fs.bs) - 1) >> fs.bsBits
	flex := fs.incompat&incompatFlexBG != 0
	var buf *blkdev.Buf
	defer func() {
		if buf != nil {
			buf.Release()
		}
	}()
	var totFreeB uint64
	var totFreeI uint64
	for g := uint32(0); g < fs.ngroups; g++ {
		blk, off := fs.descLocation(g)
		if buf == nil || uint64(buf.Blkno()) != blk {
			if buf != nil {
				buf.Release()
				buf = nil
			}
			if blk >= fs.blocksCount {
				return mountErr(syscall.EIO, "group descriptor block %d out of range", blk)
			}
			b, err := fs.cache.Get(int64(blk))
			if err != nil {
				return mountErr(syscall.EIO, "reading group descriptors: %v", err)
			}
			buf = b
		}
		d := buf.Data()[off : off+fs.descSize]
		gr := &fs.groups[g]
		gr.descBlock, gr.descOff = blk, off
		gr.blockBitmap = uint64(le.Uint32(d[gdBlockBitmapLo:]))
		gr.inodeBitmap = uint64(le.Uint32(d[gdInodeBitmapLo:]))
		gr.inodeTable = uint64(le.Uint32(d[gdInodeTableLo:]))
		gr.freeBlocks = uint32(le.Uint16(d[gdFreeBlocksLo:]))
		gr.freeInodes = uint32(le.Uint16(d[gdFreeInodesLo:]))
		gr.usedDirs = uint32(le.Uint16(d[gdUsedDirsLo:]))
		gr.flags = le.Uint16(d[gdFlags:])
		if fs.descSize >= 64 {
			gr.blockBitmap |= uint64(le.Uint32(d[gdBlockBitmapHi:])) << 32
			gr.inodeBitmap |= uint64(le.Uint32(d[gdInodeBitmapHi:])) << 32
			gr.inodeTable |= uint64(le.Uint32(d[gdInodeTableHi:])) << 32
			gr.freeBlocks |= uint32(le.Uint16(d[gdFreeBlocksHi:])) << 16
			gr.freeInodes |= uint32(le.Uint16(d[gdFreeInodesHi:])) << 16
			gr.usedDirs |= uint32(le.Uint16(d[gdUsedDirsHi:])) << 16
		}
		if fs.csum {
			if got, want := fs.groupCsum(g, d), le.Uint16(d[gdChecksum:]); got != want {
				fs.log.Error("ext2fs: group descriptor checksum mismatch", "group", g)
				return mountErr(syscall.EIO, "group %d descriptor checksum mismatch", g)
			}
		}
		// Every block a descriptor names must lie inside the device, and
		// without flex_bg inside its own group.
		lo, hi := uint64(fs.firstDataBlock), fs.blocksCount
		if !flex {
			lo, hi = fs.groupFirstBlock(g), fs.groupFirstBlock(g)+uint64(fs.groupBlocks(g))
		}
		in := func(b, n uint64) bool { return b >= lo && b+n <= hi && b+n >= b }
		if !in(gr.blockBitmap, 1) || !in(gr.inodeBitmap, 1) || !in(gr.inodeTable, itBlocks) {
			return mountErr(syscall.EIO, "group %d: bitmap or inode table outside the %s", g, map[bool]string{true: "file system", false: "group"}[flex])
		}
		if gr.freeBlocks > fs.groupBlocks(g) || gr.freeInodes > fs.ipg || gr.usedDirs > fs.ipg {
			return mountErr(syscall.EIO, "group %d: free counts out of range", g)
		}
		totFreeB += uint64(gr.freeBlocks)
		totFreeI += uint64(gr.freeInodes)
	}
	if !fs.ro {
		// The superblock counts may lag (Linux writes them lazily); the
		// group descriptors are authoritative.
		fs.freeBlocks = totFreeB
		fs.freeInodes = uint32(totFreeI)
	}
	return nil
}

// groupCsum computes a group descriptor's metadata_csum checksum
// (checksums.rst): crc32c over the group number and the descriptor with
// its checksum field zeroed, low 16 bits.
func (fs *fsys) groupCsum(g uint32, d []byte) uint16 {
	var n [4]byte
	le.PutUint32(n[:], g)
	c := crc32cRaw(fs.csumSeed, n[:])
	c = crc32cRaw(c, d[:gdChecksum])
	c = crc32cRaw(c, []byte{0, 0})
	if len(d) > gdChecksum+2 {
		c = crc32cRaw(c, d[gdChecksum+2:])
	}
	return uint16(c)
}

// writeGroup stores group g's counters in its descriptor buffer. Caller
// holds fs.mu exclusively.
func (fs *fsys) writeGroup(g uint32) error {
	gr := &fs.groups[g]
	b, err := fs.cache.Get(int64(gr.descBlock))
	if err != nil {
		return fs.corrupt(0, "reading descriptor of group %d: %v", g, err)
	}
	d := b.Data()[gr.descOff : gr.descOff+fs.descSize]
	le.PutUint16(d[gdFreeBlocksLo:], uint16(gr.freeBlocks))
	le.PutUint16(d[gdFreeInodesLo:], uint16(gr.freeInodes))
	le.PutUint16(d[gdUsedDirsLo:], uint16(gr.usedDirs))
	if fs.descSize >= 64 {
		le.PutUint16(d[gdFreeBlocksHi:], uint16(gr.freeBlocks>>16))
		le.PutUint16(d[gdFreeInodesHi:], uint16(gr.freeInodes>>16))
		le.PutUint16(d[gdUsedDirsHi:], uint16(gr.usedDirs>>16))
	}
	b.MarkDirty()
	b.Release()
	return nil
}

// writeSuper stores the counters and state in the primary superblock's
// buffer. Backups are left untouched, as Linux does. Caller holds fs.mu
// exclusively (or is Mount).
func (fs *fsys) writeSuper(state uint16) error {
	sb := fs.sbRaw
	le.PutUint32(sb[sbFreeBlocksLo:], uint32(fs.freeBlocks))
	if fs.incompat&incompat64bit != 0 {
		le.PutUint32(sb[sbFreeBlocksHi:], uint32(fs.freeBlocks>>32))
	}
	le.PutUint32(sb[sbFreeInodes:], fs.freeInodes)
	le.PutUint16(sb[sbState:], state)
	le.PutUint32(sb[sbWtime:], uint32(fs.now().Unix()))
	blk := int64(sbOffset / fs.bs)
	off := sbOffset % fs.bs
	b, err := fs.cache.Get(blk)
	if err != nil {
		return fs.corrupt(0, "reading superblock: %v", err)
	}
	copy(b.Data()[off:off+sbSize], sb)
	b.MarkDirty()
	b.Release()
	fs.sbDirty = false
	return nil
}

// Root implements vnodeops.FS.
func (fs *fsys) Root() uint64 { return rootIno }

// Statvfs implements vnodeops.FS.
func (fs *fsys) Statvfs() (vnodeops.Statvfs, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	st := vnodeops.Statvfs{
		Bsize:   uint32(fs.bs),
		Frsize:  uint32(fs.bs),
		Blocks:  fs.blocksCount - uint64(fs.firstDataBlock),
		Bfree:   fs.freeBlocks,
		Files:   uint64(fs.inodesCount),
		Ffree:   uint64(fs.freeInodes),
		Favail:  uint64(fs.freeInodes),
		Namemax: 255,
	}
	if fs.freeBlocks > fs.rBlocks {
		st.Bavail = fs.freeBlocks - fs.rBlocks
	}
	if fs.ro {
		st.Flags |= vnodeops.StRdonly
	}
	return st, nil
}

// Sync implements vnodeops.FS.
func (fs *fsys) Sync() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.syncLocked()
}

func (fs *fsys) syncLocked() error {
	if err := fs.writeBackLocked(); err != nil {
		return err
	}
	return fs.cache.SyncDevice()
}

// writeBackLocked writes the superblock and every dirty buffer to the
// device, without syncing it. The caller holds fs.mu.
func (fs *fsys) writeBackLocked() error {
	if fs.ro || fs.unmounted {
		return nil
	}
	if err := fs.writeSuper(fs.mountState &^ stateValid); err != nil {
		return err
	}
	return fs.cache.WriteBack()
}

// Unmount implements vnodeops.FS. It restores the s_state found at mount
// (clean if it was clean) and closes the device.
func (fs *fsys) Unmount(bool) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.unmounted {
		return nil
	}
	var err error
	if !fs.ro {
		if e := fs.writeSuper(fs.mountState); e != nil && err == nil {
			err = e
		}
		if e := fs.cache.Sync(); e != nil && err == nil {
			err = e
		}
	}
	fs.unmounted = true
	if cerr := fs.dev.Close(); err == nil && cerr != nil {
		err = syscall.EIO
	}
	var en syscall.Errno
	if err != nil && !errors.As(err, &en) {
		err = syscall.EIO
	}
	return err
}

// inodeLoc returns the block and byte offset of inode ino, which the
// caller has range-checked.
func (fs *fsys) inodeLoc(ino uint64) (uint64, int) {
	g := uint32((ino - 1) / uint64(fs.ipg))
	idx := (ino - 1) % uint64(fs.ipg)
	off := idx * uint64(fs.inodeSize)
	return fs.groups[g].inodeTable + off>>fs.bsBits, int(off & uint64(fs.bs-1))
}

// validIno reports whether ino may name a file: the root or an inode past
// the reserved ones, within s_inodes_count.
func (fs *fsys) validIno(ino uint64) bool {
	return ino == rootIno || (ino >= uint64(fs.firstIno) && ino <= uint64(fs.inodesCount))
}

// readInode copies inode ino from the inode table and verifies its
// checksum.
func (fs *fsys) readInode(ino uint64) ([]byte, error) {
	if ino == 0 || ino > uint64(fs.inodesCount) {
		return nil, fs.corrupt(ino, "inode number out of range")
	}
	blk, off := fs.inodeLoc(ino)
	b, err := fs.cache.Get(int64(blk))
	if err != nil {
		return nil, fs.corrupt(ino, "reading inode table block %d: %v", blk, err)
	}
	raw := slices.Clone(b.Data()[off : off+fs.inodeSize])
	b.Release()
	if fs.inodeSize > goodOldInodeSize {
		extra := int(le.Uint16(raw[inExtraIsize:]))
		if extra&3 != 0 || goodOldInodeSize+extra > fs.inodeSize {
			return nil, fs.corrupt(ino, "bad i_extra_isize %d", extra)
		}
	}
	if fs.csum && !allZero(raw) {
		if err := fs.verifyInodeCsum(ino, raw); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// verifyInodeCsum checks an inode's metadata_csum checksum (checksums.rst):
// crc32c over the inode number, the generation and the whole inode with
// its checksum fields zeroed; the low half is in osd2, the high half in
// i_checksum_hi when the inode is large enough to hold it.
func (fs *fsys) verifyInodeCsum(ino uint64, raw []byte) error {
	tmp := slices.Clone(raw)
	tmp[inChecksumLo], tmp[inChecksumLo+1] = 0, 0
	hasHi := fs.inodeSize > goodOldInodeSize && le.Uint16(raw[inExtraIsize:]) >= 4
	if hasHi {
		tmp[inChecksumHi], tmp[inChecksumHi+1] = 0, 0
	}
	var n [4]byte
	le.PutUint32(n[:], uint32(ino))
	c := crc32cRaw(fs.csumSeed, n[:])
	c = crc32cRaw(c, raw[inGeneration:inGeneration+4])
	c = crc32cRaw(c, tmp)
	stored := uint32(le.Uint16(raw[inChecksumLo:]))
	want := c & 0xFFFF
	if hasHi {
		stored |= uint32(le.Uint16(raw[inChecksumHi:])) << 16
		want = c
	}
	if stored != want {
		return fs.corrupt(ino, "inode checksum mismatch")
	}
	return nil
}

// inodeSeed is the per-inode checksum seed for extent and directory
// blocks (checksums.rst).
func (fs *fsys) inodeSeed(ino uint64, gen uint32) uint32 {
	var n [8]byte
	le.PutUint32(n[:], uint32(ino))
	le.PutUint32(n[4:], gen)
	return crc32cRaw(crc32cRaw(fs.csumSeed, n[:4]), n[4:])
}

// writeInode stores raw as inode ino. Caller holds fs.mu exclusively.
func (fs *fsys) writeInode(ino uint64, raw []byte) error {
	blk, off := fs.inodeLoc(ino)
	b, err := fs.cache.Get(int64(blk))
	if err != nil {
		return fs.corrupt(ino, "reading inode table block %d: %v", blk, err)
	}
	copy(b.Data()[off:off+fs.inodeSize], raw)
	b.MarkDirty()
	b.Release()
	return nil
}

// VGet implements vnodeops.FS.
func (fs *fsys) VGet(ino uint64) (vnodeops.Vnode, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if fs.unmounted {
		return nil, syscall.EIO
	}
	if !fs.validIno(ino) {
		if ino == 0 || ino > uint64(fs.inodesCount) {
			return nil, syscall.ENOENT
		}
		return nil, syscall.ENOENT
	}
	raw, err := fs.readInode(ino)
	if err != nil {
		return nil, err
	}
	v := &vnode{fs: fs, ino: ino, raw: raw}
	if v.links() == 0 || v.mode() == 0 {
		return nil, syscall.ENOENT
	}
	if err := v.validate(); err != nil {
		return nil, err
	}
	fs.liveMu.Lock()
	if fs.live == nil {
		fs.live = make(map[uint64]*vnode)
	}
	fs.live[ino] = v
	fs.liveMu.Unlock()
	return v, nil
}
