// Package ffs is the driver of the Berkeley Fast File System (FFS, UFS):
// UFS1 (4.4BSD, NetBSD's default before 5.0) and UFS2, in either byte
// order, read-write.
//
// It registers itself as "ffs" with package vnodeops. Layout facts come
// from NetBSD's sys/ufs/ffs/fs.h, sys/ufs/ufs/dinode.h and dir.h; see
// layout.go, which decodes and encodes the structures and knows nothing
// of allocation (alloc.go). Check (check.go) is a consistency checker
// built on layout.go alone, the base of rump9p fsck.
//
// # Locking
//
// One sync.RWMutex per mounted file system (fsys.mu) guards every piece
// of on-disk state and every vnode's in-memory inode: operations that
// only read hold it shared, operations that write hold it exclusively.
// Cache buffers are modified only with the lock held exclusively, and
// Sync holds it exclusively too, since the cache reads dirty buffers
// while writing them. Readdir calls its callback without the lock.
//
// # Mount policy
//
// A file system that was not unmounted cleanly (fs_clean without
// FS_ISCLEAN), has a non-empty WAPBL log (NetBSD, FS_DOWAPBL) or soft
// update journal work pending (FreeBSD SUJ on an unclean file system)
// mounts read-only with a warning naming the reason; the option
// unclean=refuse makes such a mount fail instead. A superblock flag this
// driver does not know how to keep (quotas, check hashes, gjournal,
// NFSv4 ACLs) refuses a read-write mount by name; ro_fallback=true mounts
// read-only instead.
//
// # Write order
//
// A new inode reaches the image before the directory entry naming it, a
// new directory's first chunk before its inode, a new indirect block
// before the pointer to it, a removed entry before the link count it
// held drops, and a truncated inode (and the indirect blocks it keeps)
// before the maps free what it no longer points at (Cache.Flush,
// WriteBuf). Everything else is written
// back by Sync in ascending block order, which inside a cylinder group
// puts the group's maps ahead of its inodes and data. A crash between
// syncs can leave fragments or inodes marked in use that nothing
// references, or stale summaries; the image is marked unclean until a
// clean unmount, so fsck_ffs repairs it.
//
// # What is not written
//
// Access times are not updated on read (as with noatime). The UFS2
// extended attribute area is served read-only (vnodeops.Xattrs) and freed
// with its inode. Directory chunks are never compacted: an entry goes
// into the slack of one existing entry or a new chunk, so entries never
// move and Readdir cookies (byte offsets) stay valid.
package ffs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

func init() {
	vnodeops.Register(vnodeops.Driver{
		Name:        "ffs",
		NeedsDevice: true,
		Probe:       Probe,
		Mount:       Mount,
	})
}

// Probe reports whether r holds an FFS superblock (UFS1 or UFS2, either
// byte order) at one of the standard locations, with a plausible
// geometry.
func Probe(r io.ReaderAt, size int64) bool {
	raw := make([]byte, sbBlockSize)
	for _, loc := range sbSearch {
		if loc+sbBlockSize > size {
			continue
		}
		if n, err := r.ReadAt(raw, loc); n != len(raw) && err != nil {
			continue
		}
		if _, err := decodeSuper(raw, loc, size); err == nil {
			return true
		}
	}
	return false
}

// Options the driver accepts in MountArgs.Options.
const (
	// optROFallback: "true" mounts read-only, with a warning, an image
	// whose superblock flags this driver cannot keep, instead of refusing
	// a read-write mount.
	optROFallback = "ro_fallback"
	// optUnclean: "ro" (the default) mounts an unclean file system
	// read-only with a warning; "refuse" fails the mount.
	optUnclean = "unclean"
)

// fsys is a mounted FFS; it implements vnodeops.FS.
type fsys struct {
	mu    sync.RWMutex
	name  string
	dev   blkdev.Device
	cache *blkdev.Cache
	log   *slog.Logger
	ro    bool
	now   func() time.Time

	sb        *superblock
	cs        []csum // per-group summaries (fs_csp); cg_cs is the authority
	unmounted bool

	idxMu sync.Mutex
	idx   map[uint64]map[string]uint32 // name indexes of big directories (dir.go)

	liveMu sync.Mutex
	live   map[uint64]*vnode // vnodes handed out by VGet and not reclaimed
}

// corrupt logs one line naming the inode (0: none; the kernel's logger
// names the mount) and returns EIO.
func (fs *fsys) corrupt(ino uint64, format string, args ...any) error {
	fs.log.Error("ffs: corrupt file system", "ino", ino,
		"problem", fmt.Sprintf(format, args...))
	return syscall.EIO
}

// mountErr is a mount failure that wraps an errno.
func mountErr(e syscall.Errno, format string, args ...any) error {
	return fmt.Errorf("ffs: %s: %w", fmt.Sprintf(format, args...), e)
}

// Mount mounts the FFS on a.Dev. EINVAL: no FFS or a bad option; EIO: a
// corrupt superblock or cylinder group; EROFS: a read-write mount refused
// (see the package comment).
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
	refuseUnclean := opts.Choice(optUnclean, "ro", "ro", "refuse") == "refuse"
	if err := opts.Err(); err != nil {
		return nil, mountErr(syscall.EINVAL, "%v", err)
	}
	fs := &fsys{name: a.Name, dev: a.Dev, log: log, now: a.Now, ro: a.ReadOnly || a.Dev.ReadOnly()}
	if fs.now == nil {
		fs.now = time.Now
	}
	if err := fs.findSuper(); err != nil {
		return nil, err
	}
	if err := fs.policy(fallback, refuseUnclean); err != nil {
		return nil, err
	}
	budget := a.CacheBytes
	if budget <= 0 {
		budget = 32 << 20
	}
	fs.cache = blkdev.NewCache(a.Dev, int(fs.sb.bsize), budget)
	if err := fs.readGroups(); err != nil {
		return nil, err
	}
	if !fs.ro {
		// Mark the file system in use until a clean unmount.
		fs.sb.clean = 0
		fs.sb.time = fs.now().Unix()
		if err := fs.writeSuper(); err != nil {
			return nil, mountErr(syscall.EIO, "marking the file system in use: %v", err)
		}
	}
	return fs, nil
}

// findSuper searches the standard locations for the superblock.
func (fs *fsys) findSuper() error {
	size := fs.dev.Size()
	var firstErr error
	for _, loc := range sbSearch {
		if loc+sbBlockSize > size {
			continue
		}
		raw := make([]byte, sbBlockSize)
		if _, err := fs.dev.ReadAt(raw, loc); err != nil {
			return mountErr(syscall.EIO, "reading %s at %d: %v", fs.dev.Name(), loc, err)
		}
		sb, err := decodeSuper(raw, loc, size)
		if errors.Is(err, errNoSuper) {
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fs.sb = sb
		return nil
	}
	if firstErr != nil {
		fs.log.Error("ffs: bad superblock", "problem", firstErr.Error())
		return mountErr(syscall.EIO, "%v", firstErr)
	}
	return mountErr(syscall.EINVAL, "no FFS superblock on %s (searched %v)", fs.dev.Name(), sbSearch)
}

// flagNames names the fs_flags bits a read-write mount refuses.
var flagNames = []struct {
	bit  uint32
	name string
}{
	{fsGJournal, "FS_GJOURNAL (FreeBSD gjournal)"},
	{fsDoQuota2, "0x200 (NetBSD FS_DOQUOTA2 or FreeBSD FS_METACKHASH)"},
}

// writableFlags are the fs_flags bits a read-write mount keeps correct
// by leaving them alone.
const writableFlags = fsUnclean | fsDoSoftDep | fsNeedsFsck | fsSUJ | fsACLs | fsMultiLabel | fsFlagsUpdated | fsTrim | fsDoWAPBL

// policy decides between read-write, read-only and refusal (see the
// package comment).
func (fs *fsys) policy(fallback, refuseUnclean bool) error {
	sb := fs.sb
	var unclean string
	switch {
	case sb.flags&fsDoWAPBL != 0 && sb.wapblVersion != 0:
		if why := fs.wapblState(); why != "" {
			unclean = why
		} else if sb.clean&fsIsClean == 0 {
			unclean = "not cleanly unmounted (fs_clean is 0)"
		}
	case sb.flags&fsSUJ != 0 && sb.flags&fsDoSoftDep != 0 && sb.clean&fsIsClean == 0:
		unclean = "soft update journal (SUJ) work pending; run fsck_ffs on FreeBSD"
	case sb.clean&fsIsClean == 0:
		unclean = "not cleanly unmounted (fs_clean is 0)"
	case sb.flags&fsNeedsFsck != 0:
		unclean = "FS_NEEDSFSCK is set"
	}
	if unclean != "" {
		if refuseUnclean {
			return mountErr(syscall.EROFS, "file system is unclean: %s", unclean)
		}
		if !fs.ro {
			fs.log.Warn("ffs: mounting read-only: " + unclean)
			fs.ro = true
		} else {
			fs.log.Warn("ffs: file system is unclean: " + unclean)
		}
	}
	if fs.ro {
		return nil
	}
	var why []string
	bad := sb.flags &^ writableFlags
	if sb.flags&fsDoWAPBL != 0 && sb.wapblVersion == 0 {
		why = append(why, "0x100 (FreeBSD FS_NFS4ACLS)")
	}
	for _, f := range flagNames {
		if bad&f.bit != 0 {
			why = append(why, f.name)
			bad &^= f.bit
		}
	}
	if bad != 0 {
		why = append(why, fmt.Sprintf("unknown flags %#x", bad))
	}
	if len(why) == 0 {
		return nil
	}
	msg := "superblock flag(s) not supported for writing: " + strings.Join(why, ", ")
	if fallback {
		fs.log.Warn("ffs: mounting read-only: " + msg)
		fs.ro = true
		return nil
	}
	return mountErr(syscall.EROFS, "read-write mount refused: %s", msg)
}

// WAPBL journal locations (NetBSD sys/ufs/ufs/ufs_wapbl.h) and the
// header at the start of the log (sys/sys/wapbl_replay.h struct
// wapbl_wc_header: wc_generation at 12, wc_log_dev_bshift at 40,
// wc_tail at 56; the log is empty when wc_tail is 0).
const (
	wapblEndPartition = 1
	wapblInFilesystem = 2
)

// wapblState returns why the WAPBL log keeps the file system from being
// written, or "" when the log is empty.
func (fs *fsys) wapblState() string {
	sb := fs.sb
	// Both kinds of location give the log's start in units of its
	// block size (ffs_wapbl_start: journallocs ADDR and BLKSZ).
	if sb.wapblLocation != wapblEndPartition && sb.wapblLocation != wapblInFilesystem {
		return fmt.Sprintf("WAPBL log at an unknown kind of location %d", sb.wapblLocation)
	}
	bsz := sb.wapblLocs[2]
	if bsz < devBSize || bsz > maxBSize || bsz&(bsz-1) != 0 || sb.wapblLocs[0] > uint64(fs.dev.Size()) {
		return "WAPBL log location corrupt"
	}
	off := int64(sb.wapblLocs[0] * bsz)
	hdr := make([]byte, 64)
	if off < 0 || off+64 > fs.dev.Size() {
		return "WAPBL log header outside the device"
	}
	if _, err := fs.dev.ReadAt(hdr, off); err != nil {
		return "WAPBL log header unreadable"
	}
	bo := sb.bo
	shift := bo.Uint32(hdr[40:])
	if shift < 9 || shift > 16 {
		return "WAPBL log header corrupt"
	}
	h2 := make([]byte, 64)
	if _, err := fs.dev.ReadAt(h2, off+1<<shift); err == nil && bo.Uint32(h2[12:]) > bo.Uint32(hdr[12:]) {
		hdr = h2
	}
	if bo.Uint64(hdr[56:]) != 0 {
		return "the WAPBL log (FS_DOWAPBL) is not empty; replay it by mounting on NetBSD"
	}
	return ""
}

// readGroups reads the summary area and every cylinder group, checking
// each; the groups' own summaries become the in-memory ones.
func (fs *fsys) readGroups() error {
	sb := fs.sb
	area := make([]byte, sb.cssize)
	if _, err := fs.dev.ReadAt(area, sb.csaddr<<sb.fshift); err != nil {
		return mountErr(syscall.EIO, "reading the summary area: %v", err)
	}
	fs.cs = make([]csum, sb.ncg)
	var total csum
	for c := uint32(0); c < sb.ncg; c++ {
		b, v, err := fs.getCg(c)
		if err != nil {
			return mountErr(syscall.EIO, "%v", err)
		}
		fs.cs[c] = v.cs()
		b.Release()
		cs := fs.cs[c]
		if cs.nifree < 0 || cs.nifree > sb.ipg || cs.ndir < 0 || cs.ndir > sb.ipg ||
			cs.nbfree < 0 || cs.nffree < 0 || cs.nbfree*sb.frag+cs.nffree > sb.fpg {
			fs.log.Error("ffs: bad cylinder group summary", "cg", c)
			return mountErr(syscall.EIO, "cylinder group %d: summary out of range", c)
		}
		total.add(cs)
	}
	if total != sb.cstotal {
		if !fs.ro {
			fs.log.Info("ffs: superblock totals differ from the groups'; using the groups'")
		}
		sb.cstotal = total
	}
	return nil
}

// getCg returns the pinned buffer of cylinder group c and its checked
// view. The caller releases the buffer.
func (fs *fsys) getCg(c uint32) (*blkdev.Buf, *cgView, error) {
	sb := fs.sb
	if c >= sb.ncg {
		return nil, nil, fmt.Errorf("cylinder group %d out of range", c)
	}
	blk := sb.cgtod(c)
	b, err := fs.cache.Get(blk >> sb.fragshift)
	if err != nil {
		return nil, nil, fmt.Errorf("reading cylinder group %d: %v", c, err)
	}
	v, err := sb.decodeCg(b.Data(), c)
	if err != nil {
		b.Release()
		return nil, nil, err
	}
	return b, v, nil
}

// writeSuper writes the summary area and the superblock to the device,
// directly (neither shares a cached block with anything the driver
// reads through the cache) after the cache's dirty buffers. Caller holds
// fs.mu exclusively, or is Mount.
func (fs *fsys) writeSuper() error {
	sb := fs.sb
	if err := fs.cache.Sync(); err != nil {
		return err
	}
	area := make([]byte, sb.cssize)
	if _, err := fs.dev.ReadAt(area, sb.csaddr<<sb.fshift); err != nil {
		return err
	}
	for c, cs := range fs.cs {
		encodeCsum(sb.bo, area[c*csumLen:], cs)
	}
	if _, err := fs.dev.WriteAt(area, sb.csaddr<<sb.fshift); err != nil {
		return err
	}
	if _, err := fs.dev.WriteAt(sb.encode(), sb.loc); err != nil {
		return err
	}
	return fs.dev.Sync()
}

// Root implements vnodeops.FS.
func (fs *fsys) Root() uint64 { return rootIno }

// Statvfs implements vnodeops.FS. Sizes count fragments; Bavail leaves
// out the minfree reserve, as BSD's freespace() does.
func (fs *fsys) Statvfs() (vnodeops.Statvfs, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	sb := fs.sb
	free := sb.cstotal.nbfree*sb.frag + sb.cstotal.nffree
	st := vnodeops.Statvfs{
		Bsize:   uint32(sb.bsize),
		Frsize:  uint32(sb.fsize),
		Blocks:  uint64(sb.dsize),
		Bfree:   uint64(max(free, 0)),
		Files:   sb.numInodes() - rootIno,
		Ffree:   uint64(max(sb.cstotal.nifree, 0)),
		Favail:  uint64(max(sb.cstotal.nifree, 0)),
		Namemax: maxNameLen,
	}
	if avail := free - sb.dsize*sb.minfree/100; avail > 0 {
		st.Bavail = uint64(avail)
	}
	if fs.ro {
		st.Flags |= vnodeops.StRdonly
	}
	return st, nil
}

// Sync implements vnodeops.FS: every dirty buffer, then the summaries
// and the superblock (still marked in use).
func (fs *fsys) Sync() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro || fs.unmounted {
		return nil
	}
	fs.sb.time = fs.now().Unix()
	return errno(fs.writeSuper())
}

// errno reduces an error to a syscall.Errno (EIO for anything else).
func errno(err error) error {
	if err == nil {
		return nil
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// Unmount implements vnodeops.FS: frees files unlinked while open (on a
// forced unmount), writes everything back, marks the file system clean
// and closes the device.
func (fs *fsys) Unmount(force bool) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.unmounted {
		return nil
	}
	var err error
	if !fs.ro {
		fs.liveMu.Lock()
		var orphans []*vnode
		for _, v := range fs.live {
			if !v.freed && v.di.nlink() == 0 {
				orphans = append(orphans, v)
			}
		}
		fs.liveMu.Unlock()
		for _, v := range orphans {
			if e := v.freeLocked(); e != nil && err == nil {
				err = e
			}
		}
		if err == nil {
			fs.sb.clean = fsIsClean
		}
		fs.sb.time = fs.now().Unix()
		if e := fs.writeSuper(); e != nil && err == nil {
			err = e
		}
	}
	fs.unmounted = true
	if cerr := fs.dev.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return errno(err)
}

// VGet implements vnodeops.FS.
func (fs *fsys) VGet(ino uint64) (vnodeops.Vnode, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if fs.unmounted {
		return nil, syscall.EIO
	}
	if ino < rootIno || ino >= fs.sb.numInodes() {
		return nil, syscall.ENOENT
	}
	raw, err := fs.readInode(ino)
	if err != nil {
		return nil, err
	}
	v := &vnode{fs: fs, ino: ino, di: dinode{b: raw, bo: fs.sb.bo, ufs2: fs.sb.ufs2}}
	if v.di.nlink() == 0 || v.di.mode() == 0 {
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

// inodeBlock returns the cache block number and byte offset of inode ino.
func (fs *fsys) inodeBlock(ino uint64) (int64, int) {
	a, off := fs.sb.inoLoc(ino)
	return a >> fs.sb.fragshift, int(off)
}

// readInode returns a copy of inode ino. For UFS2 an inode past its
// group's initialized inodes reads as zeros (cg_initediblk).
func (fs *fsys) readInode(ino uint64) ([]byte, error) {
	sb := fs.sb
	raw := make([]byte, sb.dinodeSize())
	if sb.ufs2 {
		b, v, err := fs.getCg(sb.inoToCg(ino))
		if err != nil {
			return nil, fs.corrupt(ino, "%v", err)
		}
		inited := v.initedIblk()
		b.Release()
		if int64(ino%uint64(sb.ipg)) >= inited {
			return raw, nil
		}
	}
	blk, off := fs.inodeBlock(ino)
	b, err := fs.cache.Get(blk)
	if err != nil {
		return nil, fs.corrupt(ino, "reading inode block %d: %v", blk, err)
	}
	copy(raw, b.Data()[off:])
	b.Release()
	return raw, nil
}

// writeInode stores v's inode in its block. Caller holds fs.mu
// exclusively.
func (fs *fsys) writeInode(v *vnode) error {
	blk, off := fs.inodeBlock(v.ino)
	b, err := fs.cache.Get(blk)
	if err != nil {
		return fs.corrupt(v.ino, "reading inode block %d: %v", blk, err)
	}
	copy(b.Data()[off:off+len(v.di.b)], v.di.b)
	b.MarkDirty()
	b.Release()
	return nil
}
