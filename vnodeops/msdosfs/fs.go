// Package msdosfs is a read-write driver for the FAT12, FAT16 and FAT32
// file systems with VFAT long names, after NetBSD's msdosfs. It registers
// itself as "msdosfs".
//
// The on-disk format follows Microsoft's FAT specification (fatgen103);
// see layout.go, names.go and dir.go.
//
// # Mount options
//
//   - uid, gid: owner of every file (default 0).
//   - mask: permission bits of files, octal (default 0755); dirmask: of
//     directories (default: mask). A file with the read-only attribute
//     shows without write bits.
//   - tz: the time zone of the timestamps on disk (FAT stores local time):
//     "UTC" (default), or an offset "+02:00", "-0530", "+1".
//   - quiet: "true" makes chmod and chown that FAT cannot express succeed
//     silently instead of failing with EPERM.
//   - codepage: "437" only (the code page of short names).
//
// # Metadata
//
// chmod can only toggle the write bits of a file (the read-only
// attribute); chown only to the mount's uid and gid. Mtime has 2 s
// resolution, the creation time (Attr.Btime) 10 ms, atime one day (a
// read sets the access date of a read-write mount); Ctime
// reports the modification time, as FAT keeps no change time. Symbolic
// links, hard links and special files give EPERM. Files are at most
// 4 GiB − 1 bytes (EFBIG). A directory's link count is 2 plus its number
// of subdirectories, a file's 1.
//
// # Inode numbers
//
// FAT has none; this driver makes them up so that a file keeps its number
// for the life of the mount, across renames (not across remounts):
//
//   - the root directory is inode 1;
//   - any other directory is dirInoBase + its first cluster, which never
//     changes, even across a rename;
//   - a file is fileInoBase + (directory key << 16 | slot), the position of
//     its short entry (directory key: the first cluster of the directory
//     holding it, 0 for the root; slot: the entry's index in it). A file
//     that is renamed keeps its number: the FS records the new position
//     under the old number (alias/posIno); a position whose natural number
//     is taken by such a moved file, or by an unlinked but still open file,
//     gets a synthetic number (synthInoBase + n) recorded the same way.
//     These records live as long as the mount.
//
// VGet of a file number reads the entry at its position; of a directory
// number, it reads the directory's ".." and finds its entry in the parent.
//
// # Locking
//
// One mutex per FS serialises every operation.
package msdosfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

func init() {
	vnodeops.Register(vnodeops.Driver{
		Name:        "msdosfs",
		NeedsDevice: true,
		Probe:       Probe,
		Mount:       Mount,
	})
}

const (
	rootIno      = 1
	fileInoBase  = 2
	dirInoBase   = 1 << 48
	synthInoBase = 1 << 56

	maxFileSize = 1<<32 - 1 // [fatgen103 §6: DIR_FileSize is 32 bits]
	maxDirSlots = 65536     // [fatgen103 §6: a directory holds at most 65536 entries]
)

// pos is the position of a short directory entry: the key of the
// directory holding it (its first cluster, 0 for the root) and its slot.
type pos struct {
	dir  uint32
	slot uint32
}

func (p pos) natural() uint64 { return fileInoBase + (uint64(p.dir)<<16 | uint64(p.slot)) }

type options struct {
	uid, gid      uint32
	mask, dirmask uint32
	tz            *time.Location
	quiet         bool
}

// fsys is a mounted FAT file system.
type fsys struct {
	mu    sync.Mutex
	name  string
	log   *slog.Logger
	dev   blkdev.Device
	cache *blkdev.Cache
	ro    bool
	g     *geometry
	opt   options
	now   func() time.Time

	freeCount uint32
	nextFree  uint32

	live      map[uint64]*node
	alias     map[uint64]pos // ino -> position, for inos not natural for it
	posIno    map[pos]uint64 // position -> ino, the inverse of alias
	nextSynth uint64
	dirChains map[uint32][]uint32 // directory key -> cluster chain
	dirPos    map[uint32]pos      // directory key -> position of its entry (a hint)
	subdirs   map[uint32]int      // directory key -> number of subdirectories
	unmounted bool
	wasDirty  bool // the clean bit was clear at mount
}

func parseOptions(m map[string]string) (options, error) {
	o := options{tz: time.UTC}
	r := vnodeops.ReadOptions(m)
	o.uid = uint32(r.Uint("uid", 0, 10, 1<<32-1))
	o.gid = uint32(r.Uint("gid", 0, 10, 1<<32-1))
	o.mask = uint32(r.Uint("mask", 0o755, 8, 0o777))
	o.dirmask = uint32(r.Uint("dirmask", uint64(o.mask), 8, 0o777))
	r.Value("tz", func(v string) (err error) {
		o.tz, err = parseTZ(v)
		return err
	})
	o.quiet = r.Bool("quiet", false)
	r.Choice("codepage", "437", "437", "cp437") // the only one supported
	if err := r.Err(); err != nil {
		return o, fmt.Errorf("msdosfs: %v: %w", err, syscall.EINVAL)
	}
	return o, nil
}

// parseTZ parses "UTC", "Z" or an offset "+HH", "+HHMM", "+HH:MM".
func parseTZ(s string) (*time.Location, error) {
	if s == "" || strings.EqualFold(s, "UTC") || s == "Z" {
		return time.UTC, nil
	}
	if s[0] != '+' && s[0] != '-' {
		return nil, errors.New("want UTC or an offset like +02:00")
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	r := strings.ReplaceAll(s[1:], ":", "")
	var h, m int
	var err error
	switch len(r) {
	case 1, 2:
		h, err = strconv.Atoi(r)
	case 4:
		h, err = strconv.Atoi(r[:2])
		if err == nil {
			m, err = strconv.Atoi(r[2:])
		}
	default:
		err = errors.New("bad offset")
	}
	if err != nil || h > 14 || m > 59 {
		return nil, errors.New("want UTC or an offset like +02:00")
	}
	return time.FixedZone(s, sign*(h*3600+m*60)), nil
}

// Mount mounts the FAT file system on args.Dev.
func Mount(args vnodeops.MountArgs) (vnodeops.FS, error) {
	opt, err := parseOptions(args.Options)
	if err != nil {
		return nil, err
	}
	dev := args.Dev
	if dev == nil {
		return nil, fmt.Errorf("msdosfs: no device: %w", syscall.EINVAL)
	}
	if !args.ReadOnly && dev.ReadOnly() {
		return nil, fmt.Errorf("msdosfs: device %s is read-only: %w", dev.Name(), syscall.EROFS)
	}
	bs := make([]byte, 512)
	if n, err := dev.ReadAt(bs, 0); n != len(bs) {
		return nil, fmt.Errorf("msdosfs: reading the boot sector of %s: %v: %w", dev.Name(), err, syscall.EIO)
	}
	g, err := parseBPB(bs, dev.Size())
	if err != nil {
		return nil, fmt.Errorf("msdosfs: %s: not a valid FAT file system: %v: %w", dev.Name(), err, syscall.EINVAL)
	}
	budget := args.CacheBytes
	if budget <= 0 {
		budget = 8 << 20
	}
	fs := &fsys{
		name:      args.Name,
		log:       args.Log,
		dev:       dev,
		cache:     blkdev.NewCache(dev, int(g.bps), budget),
		ro:        args.ReadOnly,
		g:         g,
		opt:       opt,
		now:       args.Now,
		live:      map[uint64]*node{},
		alias:     map[uint64]pos{},
		posIno:    map[pos]uint64{},
		nextSynth: synthInoBase,
		dirChains: map[uint32][]uint32{},
		dirPos:    map[uint32]pos{},
		subdirs:   map[uint32]int{},
	}
	if fs.log == nil {
		fs.log = slog.New(slog.DiscardHandler)
	}
	if fs.now == nil {
		fs.now = time.Now
	}
	if err := fs.countFree(); err != nil {
		return nil, fmt.Errorf("msdosfs: %s: reading the FAT: %w", dev.Name(), err)
	}
	if _, err := fs.dirChain(0); err != nil {
		return nil, fmt.Errorf("msdosfs: %s: bad root directory: %w", dev.Name(), err)
	}
	if !fs.ro {
		if err := fs.setClean(false); err != nil {
			return nil, fmt.Errorf("msdosfs: %s: marking the volume in use: %w", dev.Name(), err)
		}
		if err := fs.cache.Sync(); err != nil {
			return nil, fmt.Errorf("msdosfs: %s: %w", dev.Name(), err)
		}
	}
	return fs, nil
}

// corrupt logs one line about a corrupt structure and returns EIO.
func (fs *fsys) corrupt(what string, args ...any) error {
	fs.log.Error("msdosfs: corrupt file system: "+fmt.Sprintf(what, args...), "device", fs.dev.Name())
	return syscall.EIO
}

// readAt reads len(p) bytes at byte offset off of the device through the
// cache.
func (fs *fsys) readAt(p []byte, off int64) error {
	bs := int64(fs.g.bps)
	for len(p) > 0 {
		blk, in := off/bs, off%bs
		b, err := fs.cache.Get(blk)
		if err != nil {
			return err
		}
		n := copy(p, b.Data()[in:])
		b.Release()
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// writeAt writes p at byte offset off of the device through the cache;
// whole blocks are not read first.
func (fs *fsys) writeAt(p []byte, off int64) error {
	bs := int64(fs.g.bps)
	for len(p) > 0 {
		blk, in := off/bs, off%bs
		var b *blkdev.Buf
		var err error
		if in == 0 && int64(len(p)) >= bs {
			b, err = fs.cache.GetNew(blk)
		} else {
			b, err = fs.cache.Get(blk)
		}
		if err != nil {
			return err
		}
		n := copy(b.Data()[in:], p)
		b.MarkDirty()
		b.Release()
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// zeroAt writes n zero bytes at off.
func (fs *fsys) zeroAt(off, n int64) error {
	var z [4096]byte
	for n > 0 {
		k := min(n, int64(len(z)))
		if err := fs.writeAt(z[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// fatGet returns the FAT entry of cluster c from the active FAT.
func (fs *fsys) fatGet(c uint32) (uint32, error) {
	g := fs.g
	off := g.fatOffset(g.activeFAT, c)
	var b [4]byte
	switch g.fatType {
	case fat12:
		if err := fs.readAt(b[:2], off); err != nil {
			return 0, err
		}
		v := uint32(binary.LittleEndian.Uint16(b[:]))
		// [fatgen103 §3.5: odd cluster: high 12 bits; even: low 12 bits]
		if c&1 != 0 {
			return v >> 4, nil
		}
		return v & 0xFFF, nil
	case fat16:
		if err := fs.readAt(b[:2], off); err != nil {
			return 0, err
		}
		return uint32(binary.LittleEndian.Uint16(b[:])), nil
	}
	if err := fs.readAt(b[:], off); err != nil {
		return 0, err
	}
	// [fatgen103 §4: the high 4 bits of a FAT32 entry are reserved]
	return binary.LittleEndian.Uint32(b[:]) & 0x0FFFFFFF, nil
}

// fatSet sets the FAT entry of cluster c in every FAT copy (only the
// active one when FAT32 mirroring is off), keeping the reserved high bits
// of FAT32 entries and the neighbour's nibble of FAT12 entries.
func (fs *fsys) fatSet(c, v uint32) error {
	g := fs.g
	for n := uint32(0); n < g.nfats; n++ {
		if !g.mirror && n != g.activeFAT {
			continue
		}
		off := g.fatOffset(n, c)
		var b [4]byte
		switch g.fatType {
		case fat12:
			if err := fs.readAt(b[:2], off); err != nil {
				return err
			}
			old := binary.LittleEndian.Uint16(b[:])
			if c&1 != 0 {
				old = old&0x000F | uint16(v&0xFFF)<<4
			} else {
				old = old&0xF000 | uint16(v&0xFFF)
			}
			binary.LittleEndian.PutUint16(b[:], old)
			if err := fs.writeAt(b[:2], off); err != nil {
				return err
			}
		case fat16:
			binary.LittleEndian.PutUint16(b[:], uint16(v))
			if err := fs.writeAt(b[:2], off); err != nil {
				return err
			}
		default:
			if err := fs.readAt(b[:], off); err != nil {
				return err
			}
			old := binary.LittleEndian.Uint32(b[:])
			binary.LittleEndian.PutUint32(b[:], old&0xF0000000|v&0x0FFFFFFF)
			if err := fs.writeAt(b[:], off); err != nil {
				return err
			}
		}
	}
	return nil
}

// countFree scans the active FAT for free clusters, and takes the FSInfo
// next-free hint when it is plausible. (The FSInfo free count is only a
// hint [fatgen103 §5]; the scan is the truth.)
func (fs *fsys) countFree() error {
	g := fs.g
	fs.freeCount = 0
	fs.nextFree = 0
	last := g.maxCluster()
	base := g.fatOffset(g.activeFAT, 0)
	// Entries are read a chunk of whole sectors at a time; a FAT12 entry
	// may straddle two chunks, so each chunk is read with one extra byte.
	const chunk = 64 << 10
	span := int64(g.fatSz) * int64(g.bps)
	need := g.fatOffset(g.activeFAT, last) - base + 4
	if need < span {
		span = need
	}
	buf := make([]byte, chunk+g.bps)
	c := uint32(2)
	for off := int64(0); off < span && c <= last; off += chunk {
		n := min(int64(len(buf)), int64(g.fatSz)*int64(g.bps)-off)
		n -= n % int64(g.bps)
		if n <= 0 {
			break
		}
		data := buf[:n]
		if err := fs.readAt(data, base+off); err != nil {
			return err
		}
		for ; c <= last; c++ {
			o := g.fatOffset(0, c) - g.fatOffset(0, 0) - off
			var v uint32
			switch g.fatType {
			case fat12:
				if o+2 > n || o >= chunk {
					goto next
				}
				v = uint32(binary.LittleEndian.Uint16(data[o:]))
				if c&1 != 0 {
					v >>= 4
				}
				v &= 0xFFF
			case fat16:
				if o+2 > n || o >= chunk {
					goto next
				}
				v = uint32(binary.LittleEndian.Uint16(data[o:]))
			default:
				if o+4 > n || o >= chunk {
					goto next
				}
				v = binary.LittleEndian.Uint32(data[o:]) & 0x0FFFFFFF
			}
			if v == 0 {
				fs.freeCount++
				if fs.nextFree == 0 {
					fs.nextFree = c
				}
			}
		}
	next:
	}
	if fs.nextFree == 0 {
		fs.nextFree = 2
	}
	if g.fatType == fat32 && g.fsInfo != 0 {
		sec := make([]byte, g.bps)
		if err := fs.readAt(sec, int64(g.fsInfo)*int64(g.bps)); err == nil &&
			binary.LittleEndian.Uint32(sec[fsiLeadSig:]) == fsiLeadSigVal &&
			binary.LittleEndian.Uint32(sec[fsiStrucSig:]) == fsiStrucSigVal {
			if h := binary.LittleEndian.Uint32(sec[fsiNxtFree:]); h >= 2 && h <= last {
				fs.nextFree = h
			}
		}
	}
	return nil
}

// writeFSInfo stores the free count and next-free hint in the FAT32 FSInfo
// sector, when the volume has a valid one.
func (fs *fsys) writeFSInfo() error {
	g := fs.g
	if g.fatType != fat32 || g.fsInfo == 0 || fs.ro {
		return nil
	}
	off := int64(g.fsInfo) * int64(g.bps)
	sec := make([]byte, 512)
	if err := fs.readAt(sec, off); err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(sec[fsiLeadSig:]) != fsiLeadSigVal ||
		binary.LittleEndian.Uint32(sec[fsiStrucSig:]) != fsiStrucSigVal ||
		binary.LittleEndian.Uint32(sec[fsiTrailSig:]) != fsiTrailSigVal {
		return nil // not an FSInfo sector: leave it alone
	}
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], fs.freeCount)
	binary.LittleEndian.PutUint32(b[4:], fs.nextFree)
	if string(sec[fsiFreeCount:fsiFreeCount+8]) == string(b[:]) {
		return nil
	}
	return fs.writeAt(b[:], off+fsiFreeCount)
}

// setClean sets or clears the clean-shutdown bit of FAT[1] (FAT16 and
// FAT32; FAT12 has none) and flushes it.
func (fs *fsys) setClean(clean bool) error {
	var bit uint32
	switch fs.g.fatType {
	case fat16:
		bit = clnShut16
	case fat32:
		bit = clnShut32
	default:
		return nil
	}
	v, err := fs.fatGet(1)
	if err != nil {
		return err
	}
	if v&bit == 0 && !clean {
		// Leave it marked dirty at unmount too, so that a checker still
		// sees what happened before this mount.
		fs.log.Warn("msdosfs: volume was not cleanly unmounted; run fsck.fat")
		fs.wasDirty = true
		return nil
	}
	if clean && fs.wasDirty {
		return nil
	}
	nv := v &^ bit
	if clean {
		nv |= bit
	}
	if nv == v {
		return nil
	}
	return fs.fatSet(1, nv)
}

// chain returns the cluster chain starting at first (nil for 0). A chain
// that leaves the volume, meets a free or bad cluster, or is longer than
// the volume (a cycle) is corrupt: EIO.
func (fs *fsys) chain(first uint32, what string) ([]uint32, error) {
	if first == 0 {
		return nil, nil
	}
	g := fs.g
	var out []uint32
	c := first
	for {
		if c < 2 || c > g.maxCluster() {
			return nil, fs.corrupt("%s: cluster %d out of range", what, c)
		}
		if uint32(len(out)) >= g.clusters {
			return nil, fs.corrupt("%s: cluster chain loops", what)
		}
		out = append(out, c)
		next, err := fs.fatGet(c)
		if err != nil {
			return nil, err
		}
		if next >= g.eocMin() {
			return out, nil
		}
		if next == 0 || next == g.badCluster() || next < 2 {
			return nil, fs.corrupt("%s: cluster chain runs into free or bad cluster (%d -> %#x)", what, c, next)
		}
		c = next
	}
}

// alloc allocates n clusters linked into a chain and appended to the chain
// ending at last (0: a new chain). It prefers the clusters just after last,
// then the next-free hint onward. Each new cluster is zeroed when zero is
// set. ENOSPC when fewer than n are free.
func (fs *fsys) alloc(n int, last uint32, zero bool) ([]uint32, error) {
	if n <= 0 {
		return nil, nil
	}
	if fs.ro {
		return nil, syscall.EROFS
	}
	if uint32(n) > fs.freeCount {
		return nil, syscall.ENOSPC
	}
	g := fs.g
	out := make([]uint32, 0, n)
	start := fs.nextFree
	if last != 0 && last < g.maxCluster() {
		start = last + 1
	}
	if start < 2 || start > g.maxCluster() {
		start = 2
	}
	c := start
	for scanned := uint32(0); len(out) < n && scanned < g.clusters; scanned++ {
		v, err := fs.fatGet(c)
		if err != nil {
			return nil, err
		}
		if v == 0 {
			out = append(out, c)
		}
		c++
		if c > g.maxCluster() {
			c = 2
		}
	}
	if len(out) < n {
		// The free count was wrong: recount so Statvfs tells the truth.
		fs.log.Warn("msdosfs: free cluster count was wrong; recounting")
		if err := fs.countFree(); err != nil {
			return nil, err
		}
		return nil, syscall.ENOSPC
	}
	// Link back to front so that a failure leaves no reachable half chain.
	for i := len(out) - 1; i >= 0; i-- {
		next := g.eoc()
		if i+1 < len(out) {
			next = out[i+1]
		}
		if err := fs.fatSet(out[i], next); err != nil {
			return nil, err
		}
		if zero {
			if err := fs.zeroAt(g.clusterOffset(out[i]), int64(g.clusterSize)); err != nil {
				return nil, err
			}
		}
	}
	fs.freeCount -= uint32(n)
	fs.nextFree = out[len(out)-1] + 1
	if fs.nextFree > g.maxCluster() {
		fs.nextFree = 2
	}
	if last != 0 {
		if err := fs.fatSet(last, out[0]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// free returns the clusters to the free pool and drops their cached data.
func (fs *fsys) free(clusters []uint32) error {
	g := fs.g
	for _, c := range clusters {
		if err := fs.fatSet(c, 0); err != nil {
			return err
		}
		fs.freeCount++
		if c < fs.nextFree {
			fs.nextFree = c
		}
		first := g.clusterOffset(c) / int64(g.bps)
		for s := int64(0); s < int64(g.spc); s++ {
			fs.cache.Invalidate(first + s)
		}
	}
	return nil
}

// Root returns the root directory's inode number.
func (fs *fsys) Root() uint64 { return rootIno }

// Statvfs reports cluster counts.
func (fs *fsys) Statvfs() (vnodeops.Statvfs, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	st := vnodeops.Statvfs{
		Bsize:   fs.g.clusterSize,
		Frsize:  fs.g.clusterSize,
		Blocks:  uint64(fs.g.clusters),
		Bfree:   uint64(fs.freeCount),
		Bavail:  uint64(fs.freeCount),
		Namemax: 255,
	}
	if fs.ro {
		st.Flags |= vnodeops.StRdonly
	}
	return st, nil
}

// Sync writes the FSInfo sector and every dirty buffer.
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

// writeBackLocked writes FSInfo and every dirty buffer to the device,
// without syncing it. The caller holds fs.mu.
func (fs *fsys) writeBackLocked() error {
	if fs.ro || fs.unmounted {
		return nil
	}
	if err := fs.writeFSInfo(); err != nil {
		return err
	}
	return fs.cache.WriteBack()
}

// Unmount syncs, sets the clean bit and closes the device.
func (fs *fsys) Unmount(bool) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.unmounted {
		return nil
	}
	var err error
	if !fs.ro {
		err = fs.syncLocked()
		if err == nil {
			err = fs.setClean(true)
		}
		if err == nil {
			err = fs.cache.Sync()
		}
	}
	fs.unmounted = true
	if cerr := fs.dev.Close(); err == nil && cerr != nil {
		err = syscall.EIO
	}
	return err
}
