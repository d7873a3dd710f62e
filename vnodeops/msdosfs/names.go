package msdosfs

import (
	"strconv"
	"strings"
	"syscall"
	"unicode/utf16"
	"unicode/utf8"
)

// Names on FAT [fatgen103 §6 "FAT Directory Structure", §7 "FAT Long
// Directory Entries"].
//
// Every file has a short (8.3) name of 11 bytes in the OEM code page, and
// may have a long name of up to 255 UTF-16 code units stored in long-name
// entries just before the short entry. This driver:
//
//   - stores a name that fits 8.3 (ASCII only, each part in one case) as a
//     short entry alone, with the Windows NT lowercase flags (byte 12, bit 3
//     for the base, bit 4 for the extension) recording a lowercase part;
//   - stores any other name as a long name, with a generated short alias
//     made of ASCII characters only (others become '_') and a numeric tail
//     "~N" that avoids the short names present in the directory;
//   - decodes short names with code page 437 (the IBM PC code page) when it
//     has to show one (a short entry without a valid long name);
//   - looks names up case-insensitively (Unicode simple folding) against
//     both the long and the short name, and keeps a name's case on create.

const (
	maxLongName = 255 // UTF-16 code units [fatgen103 §7: 255 characters]
	ntLowerBase = 0x08
	ntLowerExt  = 0x10
)

// checkName validates a name for a new entry: EINVAL for characters FAT
// forbids in long names [fatgen103 §7: the short-name illegal characters
// except + , ; = [ ] which long names allow, and control characters], for
// invalid UTF-8, for "." and "..", and for trailing dots or spaces: on FAT
// "blank spaces and periods at the end of a filename are ignored" (Windows
// 98 DDK, "Pathnames with LFN Support"; Microsoft KB115827), so such a
// name could not be reached from Windows; ENAMETOOLONG past 255 UTF-16
// code units.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || !utf8.ValidString(name) {
		return syscall.EINVAL
	}
	units := 0
	for _, r := range name {
		if r < 0x20 || r == 0x7F {
			return syscall.EINVAL
		}
		switch r {
		case '"', '*', '/', ':', '<', '>', '?', '\\', '|':
			return syscall.EINVAL
		}
		if r >= 0x10000 {
			units += 2
		} else {
			units++
		}
	}
	if last := name[len(name)-1]; last == '.' || last == ' ' {
		return syscall.EINVAL
	}
	if units > maxLongName {
		return syscall.ENAMETOOLONG
	}
	return nil
}

// shortChar reports whether the ASCII byte c may appear in a short name
// as it is [fatgen103 §6.1: illegal are values < 0x20 except 0x05, 0x22,
// 0x2A-0x2C, 0x2E, 0x2F, 0x3A-0x3F, 0x5B-0x5D, 0x7C; lowercase letters are
// stored upper case].
func shortChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("$%'-_@~`!(){}^#&", c) >= 0
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func toUpper(c byte) byte {
	if isLower(c) {
		return c - 'a' + 'A'
	}
	return c
}

// fits83 reports whether name can be stored as a short entry alone, and if
// so returns the 11-byte short name and the NT lowercase flags. Each of
// base and extension must be in one case so that the flags can restore
// it.
func fits83(name string) (sn [11]byte, nt byte, ok bool) {
	base, ext := name, ""
	if i := strings.IndexByte(name, '.'); i >= 0 {
		base, ext = name[:i], name[i+1:]
		if ext == "" || strings.IndexByte(ext, '.') >= 0 {
			return sn, 0, false
		}
	}
	if len(base) == 0 || len(base) > 8 || len(ext) > 3 {
		return sn, 0, false
	}
	part := func(s string, dst []byte, flag byte) bool {
		var lower, upper bool
		for i := 0; i < len(s); i++ {
			c := s[i]
			lower = lower || isLower(c)
			upper = upper || isUpper(c)
			if !shortChar(toUpper(c)) {
				return false
			}
			dst[i] = toUpper(c)
		}
		if lower && upper {
			return false
		}
		if lower {
			nt |= flag
		}
		return true
	}
	for i := range sn {
		sn[i] = ' '
	}
	if !part(base, sn[:8], ntLowerBase) || !part(ext, sn[8:], ntLowerExt) {
		return sn, 0, false
	}
	if sn[0] == 0xE5 {
		sn[0] = 0x05
	}
	return sn, nt, true
}

// basisName makes the basis of a short alias for a long name
// [fatgen103 §7 "The Basis-Name Generation Algorithm"]: upper case, each
// character that is not a valid ASCII short-name character replaced by
// '_' (this driver uses ASCII only, not an OEM code page), spaces and
// leading periods removed, the base up to the last period truncated to 8
// characters and the extension after it to 3.
func basisName(name string) (sn [11]byte) {
	for i := range sn {
		sn[i] = ' '
	}
	conv := func(s string) []byte {
		var out []byte
		for _, r := range s {
			if r == ' ' || r == '.' {
				continue
			}
			if r < 0x80 && shortChar(toUpper(byte(r))) {
				out = append(out, toUpper(byte(r)))
			} else {
				out = append(out, '_')
			}
		}
		return out
	}
	trimmed := strings.TrimLeft(name, ". ")
	base, ext := trimmed, ""
	if i := strings.LastIndexByte(trimmed, '.'); i >= 0 {
		base, ext = trimmed[:i], trimmed[i+1:]
	}
	b, e := conv(base), conv(ext)
	if len(b) == 0 {
		b = []byte{'_'}
	}
	copy(sn[:8], b[:min(len(b), 8)])
	copy(sn[8:], e[:min(len(e), 3)])
	return sn
}

// withTail returns basis with the numeric tail "~n" [fatgen103 §7 "The
// Numeric-Tail Generation Algorithm"], shortening the base so that base
// and tail fit in 8 characters.
func withTail(basis [11]byte, n int) [11]byte {
	tail := "~" + strconv.Itoa(n)
	blen := 8
	for blen > 0 && basis[blen-1] == ' ' {
		blen--
	}
	if blen+len(tail) > 8 {
		blen = 8 - len(tail)
	}
	sn := basis
	copy(sn[blen:], tail)
	for i := blen + len(tail); i < 8; i++ {
		sn[i] = ' '
	}
	return sn
}

// lfnChecksum is the checksum of a short name that every long-name entry
// of it carries [fatgen103 §7, ChkSum()].
func lfnChecksum(sn []byte) byte {
	var sum byte
	for i := 0; i < 11; i++ {
		sum = (sum>>1 | sum<<7) + sn[i]
	}
	return sum
}

// cp437 maps the bytes 0x80-0xFF of IBM code page 437 to Unicode.
var cp437 = [128]rune([]rune(
	"ÇüéâäàåçêëèïîìÄÅ" +
		"ÉæÆôöòûùÿÖÜ¢£¥₧ƒ" +
		"áíóúñÑªº¿⌐¬½¼¡«»" +
		"░▒▓│┤╡╢╖╕╣║╗╝╜╛┐" +
		"└┴┬├─┼╞╟╚╔╩╦╠═╬╧" +
		"╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀" +
		"αßΓπΣσµτΦΘΩδ∞φε∩" +
		"≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0"))

// shortDisplay turns an 11-byte short name and its NT flags into the name
// shown for it: "BASE.EXT" without padding, parts lowered as the flags
// say, 0x05 in the first byte read as 0xE5 [fatgen103 §6.1], bytes above
// 0x7F decoded with code page 437.
func shortDisplay(sn []byte, nt byte) string {
	dec := func(p []byte, lower bool) string {
		end := len(p)
		for end > 0 && p[end-1] == ' ' {
			end--
		}
		var sb strings.Builder
		for i := 0; i < end; i++ {
			c := p[i]
			switch {
			case c >= 0x80:
				sb.WriteRune(cp437[c-0x80])
			case lower && isUpper(c):
				sb.WriteByte(c - 'A' + 'a')
			case c < 0x20 || c == '/':
				sb.WriteByte('_') // never hand a '/' or control byte up
			default:
				sb.WriteByte(c)
			}
		}
		return sb.String()
	}
	first := sn[0]
	b := make([]byte, 11)
	copy(b, sn)
	if first == 0x05 {
		b[0] = 0xE5
	}
	base := dec(b[:8], nt&ntLowerBase != 0)
	ext := dec(b[8:11], nt&ntLowerExt != 0)
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// encodeLong turns a name into its UTF-16 code units (surrogate pairs for
// characters past U+FFFF).
func encodeLong(name string) []uint16 { return utf16.Encode([]rune(name)) }

// decodeLong turns UTF-16 code units into a string; unpaired surrogates
// become U+FFFD. ok is false when the name holds a character no name may
// hold here ('/' or NUL).
func decodeLong(u []uint16) (string, bool) {
	s := string(utf16.Decode(u))
	if s == "" || strings.ContainsAny(s, "/\x00") || s == "." || s == ".." {
		return s, false
	}
	return s, true
}
