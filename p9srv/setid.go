package p9srv

import "encoding/binary"

// Tsetattr body offsets (9P2000.L: fid[4] valid[4] mode[4] uid[4] gid[4]
// size[8] atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8]).
const (
	setattrValid     = 4
	setattrMode      = 8
	setattrAtimeNsec = 36
	setattrLen       = 60
	p9SetattrMode    = 1 // P9_SETATTR_MODE
)

// setIDCarried flags an atime_nsec that carries set-id bits (bit 63), which
// sit at bits 40..51; a real nanosecond count fits in 30 bits.
const (
	setIDCarried = 1 << 63
	setIDShift   = 40
)

// carrySetIDBits copies the S_ISUID/S_ISGID bits of a Tsetattr's mode into
// the high bits of its atime_nsec: the library masks modes with 01777
// before File.SetAttr sees them, but passes the 64-bit nanosecond field
// through. file.SetAttr moves them back. A client that sets these bits
// itself gains nothing: the kernel applies the same ownership rules to
// every mode change.
func carrySetIDBits(body []byte) {
	if len(body) < setattrLen {
		return
	}
	if binary.LittleEndian.Uint32(body[setattrValid:])&p9SetattrMode == 0 {
		return
	}
	bits := uint64(binary.LittleEndian.Uint32(body[setattrMode:]) & 0o6000)
	if bits == 0 {
		return
	}
	ns := binary.LittleEndian.Uint64(body[setattrAtimeNsec:])
	binary.LittleEndian.PutUint64(body[setattrAtimeNsec:], ns|setIDCarried|bits<<setIDShift)
}

// carriedSetIDBits undoes carrySetIDBits: it returns the set-id bits and
// the true nanosecond count.
func carriedSetIDBits(nsec uint64) (bits uint32, ns uint64) {
	if nsec&setIDCarried != 0 {
		bits = uint32(nsec>>setIDShift) & 0o6000
	}
	return bits, nsec & (1<<32 - 1)
}
