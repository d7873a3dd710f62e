package cd9660

import (
	"fmt"
)

// System Use Sharing Protocol (SUSP 1.12, IEEE P1281) and Rock Ridge
// Interchange Protocol (RRIP 1.12, IEEE P1282) entries. Every entry
// starts with a two-byte signature, a length byte (the whole entry's) and
// a version byte (SUSP 4.1).

const (
	// maxCEHops bounds the chain of continuation areas of one record;
	// together with the check that no area is visited twice it makes a
	// hostile chain cost at most maxCEHops sector reads.
	maxCEHops = 32
	// maxSymlink is the longest symbolic link target served (Linux's
	// PATH_MAX - 1); a longer SL chain is corrupt.
	maxSymlink = 4095
	// maxName is the longest name (NAME_MAX).
	maxName = 255
)

// RRIP extension identifiers of the ER entry (RRIP 1.12 5.1; 1.09 and
// 1.10 used the first).
var rripIDs = map[string]bool{"RRIP_1991A": true, "IEEE_P1282": true, "IEEE_1282": true}

// TF flags (RRIP 1.12 4.1.6).
const (
	tfCreation   = 1 << 0
	tfModify     = 1 << 1
	tfAccess     = 1 << 2
	tfAttributes = 1 << 3
	tfLongForm   = 1 << 7
)

// SL component flags (RRIP 1.12 4.1.3.1).
const (
	slContinue = 1 << 0
	slCurrent  = 1 << 1
	slParent   = 1 << 2
	slRoot     = 1 << 3
)

// NM flags (RRIP 1.12 4.1.4).
const (
	nmContinue = 1 << 0
	nmCurrent  = 1 << 1
	nmParent   = 1 << 2
)

// suInfo is what the System Use area of one directory record (with its
// continuation areas) says.
type suInfo struct {
	// SUSP
	sp     bool // SP (SUSP 5.3) at the start of the area
	spSkip int  // its LEN_SKP
	erIDs  []string

	// RRIP
	rrip     bool // any RRIP entry
	hasPX    bool
	mode     uint32
	nlink    uint32
	uid, gid uint32
	// PX's file serial number (RRIP 1.12; 1.10's PX has none)
	hasSerial bool
	serial    uint32
	hasPN     bool
	rdev      uint64
	hasNM     bool
	name      []byte
	hasSL     bool
	link      []byte
	hasTF     bool
	btime     int64
	mtime     int64
	atime     int64
	ctime     int64
	hasCL     bool
	cl        uint32 // CL: the relocated directory's extent
	hasPL     bool
	pl        uint32 // PL: the original parent's extent
	re        bool   // RE: this is the relocated directory's own record
	zf        *zfInfo

	// SL assembly: the last component asked to be continued.
	slJoin bool
	// NM assembly: the last NM asked to be continued.
	nmJoin bool

	// AAIP: the AL entries' component areas, collected only when al is
	// not nil (see aaip.go); otherwise AL entries are skipped.
	al *alList
}

// zfInfo is a zisofs ZF entry (zisofs, "pz" algorithm): the file's data
// is compressed in blocks of 2^log2Block bytes and realSize long once
// decompressed.
type zfInfo struct {
	hdrSize   int // header size in bytes
	log2Block uint
	realSize  uint32
}

// parseSU parses the System Use area of rec: skip bytes (SP's LEN_SKP)
// first, then entries, following CE continuation areas. ino names the
// file in the description of a problem, which is returned as a non-empty
// string (the caller logs it and answers EIO).
func (fs *fsys) parseSU(rec *dirRec, skip int) (*suInfo, string) {
	info := &suInfo{}
	return info, fs.parseSUInto(info, rec, skip)
}

// parseSUInto is parseSU into an info the caller prepared (with al set to
// collect AL entries).
func (fs *fsys) parseSUInto(info *suInfo, rec *dirRec, skip int) string {
	area := rec.sys
	if skip > len(area) {
		return ""
	}
	area = area[skip:]
	seen := map[int64]bool{}
	for hop := 0; ; hop++ {
		ce, problem := info.parseArea(area)
		if problem != "" {
			return problem
		}
		if ce == nil {
			break
		}
		if hop >= maxCEHops {
			return "too many SUSP continuation areas (CE chain)"
		}
		// SUSP 5.1: the continuation area is within one logical block
		// (as Linux requires too).
		addr := int64(ce.block)*int64(fs.bs) + int64(ce.off)
		if ce.off >= uint32(fs.bs) || ce.length > uint32(fs.bs)-ce.off || ce.length == 0 {
			return fmt.Sprintf("SUSP continuation area (block %d, offset %d, length %d) does not fit a block", ce.block, ce.off, ce.length)
		}
		if seen[addr] {
			return "SUSP continuation areas form a loop"
		}
		seen[addr] = true
		b, err := fs.readMeta(addr, int(ce.length))
		if err != nil {
			return fmt.Sprintf("SUSP continuation area at byte %d unreadable: %v", addr, err)
		}
		area = b
	}
	if info.hasSL && info.slJoin {
		return "SL component continued past the last SL entry"
	}
	return ""
}

type ceRef struct{ block, off, length uint32 }

// parseArea parses the entries of one area into info and returns the CE
// entry it holds, if any.
func (info *suInfo) parseArea(b []byte) (*ceRef, string) {
	var ce *ceRef
	first := true
	for len(b) >= 4 {
		sig := string(b[0:2])
		n := int(b[2])
		if sig == "\x00\x00" && n == 0 {
			break // zero padding at the end of the area
		}
		if n < 4 || n > len(b) {
			return nil, fmt.Sprintf("SUSP entry %q of length %d in %d bytes", sig, n, len(b))
		}
		if sig == "SL" {
			n = slLen(b, n)
		}
		e := b[:n]
		b = b[n:]
		bad := func(what string) (*ceRef, string) {
			return nil, fmt.Sprintf("malformed SUSP entry %q (length %d): %s", sig, n, what)
		}
		switch sig {
		case "SP": // SUSP 5.3
			if n < 7 || e[4] != 0xBE || e[5] != 0xEF {
				if first {
					return bad("bad check bytes")
				}
				continue
			}
			if first {
				info.sp, info.spSkip = true, int(e[6])
			}
		case "CE": // SUSP 5.1
			if n < 28 {
				return bad("too short")
			}
			blk, ok1 := both32(e[4:])
			off, ok2 := both32(e[12:])
			ln, ok3 := both32(e[20:])
			if !ok1 || !ok2 || !ok3 {
				return bad("both-endian fields disagree")
			}
			ce = &ceRef{blk, off, ln}
		case "ST": // SUSP 5.4
			return ce, ""
		case "ER": // SUSP 5.5
			if n < 8 || 8+int(e[4]) > n {
				return bad("identifier does not fit")
			}
			info.erIDs = append(info.erIDs, string(e[8:8+int(e[4])]))
		case "PX": // RRIP 4.1.1: 36 bytes (1.10) or 44 with the serial number (1.12)
			if n < 36 {
				return bad("too short")
			}
			var ok [4]bool
			info.mode, ok[0] = both32(e[4:])
			info.nlink, ok[1] = both32(e[12:])
			info.uid, ok[2] = both32(e[20:])
			info.gid, ok[3] = both32(e[28:])
			if ok != [4]bool{true, true, true, true} {
				return bad("both-endian fields disagree")
			}
			if n >= 44 {
				if info.serial, ok[0] = both32(e[36:]); !ok[0] {
					return bad("both-endian serial number disagrees")
				}
				info.hasSerial = true
			}
			info.hasPX, info.rrip = true, true
		case "PN": // RRIP 4.1.2
			if n < 20 {
				return bad("too short")
			}
			hi, ok1 := both32(e[4:])
			lo, ok2 := both32(e[12:])
			if !ok1 || !ok2 {
				return bad("both-endian fields disagree")
			}
			info.rdev = pnDev(hi, lo)
			info.hasPN, info.rrip = true, true
		case "SL": // RRIP 4.1.3
			if n < 5 {
				return bad("too short")
			}
			if problem := info.addSL(e[5:]); problem != "" {
				return bad(problem)
			}
			info.hasSL, info.rrip = true, true
		case "NM": // RRIP 4.1.4
			if n < 5 {
				return bad("too short")
			}
			flags := e[4]
			info.rrip = true
			if flags&(nmCurrent|nmParent) != 0 {
				continue // "." and "..": the names are the kernel's
			}
			if info.hasNM && !info.nmJoin {
				info.name = info.name[:0] // a second name: the last wins
			}
			info.name = append(info.name, e[5:]...)
			if len(info.name) > maxName {
				return bad("name longer than 255 bytes")
			}
			info.hasNM, info.nmJoin = true, flags&nmContinue != 0
		case "TF": // RRIP 4.1.6
			if n < 5 {
				return bad("too short")
			}
			if !info.parseTF(e) {
				return bad("times do not fit")
			}
			info.hasTF, info.rrip = true, true
		case "CL", "PL": // RRIP 4.1.5.1 (child link), 4.1.5.2 (parent link)
			if n < 12 {
				return bad("too short")
			}
			v, ok := both32(e[4:])
			if !ok {
				return bad("both-endian location disagrees")
			}
			if sig == "CL" {
				info.cl, info.hasCL = v, true
			} else {
				info.pl, info.hasPL = v, true
			}
			info.rrip = true
		case "RE": // RRIP 4.1.5.3
			info.re, info.rrip = true, true
		case "RR": // RRIP 1.09 4.1.7: which fields follow; informative only
			info.rrip = true
		case "AL": // AAIP 2.0 (aaip.go)
			if info.al != nil {
				if problem := info.al.add(e); problem != "" {
					return bad(problem)
				}
			}
		case "ZF": // zisofs
			if n < 16 {
				return bad("too short")
			}
			size, ok := both32(e[8:])
			if !ok {
				return bad("both-endian size disagrees")
			}
			if string(e[4:6]) == "pz" {
				info.zf = &zfInfo{hdrSize: int(e[6]) * 4, log2Block: uint(e[7]), realSize: size}
			}
		}
		first = false
	}
	return ce, ""
}

// addSL appends the component records of one SL entry to the link.
func (info *suInfo) addSL(b []byte) string {
	for len(b) > 0 {
		if len(b) < 2 || 2+int(b[1]) > len(b) {
			return "component record does not fit"
		}
		flags, content := b[0], b[2:2+int(b[1])]
		b = b[2+int(b[1]):]
		if !info.slJoin && len(info.link) > 0 && info.link[len(info.link)-1] != '/' {
			info.link = append(info.link, '/')
		}
		switch {
		case flags&slRoot != 0:
			info.link = append(info.link[:0], '/')
		case flags&slCurrent != 0:
			info.link = append(info.link, '.')
		case flags&slParent != 0:
			info.link = append(info.link, ".."...)
		default:
			info.link = append(info.link, content...)
		}
		if len(info.link) > maxSymlink {
			return "symbolic link target longer than 4095 bytes"
		}
		info.slJoin = flags&slContinue != 0
	}
	return ""
}

// slLen returns the length of the SL entry at the start of b whose
// length byte says n. genisoimage (cdrkit 1.1.11) writes an SL entry of
// more than 255 bytes into a continuation area with its length modulo
// 256 (a symbolic link of some 800 bytes): its component records then
// run past n, and end n+256·k bytes in, where the next entry starts. So
// when the records do not end at n but do end at such a length inside b,
// that is the entry's length; otherwise n (and addSL finds the records
// that do not fit).
func slLen(b []byte, n int) int {
	if n < 5 {
		return n
	}
	for p := 5; p <= len(b); {
		if p == n || p > n && (p-n)%256 == 0 {
			return p
		}
		if p+2 > len(b) {
			break
		}
		p += 2 + int(b[p+1])
	}
	return n
}

// parseTF reads the time stamps of a TF entry; false when they do not fit.
func (info *suInfo) parseTF(e []byte) bool {
	flags := e[4]
	w, dec := 7, decodeTime7
	if flags&tfLongForm != 0 {
		w, dec = 17, decodeTime17
	}
	p := 5
	for bit := range 7 {
		if flags&(1<<bit) == 0 {
			continue
		}
		var t int64
		switch {
		case p+w <= len(e):
			t = dec(e[p : p+w])
		case w == 7 && p+w-1 == len(e):
			// NetBSD's makefs (Debian's 20190105) leaves the last
			// time's offset from GMT out of the entry's length, and
			// the next entry starts there: read it as GMT.
			var b [7]byte
			copy(b[:], e[p:])
			t = dec(b[:])
		default:
			return false
		}
		p += w
		switch 1 << bit {
		case tfCreation:
			info.btime = t
		case tfModify:
			info.mtime = t
		case tfAccess:
			info.atime = t
		case tfAttributes:
			info.ctime = t
		}
	}
	return true
}

// pnDev turns a PN entry's two 32-bit halves into a Linux dev_t. RRIP
// 4.1.2 splits a 64-bit device number; a writer with a 32-bit dev_t puts
// it all in the low half (Linux's isofs reads it so too), and writers on
// Linux put the whole encoded dev_t in the low half when it fits.
func pnDev(hi, lo uint32) uint64 {
	if hi == 0 {
		return uint64(lo)
	}
	return mkdev(hi, lo)
}

// mkdev is glibc's makedev: the dev_t of major and minor.
func mkdev(major, minor uint32) uint64 {
	ma, mi := uint64(major), uint64(minor)
	return (ma&0xfffff000)<<32 | (ma&0xfff)<<8 | (mi&0xffffff00)<<12 | mi&0xff
}
