package cd9660

import (
	"github.com/rump9p/rump9p/vnodeops"
)

// entry is one name of a directory as Readdir and Lookup see it.
type entry struct {
	name string
	ino  uint64
	typ  uint8
	next int64 // the cookie after it
}

// records calls fn for each directory record of n whose offset in the
// directory is at least from, in order. Records never cross a logical
// sector, and a zero length byte ends a sector's records (ECMA-119
// 6.8.1.1); so scanning starts at the beginning of from's sector, which
// keeps a cookie that is not on a record boundary harmless.
func (n *node) records(from int64, fn func(rel int64, rec *dirRec) (bool, error)) error {
	fs := n.fs
	start := int64(n.ino)
	end := start + n.dirLen
	pos := start + from
	for scan := max(start, pos/sectorSize*sectorSize); scan < end; {
		secEnd := min((scan/sectorSize+1)*sectorSize, end)
		b, err := fs.readMeta(scan, int(secEnd-scan))
		if err != nil {
			return fs.corrupt(n.ino, "directory sector at byte %d unreadable", scan)
		}
		for i := 0; i < len(b) && b[i] != 0; {
			rec, problem := parseDirRec(b[i:], scan+int64(i))
			if problem != "" {
				return fs.corrupt(n.ino, "at directory offset %d: %s", scan+int64(i)-start, problem)
			}
			if scan+int64(i) >= pos {
				more, err := fn(scan+int64(i)-start, &rec)
				if err != nil || !more {
					return err
				}
			}
			i += rec.length
		}
		scan = secEnd
	}
	return nil
}

// entries calls fn for each entry of the directory from cookie from on
// (see Readdir) until fn returns false. An entry covers the records of a
// multi-extent file and the older versions of a file recorded after its
// newest one (9.3); its cookie is the offset of the record after them.
func (n *node) entries(from int64, fn func(entry) bool) error {
	var pend *entry
	cont := false // the previous record continues in this one
	stop := false
	var firstLen int64
	err := n.records(from, func(rel int64, rec *dirRec) (bool, error) {
		if rel == 0 {
			firstLen = int64(rec.length)
		}
		isCont := cont
		cont = rec.flags&flagMultiExt != 0
		if isCont {
			return true, nil
		}
		var e *entry
		switch {
		case rel == 0 && rec.isDot():
			e = &entry{name: ".", ino: n.ino, typ: vnodeops.DT_DIR}
		case (rel == firstLen || from == rel) && rec.isDotDot():
			dd, err := n.parent()
			if err != nil {
				return false, err
			}
			e = &entry{name: "..", ino: dd, typ: vnodeops.DT_DIR}
		case rec.isDot() || rec.isDotDot():
			return true, nil // misplaced; nothing to show
		default:
			var err error
			if e, err = n.recordEntry(rec); err != nil {
				return false, err
			}
			if e == nil || (pend != nil && e.name == pend.name) {
				return true, nil // hidden, or an older version
			}
		}
		if pend != nil {
			pend.next = rel
			if !fn(*pend) {
				stop = true
				return false, nil
			}
		}
		pend = e
		return true, nil
	})
	if err != nil || stop {
		return err
	}
	if pend != nil {
		pend.next = n.dirLen
		fn(*pend)
	}
	return nil
}

// recordEntry returns the entry a file record makes, or nil for a record
// that is not shown (RRIP RE: a relocated directory's own record).
func (n *node) recordEntry(rec *dirRec) (*entry, error) {
	fs := n.fs
	e := &entry{ino: uint64(rec.addr), typ: vnodeops.DT_REG}
	if rec.flags&flagDir != 0 {
		e.ino, e.typ = fs.dirIno(rec), vnodeops.DT_DIR
	}
	info, err := fs.suOf(rec, n.ino)
	if err != nil {
		return nil, err
	}
	if info != nil {
		if info.re || !info.hasCL && e.typ == vnodeops.DT_DIR && fs.relocated(e.ino) {
			return nil, nil
		}
		if info.hasCL {
			// RRIP 4.1.5.1: the directory was moved; this record
			// stands in its place.
			e.ino, e.typ = uint64(info.cl)*uint64(fs.bs), vnodeops.DT_DIR
		} else if info.hasPX {
			e.typ = vnodeops.DTFromMode(info.mode)
		}
		if e.typ != vnodeops.DT_DIR {
			e.ino = fs.linkIno(rec, info)
		}
		if info.hasNM {
			e.name = string(info.name)
			if !validName(e.name) {
				return nil, fs.corrupt(n.ino, "Rock Ridge name %q at directory byte %d cannot be a file name", e.name, rec.addr)
			}
			return e, nil
		}
	}
	if e.name = fs.isoName(rec.name, rec.flags); e.name == "" {
		return nil, fs.corrupt(n.ino, "file identifier %q at directory byte %d cannot be a file name", rec.name, rec.addr)
	}
	return e, nil
}

// relocated reports whether the directory whose "." record is at ino
// was moved where it is (RRIP 4.1.5.2): its ".." carries PL. RRIP marks
// the moved directory's own record with RE, but NetBSD's makefs writes
// no RE; the record must be hidden all the same, or the directory would
// be found in two parents. Problems are left for when the directory
// itself is read, so nothing is logged here.
func (fs *fsys) relocated(ino uint64) bool {
	dot, ok := fs.peekRecord(int64(ino))
	if !ok || !dot.isDot() {
		return false
	}
	dd, ok := fs.peekRecord(int64(ino) + int64(dot.length))
	if !ok || !dd.isDotDot() {
		return false
	}
	info, problem := fs.parseSU(&dd, fs.suSkip)
	return problem == "" && info.hasPL
}
