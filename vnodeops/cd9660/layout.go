package cd9660

import (
	"encoding/binary"
	"time"
)

// On-disk layout, from ECMA-119 (2nd edition, 1987; = ISO 9660:1988).
// Section numbers in the comments are ECMA-119's.

const (
	// sectorSize is the logical sector size (6.1.2): 2048 bytes on every
	// medium this driver reads. Directory records never cross a logical
	// sector (6.8.1.1), and each volume descriptor fills one (8.1).
	sectorSize = 2048
	// vdsStart is the first sector of the volume descriptor set (6.2.1:
	// sectors 0-15 are the system area).
	vdsStart = 16
	// maxVDs bounds the walk of the volume descriptor set, which ends at a
	// terminator (8.3); real sets hold a handful.
	maxVDs = 64
)

// Volume descriptor types (8.1.1) and fields.
const (
	vdBoot       = 0 // 8.2: boot record (El Torito's catalog pointer)
	vdPrimary    = 1 // 8.4
	vdSupplement = 2 // 8.5 (Joliet)
	vdTerminator = 255

	vdIDOff        = 1   // "CD001" (8.1.2)
	vdVersionOff   = 6   // 1 (8.1.3)
	vdVolumeIDOff  = 40  // 8.4.6, 32 d-characters
	vdSpaceSizeOff = 80  // 8.4.8, both-endian 32
	vdEscapeOff    = 88  // 8.5.6, 32 bytes of escape sequences (SVD only)
	vdSetSizeOff   = 120 // 8.4.10, both-endian 16
	vdSeqNumOff    = 124 // 8.4.11, both-endian 16
	vdBlockSizeOff = 128 // 8.4.12, both-endian 16
	vdRootOff      = 156 // 8.4.18, a 34-byte directory record
)

var stdID = []byte("CD001")

// Directory record fields (9.1).
const (
	drLen       = 0  // 9.1.1 length of the record
	drEARLen    = 1  // 9.1.2 extended attribute record length, in blocks
	drExtent    = 2  // 9.1.3 location of extent, both-endian 32
	drSize      = 10 // 9.1.4 data length, both-endian 32
	drTime      = 18 // 9.1.5 recording date and time, 7 bytes
	drFlags     = 25 // 9.1.6 file flags
	drUnitSize  = 26 // 9.1.7 file unit size (interleaving)
	drGapSize   = 27 // 9.1.8 interleave gap size
	drVolSeq    = 28 // 9.1.9 volume sequence number, both-endian 16
	drNameLen   = 32 // 9.1.10 length of file identifier
	drName      = 33 // 9.1.11 file identifier
	drMinLength = 34 // a record with a one-byte identifier
)

// File flags (9.1.6).
const (
	flagHidden     = 1 << 0 // "Existence": need not be made known to the user
	flagDir        = 1 << 1
	flagAssociated = 1 << 2
	flagRecord     = 1 << 3 // record format in the extended attribute record
	flagProtection = 1 << 4 // owner and permissions in the extended attribute record
	flagMultiExt   = 1 << 7 // not the final record of the file (6.5.1)
)

// both-endian fields (7.2.3, 7.3.3): little-endian then big-endian.

// both32 returns the 32-bit both-endian field at b[0:8] and whether its
// two halves agree.
func both32(b []byte) (uint32, bool) {
	le := binary.LittleEndian.Uint32(b)
	return le, le == binary.BigEndian.Uint32(b[4:])
}

// both16 returns the 16-bit both-endian field at b[0:4] and whether its
// two halves agree.
func both16(b []byte) (uint16, bool) {
	le := binary.LittleEndian.Uint16(b)
	return le, le == binary.BigEndian.Uint16(b[2:])
}

// dirRec is a parsed directory record (9.1). Its byte slices alias the
// buffer it was parsed from.
type dirRec struct {
	addr     int64 // byte address of the record on the device
	length   int
	earLen   uint32 // blocks of extended attribute record before the data
	extent   uint32 // first logical block of the extent
	size     uint32 // data length in bytes
	recTime  []byte // 7 bytes (9.1.5)
	flags    byte
	unitSize byte // file unit size in blocks (0: not interleaved)
	gapSize  byte // interleave gap size in blocks
	name     []byte
	sys      []byte // the system use area (SUSP entries)
}

// isDot reports whether r is a directory's "." record (identifier 0x00,
// 6.8.2.2), isDotDot whether it is ".." (0x01).
func (r *dirRec) isDot() bool    { return len(r.name) == 1 && r.name[0] == 0 }
func (r *dirRec) isDotDot() bool { return len(r.name) == 1 && r.name[0] == 1 }

// parseDirRec parses the record at the start of b, which ends where the
// record's logical sector does (records never cross sectors, 6.8.1.1).
// It returns a description of the problem when the record is malformed:
// too short for its identifier, running past the sector, or a both-endian
// field whose halves disagree.
func parseDirRec(b []byte, addr int64) (dirRec, string) {
	var r dirRec
	if len(b) < drMinLength {
		return r, "directory record truncated by the end of its sector"
	}
	r.addr = addr
	r.length = int(b[drLen])
	nl := int(b[drNameLen])
	switch {
	case r.length < drMinLength:
		return r, "directory record shorter than 34 bytes"
	case r.length > len(b):
		return r, "directory record crosses a sector boundary"
	case nl == 0 || drName+nl > r.length:
		return r, "file identifier does not fit its directory record"
	}
	var ok1, ok2, ok3 bool
	r.extent, ok1 = both32(b[drExtent:])
	r.size, ok2 = both32(b[drSize:])
	_, ok3 = both16(b[drVolSeq:])
	if !ok1 || !ok2 || !ok3 {
		return r, "both-endian fields of the directory record disagree"
	}
	r.earLen = uint32(b[drEARLen])
	r.recTime = b[drTime : drTime+7]
	r.flags = b[drFlags]
	r.unitSize = b[drUnitSize]
	r.gapSize = b[drGapSize]
	r.name = b[drName : drName+nl]
	// 9.1.12: a padding byte follows an identifier of even length, so
	// that the system use area (9.1.13) starts at an even offset.
	su := drName + nl
	if nl%2 == 0 {
		su++
	}
	if su < r.length {
		r.sys = b[su:r.length]
	}
	return r, ""
}

// decodeTime7 decodes the 7-byte date and time of 9.1.5 (also RRIP TF's
// short form): years since 1900, month, day, hour, minute, second, and
// the offset from GMT in 15-minute steps (signed). An all-zero time is
// "not specified" and gives 0.
func decodeTime7(b []byte) int64 {
	if len(b) < 7 || (b[0] == 0 && b[1] == 0 && b[2] == 0) {
		return 0
	}
	off := int(int8(b[6]))
	if off < -48 || off > 52 {
		off = 0
	}
	loc := time.FixedZone("", off*15*60)
	t := time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, loc)
	return t.UnixNano()
}

// decodeTime17 decodes the 17-byte date and time of 8.4.26.1 (RRIP TF's
// long form): 16 ASCII digits YYYYMMDDHHMMSShh (hundredths) and the
// GMT offset in 15-minute steps. All zero digits mean "not specified".
func decodeTime17(b []byte) int64 {
	if len(b) < 17 {
		return 0
	}
	var v [7]int
	widths := [7]int{4, 2, 2, 2, 2, 2, 2}
	p := 0
	zero := true
	for i, w := range widths {
		for range w {
			c := b[p]
			p++
			if c < '0' || c > '9' {
				return 0
			}
			if c != '0' {
				zero = false
			}
			v[i] = v[i]*10 + int(c-'0')
		}
	}
	if zero {
		return 0
	}
	off := int(int8(b[16]))
	if off < -48 || off > 52 {
		off = 0
	}
	loc := time.FixedZone("", off*15*60)
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6]*10_000_000, loc)
	return t.UnixNano()
}
