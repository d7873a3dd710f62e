package cd9660

import (
	"github.com/rump9p/rump9p/vnodeops"
)

// maxLinkSets bounds the hard-link map: past it, the names of a file met
// for the first time keep their own inode numbers (see linkIno).
const maxLinkSets = 1 << 16

// linkSet is what every name of a hard-linked file records alike: the
// inode number its names share, and the attributes that must agree for
// two records with the same PX serial number to be taken as one file.
type linkSet struct {
	ino      uint64 // the address of the first record met
	mode     uint32
	nlink    uint32
	uid, gid uint32
	rdev     uint64
	extent   uint32 // the first section's extent and size
	size     uint32
}

// linkIno returns the inode number of the non-directory file whose
// (first) record is rec, with Rock Ridge entries info: its own address,
// unless PX gives a serial number (RRIP 1.12 4.1.1) and a link count
// above 1, in which case every record with that serial and the same
// attributes and data answers the address of the first such record this
// mount met. Records that share a serial but disagree on the rest keep
// their own numbers (a writer whose serials are not unique per file);
// directories always keep theirs, so that ".." stays right.
func (fs *fsys) linkIno(rec *dirRec, info *suInfo) uint64 {
	own := uint64(rec.addr)
	if info == nil || !info.hasPX || !info.hasSerial || info.nlink < 2 || info.hasCL || info.re ||
		rec.flags&flagDir != 0 || info.mode&vnodeops.S_IFMT == vnodeops.S_IFDIR {
		return own
	}
	want := linkSet{ino: own, mode: info.mode, nlink: info.nlink, uid: info.uid, gid: info.gid,
		rdev: info.rdev, extent: rec.extent, size: rec.size}
	fs.linkMu.Lock()
	defer fs.linkMu.Unlock()
	if s, ok := fs.links[info.serial]; ok {
		cmp := s
		cmp.ino = own
		if cmp == want {
			return s.ino
		}
		return own
	}
	if len(fs.links) >= maxLinkSets {
		return own
	}
	if fs.links == nil {
		fs.links = map[uint32]linkSet{}
	}
	fs.links[info.serial] = want
	return own
}
