package cd9660

import (
	"strings"
	"unicode/utf16"
)

// Names of plain ISO 9660 and Joliet records.
//
// A plain file identifier (ECMA-119 7.5) is "NAME.EXT;VERSION" in
// d-characters (upper case). By default it is shown as NetBSD's cd9660
// shows it: lower-cased, the ";VERSION" cut off, and a "." left before
// it dropped ("README.;1" is "readme"); gens keeps the version,
// nomaptrans shows the identifier as recorded.
//
// A Joliet identifier (Joliet specification, 1995, section 3) is UCS-2
// big-endian, up to 64 characters (longer with some writers, up to the
// 255-byte identifier limit of 9.1.10); it is decoded as UTF-16 (so a
// surrogate pair written by a newer tool survives) into UTF-8, and its
// ";VERSION" cut off unless gens is set; its case is kept.

// assocPrefix goes in front of the name of an associated file (NetBSD's
// ASSOCCHAR).
const assocPrefix = "="

// isoName returns the name to show for the identifier id of a record
// with flags, or "" when it cannot be shown (an empty result, or one
// holding '/' or NUL, which the caller reports as corrupt).
func (fs *fsys) isoName(id []byte, flags byte) string {
	var s string
	if fs.joliet > 0 {
		if len(id)%2 != 0 {
			return ""
		}
		u := make([]uint16, len(id)/2)
		for i := range u {
			u[i] = uint16(id[2*i])<<8 | uint16(id[2*i+1])
		}
		s = string(utf16.Decode(u))
		if !fs.gens {
			s = stripVersion(s)
		}
	} else {
		s = string(id)
		if fs.mapTrans {
			s = strings.Map(func(r rune) rune {
				if r >= 'A' && r <= 'Z' {
					return r + ('a' - 'A')
				}
				return r
			}, s)
			if !fs.gens {
				s = stripVersion(s)
			}
		}
	}
	if flags&flagAssociated != 0 {
		s = assocPrefix + s
	}
	if !validName(s) {
		return ""
	}
	return s
}

// stripVersion cuts ";VERSION" off a name, and a "." left at its end
// (ECMA-119 7.5.1: "NAME.;1" is a name without extension).
func stripVersion(s string) string {
	i := strings.IndexByte(s, ';')
	if i < 0 {
		return s
	}
	s = s[:i]
	if strings.HasSuffix(s, ".") && len(s) > 1 {
		s = s[:len(s)-1]
	}
	return s
}

// validName reports whether s can be a name in a directory: not empty,
// not "." or "..", no '/' or NUL, at most 255 bytes.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= maxName &&
		!strings.ContainsAny(s, "/\x00")
}
