package cd9660

import (
	"sync"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

const (
	// maxSections bounds the records of one multi-extent file (6.5.1):
	// 4096 sections of up to 4 GiB each.
	maxSections = 4096
	// defaultFileMode and defaultDirMode are the permissions of files
	// and directories without Rock Ridge.
	defaultFileMode = 0o444
	defaultDirMode  = 0o555
)

// section is one file section (ECMA-119 6.5.1): an extent of the file.
type section struct {
	extent int64 // first logical block of the extent
	ear    int64 // blocks of extended attribute record before the data
	size   int64 // data length in bytes
	unit   int64 // file unit size in blocks; 0: not interleaved (6.4.3)
	gap    int64 // interleave gap size in blocks
}

// node is one file; it implements vnodeops.Vnode and vnodeops.Xattrs
// (aaip.go) and nothing that writes, so every writing operation is EROFS
// in the kernel. Its fields are set by readNode and never change; zmu
// guards the zisofs block cache.
type node struct {
	fs    *fsys
	ino   uint64
	rec   int64 // byte address of the record read: a file's (first), a directory's "."
	attr  vnodeops.Attr
	isDir bool
	// directories: the extent holding the records, and ".."'s inode
	// (0: the directory it was found in, see fsys.parents)
	dirLen int64
	dotdot uint64
	// files
	sections []section
	rawSize  int64 // sum of the sections' sizes
	link     string
	isLink   bool
	zf       *zfInfo

	zmu   sync.Mutex
	zblk  int64 // index of the cached decompressed block, -1: none
	zdata []byte
}

var _ vnodeops.Vnode = (*node)(nil)

// suOf parses the System Use area of rec when Rock Ridge is in use; nil
// without Rock Ridge. The root's "." keeps its SP at offset 0 (SUSP 5.3);
// every other area starts after LEN_SKP bytes.
func (fs *fsys) suOf(rec *dirRec, ino uint64) (*suInfo, error) {
	if !fs.rr {
		return nil, nil
	}
	info, problem := fs.parseSU(rec, fs.skipOf(rec))
	if problem != "" {
		return nil, fs.corrupt(ino, "%s", problem)
	}
	return info, nil
}

// skipOf returns the bytes to skip at the start of rec's System Use area.
func (fs *fsys) skipOf(rec *dirRec) int {
	if uint64(rec.addr) == fs.rootIno && rec.isDot() {
		return 0
	}
	return fs.suSkip
}

// readNode builds the node of ino from its directory record.
func (fs *fsys) readNode(ino uint64) (*node, error) {
	rec, err := fs.readRecord(int64(ino))
	if err != nil {
		return nil, err
	}
	n := &node{fs: fs, ino: ino, rec: rec.addr, zblk: -1}
	devSize := fs.dev.Size()
	bs := int64(fs.bs)
	if rec.flags&flagDir != 0 {
		// A directory's inode is its "." record, the first of its extent.
		if !rec.isDot() || fs.dirIno(&rec) != ino {
			return nil, fs.corrupt(ino, "directory inode is not the directory's \".\" record")
		}
		if rec.flags&flagMultiExt != 0 || rec.unitSize != 0 {
			return nil, fs.corrupt(ino, "multi-extent or interleaved directory")
		}
		n.isDir = true
		n.dirLen = int64(rec.size)
		if n.dirLen < 2*drMinLength || int64(ino) > devSize-n.dirLen {
			return nil, fs.corrupt(ino, "directory extent of %d bytes at byte %d does not fit the device", n.dirLen, ino)
		}
		dd, err := fs.readRecord(int64(ino) + int64(rec.length))
		if err != nil {
			return nil, err
		}
		if !dd.isDotDot() || dd.flags&flagDir == 0 {
			return nil, fs.corrupt(ino, "second record of a directory is not \"..\"")
		}
		n.dotdot = fs.dirIno(&dd)
		if ddi, err := fs.suOf(&dd, ino); err != nil {
			return nil, err
		} else if ddi != nil && ddi.hasPL {
			// RRIP 4.1.5.2: a relocated directory's real parent.
			n.dotdot = uint64(ddi.pl) * uint64(bs)
		}
		switch {
		case ino == fs.rootIno:
			n.dotdot = ino
		case n.dotdot == ino:
			// libisofs (1.5.4 at least) records ".." of every Joliet
			// subdirectory as the directory itself; its parent is the
			// directory it was found in.
			n.dotdot = 0
		}
	} else {
		if rec.isDot() || rec.isDotDot() {
			return nil, fs.corrupt(ino, "\".\" or \"..\" record without the directory flag")
		}
		if err := n.gatherSections(rec); err != nil {
			return nil, err
		}
	}
	n.attr = vnodeops.Attr{
		Nlink:   1,
		BlkSize: uint32(bs),
		Ino:     ino,
	}
	t := decodeTime7(rec.recTime)
	n.attr.Atime, n.attr.Mtime, n.attr.Ctime = t, t, t
	if n.isDir {
		n.attr.Mode = vnodeops.S_IFDIR | defaultDirMode
		n.attr.Nlink = 2
		n.attr.Size = uint64(n.dirLen)
	} else {
		n.attr.Mode = vnodeops.S_IFREG | defaultFileMode
		n.attr.Size = uint64(n.rawSize)
	}
	n.attr.Blocks = (uint64(n.rawSize+n.dirLen) + uint64(bs) - 1) / uint64(bs) * uint64(bs) / 512
	info, err := fs.suOf(&rec, ino)
	if err != nil {
		return nil, err
	}
	if info != nil {
		if err := n.applyRR(info); err != nil {
			return nil, err
		}
		if !n.isDir {
			n.ino = fs.linkIno(&rec, info)
			n.attr.Ino = n.ino
		}
	}
	return n, nil
}

// gatherSections collects the file sections of the file whose first
// record is rec: it and the records after it while the multi-extent flag
// is set (6.5.1, 9.1.6), each with the same identifier. The records
// follow one another in the directory, skipping to the next sector at a
// zero length byte (6.8.1.1).
func (n *node) gatherSections(rec dirRec) error {
	fs := n.fs
	bs := int64(fs.bs)
	devSize := fs.dev.Size()
	name := append([]byte(nil), rec.name...)
	for {
		s := section{extent: int64(rec.extent), ear: int64(rec.earLen), size: int64(rec.size)}
		if rec.unitSize != 0 || rec.gapSize != 0 {
			if rec.unitSize == 0 {
				return fs.corrupt(n.ino, "interleave gap %d with file unit size 0", rec.gapSize)
			}
			s.unit, s.gap = int64(rec.unitSize), int64(rec.gapSize)
		}
		if s.size > 0 {
			// The last block the section touches must be on the device.
			nb := s.ear + (s.size+bs-1)/bs
			last := s.extent + nb - 1
			if s.unit > 0 {
				last = s.extent + (nb-1)/s.unit*(s.unit+s.gap) + (nb-1)%s.unit
			}
			if (last+1)*bs > devSize {
				return fs.corrupt(n.ino, "extent at block %d of %d bytes runs past the end of the device", s.extent, s.size)
			}
		}
		n.sections = append(n.sections, s)
		n.rawSize += s.size
		if rec.flags&flagMultiExt == 0 {
			return nil
		}
		if len(n.sections) >= maxSections {
			return fs.corrupt(n.ino, "more than %d file sections", maxSections)
		}
		next := rec.addr + int64(rec.length)
		if next%sectorSize != 0 {
			b, err := fs.readMeta(next, 1)
			if err != nil {
				return fs.corrupt(n.ino, "multi-extent file runs past the device")
			}
			if b[0] == 0 {
				next = (next/sectorSize + 1) * sectorSize
			}
		}
		r, err := fs.readRecord(next)
		if err != nil {
			return err
		}
		if string(r.name) != string(name) || r.flags&flagDir != 0 {
			return fs.corrupt(n.ino, "multi-extent file's next record names another file")
		}
		rec = r
	}
}

// applyRR applies the Rock Ridge attributes of the node's record (RRIP 1.12 4.1).
func (n *node) applyRR(info *suInfo) error {
	fs := n.fs
	if info.hasPX {
		typ := info.mode & vnodeops.S_IFMT
		switch {
		case n.isDir && typ != vnodeops.S_IFDIR, !n.isDir && typ == vnodeops.S_IFDIR:
			return fs.corrupt(n.ino, "PX file type %#o disagrees with the directory flag", typ)
		case typ != vnodeops.S_IFREG && typ != vnodeops.S_IFDIR && typ != vnodeops.S_IFLNK &&
			typ != vnodeops.S_IFCHR && typ != vnodeops.S_IFBLK && typ != vnodeops.S_IFIFO && typ != vnodeops.S_IFSOCK:
			return fs.corrupt(n.ino, "PX file type %#o unknown", typ)
		case info.nlink == 0:
			return fs.corrupt(n.ino, "PX link count 0")
		}
		n.attr.Mode = info.mode & (vnodeops.S_IFMT | vnodeops.PermMask)
		n.attr.Nlink = info.nlink
		n.attr.UID, n.attr.GID = info.uid, info.gid
	}
	if info.hasTF {
		// A time the TF entry leaves out keeps the record's.
		if info.mtime != 0 {
			n.attr.Mtime = info.mtime
		}
		if info.atime != 0 {
			n.attr.Atime = info.atime
		}
		if info.ctime != 0 {
			n.attr.Ctime = info.ctime
		}
		n.attr.Btime = info.btime
	}
	switch n.attr.Mode & vnodeops.S_IFMT {
	case vnodeops.S_IFLNK:
		if !info.hasSL {
			return fs.corrupt(n.ino, "symbolic link without SL entry")
		}
		n.isLink, n.link = true, string(info.link)
		n.attr.Size = uint64(len(n.link))
	case vnodeops.S_IFCHR, vnodeops.S_IFBLK:
		n.attr.Rdev = info.rdev
	case vnodeops.S_IFREG:
		if info.zf != nil {
			if info.zf.log2Block < 15 || info.zf.log2Block > 17 || info.zf.hdrSize < 16 {
				return fs.corrupt(n.ino, "zisofs block size 2^%d or header size %d unsupported", info.zf.log2Block, info.zf.hdrSize)
			}
			n.zf = info.zf
			n.attr.Size = uint64(info.zf.realSize)
		}
	}
	return nil
}

// Lookup finds name in the directory: ".." from the ".." record (or its
// RRIP PL), any other name by reading the records in order.
func (n *node) Lookup(name string) (uint64, error) {
	if !n.isDir {
		return 0, syscall.ENOTDIR
	}
	if name == ".." {
		return n.parent()
	}
	var found uint64
	err := n.entries(0, func(e entry) bool {
		if e.name == name {
			found = e.ino
			if e.typ == vnodeops.DT_DIR {
				n.fs.learnParent(e.ino, n.ino)
			}
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if found == 0 {
		return 0, syscall.ENOENT
	}
	return found, nil
}

// parent returns the inode number of the directory's "..".
func (n *node) parent() (uint64, error) {
	if n.dotdot != 0 {
		return n.dotdot, nil
	}
	if p, ok := n.fs.parentOf(n.ino); ok {
		return p, nil
	}
	return 0, n.fs.corrupt(n.ino, "directory's \"..\" names the directory itself")
}

// Readdir reads the directory from cookie on: cookie 0 is ".", and every
// other cookie is the offset in the directory of the first record of the
// entry to return next (the offset just past the last entry at the end).
func (n *node) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	if !n.isDir {
		return syscall.ENOTDIR
	}
	if cookie >= uint64(n.dirLen) && cookie != 0 {
		return nil
	}
	return n.entries(int64(cookie), func(e entry) bool {
		if e.typ == vnodeops.DT_DIR && e.name != "." && e.name != ".." {
			n.fs.learnParent(e.ino, n.ino)
		}
		return fn(vnodeops.Dirent{Name: e.name, Ino: e.ino, Type: e.typ, Next: uint64(e.next)})
	})
}

// Open accepts every file.
func (n *node) Open(flags int) error { return nil }

// Close does nothing.
func (n *node) Close(flags int) error { return nil }

// Access applies the permission bits; writing is EROFS.
func (n *node) Access(want uint32, cred vnodeops.Cred) error {
	if want&vnodeops.AccessWrite != 0 {
		return syscall.EROFS
	}
	return vnodeops.CheckAccess(n.attr, want, cred)
}

// Getattr returns the attributes read at VGet.
func (n *node) Getattr() (vnodeops.Attr, error) { return n.attr, nil }

// Readlink returns a symbolic link's target (RRIP SL).
func (n *node) Readlink() (string, error) {
	if !n.isLink {
		return "", syscall.EINVAL
	}
	return n.link, nil
}

// Inactive does nothing: nothing is ever freed.
func (n *node) Inactive() error { return nil }

// Reclaim drops the zisofs block cache.
func (n *node) Reclaim() error {
	n.zmu.Lock()
	n.zdata = nil
	n.zmu.Unlock()
	return nil
}

// Read reads the file's data: through the zisofs decompressor for a
// compressed file, else straight from its sections.
func (n *node) Read(p []byte, off int64) (int, error) {
	switch {
	case n.isDir:
		return 0, syscall.EISDIR
	case off < 0:
		return 0, syscall.EINVAL
	case n.isLink || n.attr.Mode&vnodeops.S_IFMT != vnodeops.S_IFREG:
		return 0, syscall.EINVAL
	}
	if n.zf != nil {
		return n.readZ(p, off)
	}
	return n.readRaw(p, off)
}

// readRaw reads the recorded bytes of the file at off: the sections one
// after another, each through its interleave.
func (n *node) readRaw(p []byte, off int64) (int, error) {
	if off >= n.rawSize {
		return 0, nil
	}
	p = p[:min(int64(len(p)), n.rawSize-off)]
	bs := int64(n.fs.bs)
	done := 0
	base := int64(0) // file offset of the current section
	for _, s := range n.sections {
		for done < len(p) {
			at := off + int64(done) - base // offset in this section
			if at >= s.size {
				break
			}
			// The byte's block counted from the extent's start, EAR
			// included (6.4.3: the extent is recorded in file units).
			blk := s.ear + at/bs
			within := at % bs
			run := s.size - at // bytes contiguous on the device from here
			dev := s.extent + blk
			if s.unit > 0 {
				dev = s.extent + blk/s.unit*(s.unit+s.gap) + blk%s.unit
				run = min(run, (s.unit-blk%s.unit)*bs-within)
			}
			chunk := int(min(run, int64(len(p)-done)))
			m, err := n.fs.dev.ReadAt(p[done:done+chunk], dev*bs+within)
			done += m
			if err != nil || m != chunk {
				return done, n.fs.corrupt(n.ino, "reading %d bytes at block %d: %v", chunk, dev, err)
			}
		}
		base += s.size
	}
	return done, nil
}
