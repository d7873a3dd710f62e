// Package cd9660 is the ISO 9660 file system driver, read-only, in the
// manner of NetBSD's sys/fs/cd9660: ECMA-119 (= ISO 9660:1988) with the
// Rock Ridge (SUSP 1.12, RRIP 1.12) and Joliet extensions and zisofs
// compressed files.
//
// It registers itself as "cd9660" with package vnodeops. Layout facts are
// cited by section: ECMA-119 2nd edition (layout.go), SUSP/RRIP 1.12
// (susp.go), the Joliet specification (names.go).
//
// # Which tree
//
// A mount serves one directory tree: the primary volume descriptor's with
// Rock Ridge when its root carries SUSP's SP entry and an RRIP extension
// (ER, or RRIP entries on the root); otherwise a Joliet supplementary
// volume descriptor's when there is one; otherwise the primary tree with
// plain ISO names. The options change that choice:
//
//	norrip     ignore Rock Ridge (Joliet if present, else plain names)
//	nojoliet   ignore Joliet
//	nomaptrans keep plain ISO names as recorded (upper case, ";1");
//	           by default they are lower-cased, the version (";1") and a
//	           dot before it are stripped, as NetBSD does
//	gens       keep the version (";1") of plain ISO and Joliet names
//
// An option's value may be empty or a boolean ("false" turns it off);
// other keys are refused with EINVAL naming them.
//
// # Inode numbers
//
// An inode number is the byte address on the device of a directory
// record, as in NetBSD: for a file, the (first) record naming it in its
// directory; for a directory, its own "." record, the first record of its
// extent, which is where both its name in the parent and every ".." below
// it point (ECMA-119 6.8.2.2; RRIP CL and PL give the same address for
// relocated directories). So numbers are stable across mounts, and a
// directory's ".." answers the number under which its parent was found.
//
// Hard links are the exception: Rock Ridge records (RRIP 1.12's PX with
// its file serial number, as xorriso writes with --hardlinks) that share
// a serial number, a link count above 1 and the same attributes and data
// are one file, and every name of it answers one number: the address of
// the first of its records the mount met (by Lookup, Readdir or VGet).
// That number is the same across mounts when the names are met in the
// same order; VGet of any of the records' addresses gives the file, with
// the shared number. At most 65536 such files are remembered per mount;
// names met after that keep their own numbers. Without serial numbers
// (RRIP 1.10, Joliet, plain ISO) each name has its own number, and the
// link count is PX's (1 without Rock Ridge).
//
// # What is shown
//
// Associated files (flag bit 2) are shown with a "=" in front of their
// name, as NetBSD does; hidden files (the "existence" bit) are shown.
// With Rock Ridge, a relocated directory's own record (RE; or, as
// NetBSD's makefs writes no RE, a directory whose ".." carries PL) is not
// shown and its placeholder (CL) stands for it. A file recorded in several
// versions appears once, by its first (highest, 9.3) version. Without
// Rock Ridge, files have mode 0444 and directories 0555, owned by root.
//
// # Extended attributes
//
// With Rock Ridge, files serve the extended attributes and POSIX ACLs
// xorriso records with AAIP 2.0 ("AL" entries, aaip.go): user.*,
// trusted.* and security.* as recorded, system.posix_acl_access and
// system.posix_acl_default in Linux's xattr form; libisofs's own isofs.*
// attributes are not shown. AL entries are read where the spec allows
// them: announced by an "AAIP_0200" ER, or unannounced beside RRIP 1.10
// ("RRIP_1991A", xorriso's default). A malformed list makes the file's
// attribute calls EIO; its other calls are unaffected.
//
// # Errors
//
// Every value read from the image is checked before use (both-endian
// halves, record lengths, extents against the device, SUSP chains); a
// bad one is EIO and one log line naming the inode. Interleaved files
// (file unit size and gap, ECMA-119 6.4.3) are read through the
// interleave. The driver never writes: there is no vnodeops.Writer, so
// the kernel answers EROFS to every writing call.
package cd9660

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

func init() {
	vnodeops.Register(vnodeops.Driver{
		Name:        "cd9660",
		NeedsDevice: true,
		Probe:       Probe,
		Mount:       Mount,
	})
}

// Probe reports whether r holds an ISO 9660 volume descriptor set: a
// descriptor with the standard identifier "CD001" at sector 16 (8.1.2).
func Probe(r io.ReaderAt, size int64) bool {
	if size < (vdsStart+1)*sectorSize {
		return false
	}
	var b [7]byte
	if n, err := r.ReadAt(b[:], vdsStart*sectorSize); n != len(b) && err != nil {
		return false
	}
	return string(b[vdIDOff:vdIDOff+5]) == string(stdID) && b[vdVersionOff] == 1
}

// Mount options (see the package comment).
const (
	optNoRRIP     = "norrip"
	optNoJoliet   = "nojoliet"
	optNoMapTrans = "nomaptrans"
	optGens       = "gens"
)

// fsys is a mounted ISO 9660 file system; it implements vnodeops.FS. Its
// only mutable state is the cache, which is safe for concurrent use, the
// parents map under parentMu and the links map under linkMu.
type fsys struct {
	dev   blkdev.Device
	cache *blkdev.Cache
	log   *slog.Logger

	bs       int   // logical block size (8.4.12)
	blocks   int64 // volume space size in blocks (8.4.8)
	rootIno  uint64
	rr       bool // Rock Ridge in use
	aaip     bool // AAIP AL entries are honoured (aaipAnnounced)
	suSkip   int  // SP's LEN_SKP: bytes to skip in every System Use area
	joliet   int  // Joliet level (1-3) when the Joliet tree is served, else 0
	mapTrans bool // lower-case plain names, strip versions
	gens     bool // keep versions
	volumeID string

	// parents maps a directory to the directory it was last found in,
	// for directories whose ".." record names themselves (see readNode).
	parentMu sync.Mutex
	parents  map[uint64]uint64

	// links maps a PX serial number to the hard-linked file that has it
	// (see linkIno).
	linkMu sync.Mutex
	links  map[uint32]linkSet
}

// learnParent records that directory dir was found in directory parent.
func (fs *fsys) learnParent(dir, parent uint64) {
	fs.parentMu.Lock()
	defer fs.parentMu.Unlock()
	if fs.parents == nil {
		fs.parents = map[uint64]uint64{}
	}
	fs.parents[dir] = parent
}

// parentOf returns the directory dir was last found in.
func (fs *fsys) parentOf(dir uint64) (uint64, bool) {
	fs.parentMu.Lock()
	defer fs.parentMu.Unlock()
	p, ok := fs.parents[dir]
	return p, ok
}

var errCorrupt = syscall.EIO

// corrupt logs one line naming the inode (0: none) and returns EIO.
func (fs *fsys) corrupt(ino uint64, format string, args ...any) error {
	fs.log.Error("cd9660: corrupt file system", "ino", ino, "problem", fmt.Sprintf(format, args...))
	return errCorrupt
}

// mountErr is a mount failure that wraps an errno.
func mountErr(e syscall.Errno, format string, args ...any) error {
	return fmt.Errorf("cd9660: %s: %w", fmt.Sprintf(format, args...), e)
}

// parseOpts reads the mount options: the tree choices.
func parseOpts(opts map[string]string) (noRRIP, noJoliet, noMap, gens bool, err error) {
	o := vnodeops.ReadOptions(opts)
	noRRIP = o.Bool(optNoRRIP, false)
	noJoliet = o.Bool(optNoJoliet, false)
	noMap = o.Bool(optNoMapTrans, false)
	gens = o.Bool(optGens, false)
	if err := o.Err(); err != nil {
		return false, false, false, false, mountErr(syscall.EINVAL, "%v", err)
	}
	return noRRIP, noJoliet, noMap, gens, nil
}

// Mount reads the volume descriptor set of a.Dev and returns the file
// system: EINVAL for a bad option or a device that holds no ISO 9660
// volume, EIO for a corrupt descriptor or root directory. A mount is
// always read-only, whatever a.ReadOnly says.
func Mount(a vnodeops.MountArgs) (vnodeops.FS, error) {
	if a.Dev == nil {
		return nil, mountErr(syscall.EINVAL, "no device")
	}
	noRRIP, noJoliet, noMap, gens, err := parseOpts(a.Options)
	if err != nil {
		return nil, err
	}
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fs := &fsys{dev: a.Dev, log: log, mapTrans: !noMap, gens: gens}
	budget := a.CacheBytes
	if budget <= 0 {
		budget = 8 << 20
	}
	fs.cache = blkdev.NewCache(a.Dev, sectorSize, budget)
	pvd, svd, err := fs.readVDS(noJoliet)
	if err != nil {
		return nil, err
	}
	root, err := fs.vdRoot(pvd)
	if err != nil {
		return nil, err
	}
	fs.rootIno = fs.dirIno(&root)
	if !noRRIP {
		if fs.rr, err = fs.detectRR(&root); err != nil {
			return nil, err
		}
	}
	if !fs.rr && svd != nil {
		jroot, err := fs.vdRoot(svd)
		if err != nil {
			return nil, err
		}
		fs.joliet = jolietLevel(svd)
		fs.rootIno = fs.dirIno(&jroot)
	}
	// The root's "." record must be where the descriptor says.
	if _, err := fs.readNode(fs.rootIno); err != nil {
		return nil, mountErr(syscall.EIO, "root directory unreadable")
	}
	return fs, nil
}

// readVDS walks the volume descriptor set (8.1, 8.3) from sector 16 to the
// terminator and returns the primary descriptor and the Joliet
// supplementary one (nil when absent or ignored). Boot records (El
// Torito), partition descriptors and other supplementary descriptors are
// skipped; whatever follows the terminator (a UDF bridge's "BEA01"...) is
// never read.
func (fs *fsys) readVDS(noJoliet bool) (pvd, svd []byte, err error) {
	for i := range maxVDs {
		sec := int64(vdsStart + i)
		b, err := fs.readMeta(sec*sectorSize, sectorSize)
		if err != nil {
			if i == 0 {
				return nil, nil, mountErr(syscall.EINVAL, "device %s too small for ISO 9660", fs.dev.Name())
			}
			return nil, nil, mountErr(syscall.EIO, "volume descriptor set runs past the device (no terminator)")
		}
		if string(b[vdIDOff:vdIDOff+5]) != string(stdID) {
			if i == 0 {
				return nil, nil, mountErr(syscall.EINVAL, "no ISO 9660 volume descriptor at sector 16")
			}
			return nil, nil, mountErr(syscall.EIO, "volume descriptor %d has no standard identifier", sec)
		}
		switch b[0] {
		case vdTerminator:
			if pvd == nil {
				return nil, nil, mountErr(syscall.EINVAL, "no primary volume descriptor")
			}
			return pvd, svd, nil
		case vdPrimary:
			if pvd == nil {
				pvd = b
			}
		case vdSupplement:
			if svd == nil && !noJoliet && jolietLevel(b) > 0 {
				svd = b
			}
		}
	}
	return nil, nil, mountErr(syscall.EIO, "no volume descriptor set terminator in %d sectors", maxVDs)
}

// jolietLevel returns the Joliet level of a supplementary volume
// descriptor from its escape sequences (Joliet specification 5.1: "%/@",
// "%/C", "%/E" for levels 1, 2, 3), or 0 for another kind of SVD.
func jolietLevel(svd []byte) int {
	esc := svd[vdEscapeOff : vdEscapeOff+32]
	for i := 0; i+3 <= len(esc); i++ {
		if esc[i] != '%' || esc[i+1] != '/' {
			continue
		}
		switch esc[i+2] {
		case '@':
			return 1
		case 'C':
			return 2
		case 'E':
			return 3
		}
	}
	return 0
}

// vdRoot validates a primary or supplementary descriptor's geometry and
// returns its root directory record (8.4.18). The first descriptor read
// sets the block size; a second must agree.
func (fs *fsys) vdRoot(vd []byte) (dirRec, error) {
	bs, ok1 := both16(vd[vdBlockSizeOff:])
	space, ok2 := both32(vd[vdSpaceSizeOff:])
	_, ok3 := both16(vd[vdSetSizeOff:])
	_, ok4 := both16(vd[vdSeqNumOff:])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return dirRec{}, mountErr(syscall.EIO, "both-endian fields of the volume descriptor disagree")
	}
	// 6.2.2: the logical block size is 2^(n+9), at most the sector size.
	if bs < 512 || bs > sectorSize || bs&(bs-1) != 0 {
		return dirRec{}, mountErr(syscall.EIO, "bad logical block size %d", bs)
	}
	if fs.bs == 0 {
		fs.bs, fs.blocks = int(bs), int64(space)
		fs.volumeID = strings.TrimRight(string(vd[vdVolumeIDOff:vdVolumeIDOff+32]), " ")
	} else if fs.bs != int(bs) {
		return dirRec{}, mountErr(syscall.EIO, "descriptors disagree on the block size (%d, %d)", fs.bs, bs)
	}
	rb := vd[vdRootOff : vdRootOff+34]
	r, problem := parseDirRec(rb, 0)
	switch {
	case problem != "":
		return r, mountErr(syscall.EIO, "root directory record: %s", problem)
	case r.flags&flagDir == 0 || !r.isDot():
		return r, mountErr(syscall.EIO, "root directory record is not a directory")
	}
	return r, nil
}

// dirIno is the inode number of the directory a record names: the
// address of the first record of its extent, its "." (see the package
// comment).
func (fs *fsys) dirIno(r *dirRec) uint64 {
	return (uint64(r.extent) + uint64(r.earLen)) * uint64(fs.bs)
}

// detectRR reports whether the primary tree carries Rock Ridge: the
// root's "." record starts its System Use area with SP (SUSP 5.3), and an
// ER names RRIP or the root has RRIP entries (RRIP 1.12 5.1; old writers
// gave no ER).
func (fs *fsys) detectRR(root *dirRec) (bool, error) {
	dot, err := fs.readRecord(int64(fs.rootIno))
	if err != nil {
		return false, mountErr(syscall.EIO, "root directory unreadable")
	}
	info, problem := fs.parseSU(&dot, 0)
	if problem != "" {
		return false, mountErr(syscall.EIO, "root directory: %s", problem)
	}
	if !info.sp {
		return false, nil
	}
	fs.suSkip = info.spSkip
	fs.aaip = aaipAnnounced(info.erIDs)
	if info.rrip {
		return true, nil
	}
	for _, id := range info.erIDs {
		if rripIDs[id] {
			return true, nil
		}
	}
	return false, nil
}

// readMeta returns n bytes at byte address addr, read through the sector
// cache; EIO when they are not all inside the device.
func (fs *fsys) readMeta(addr int64, n int) ([]byte, error) {
	if addr < 0 || n < 0 || addr > fs.dev.Size()-int64(n) {
		return nil, syscall.EIO
	}
	out := make([]byte, n)
	for done := 0; done < n; {
		at := addr + int64(done)
		buf, err := fs.cache.Get(at / sectorSize)
		if err != nil {
			return nil, err
		}
		done += copy(out[done:], buf.Data()[at%sectorSize:])
		buf.Release()
	}
	return out, nil
}

// readRecord reads the directory record at byte address addr, which must
// lie within the device and not cross its sector.
func (fs *fsys) readRecord(addr int64) (dirRec, error) {
	end := (addr/sectorSize + 1) * sectorSize
	b, err := fs.readMeta(addr, int(end-addr))
	if err != nil {
		return dirRec{}, fs.corrupt(uint64(addr), "directory record at byte %d is outside the device", addr)
	}
	if b[0] == 0 {
		return dirRec{}, fs.corrupt(uint64(addr), "no directory record at byte %d", addr)
	}
	r, problem := parseDirRec(b, addr)
	if problem != "" {
		return r, fs.corrupt(uint64(addr), "%s", problem)
	}
	return r, nil
}

// peekRecord is readRecord without logging: false when there is no
// valid record at addr.
func (fs *fsys) peekRecord(addr int64) (dirRec, bool) {
	end := (addr/sectorSize + 1) * sectorSize
	b, err := fs.readMeta(addr, int(end-addr))
	if err != nil || b[0] == 0 {
		return dirRec{}, false
	}
	r, problem := parseDirRec(b, addr)
	return r, problem == ""
}

// Root returns the inode number of the served tree's root.
func (fs *fsys) Root() uint64 { return fs.rootIno }

// VGet returns the vnode of ino: the file whose directory record is at
// byte ino (see the package comment). EIO when there is no valid record
// there.
func (fs *fsys) VGet(ino uint64) (vnodeops.Vnode, error) {
	if ino > uint64(fs.dev.Size()) {
		return nil, syscall.ENOENT
	}
	return fs.readNode(ino)
}

// Statvfs reports the volume's size; nothing is free.
func (fs *fsys) Statvfs() (vnodeops.Statvfs, error) {
	nameMax := uint32(maxName)
	return vnodeops.Statvfs{
		Bsize:   uint32(fs.bs),
		Frsize:  uint32(fs.bs),
		Blocks:  uint64(fs.blocks),
		Namemax: nameMax,
		Flags:   vnodeops.StRdonly,
	}, nil
}

// Sync does nothing: nothing is ever written.
func (fs *fsys) Sync() error { return nil }

// Unmount closes the device.
func (fs *fsys) Unmount(force bool) error {
	if err := fs.dev.Close(); err != nil && !errors.Is(err, syscall.EBADF) {
		return syscall.EIO
	}
	return nil
}
