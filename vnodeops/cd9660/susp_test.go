package cd9660

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// sue builds a SUSP entry: signature, length, version 1, body.
func sue(sig string, body ...byte) []byte {
	return append([]byte{sig[0], sig[1], byte(4 + len(body)), 1}, body...)
}

// bb is a both-endian 32-bit field (ECMA-119 7.3.3).
func bb(v uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, v)
	return binary.BigEndian.AppendUint32(b, v)
}

// wrapped gives an entry longer than 255 bytes its length modulo 256,
// as genisoimage does.
func wrapped(e []byte) []byte {
	e[2] = byte(len(e) % 256)
	return e
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestSUSPEntries parses hand-made entries in the forms xorriso does not
// write: PX without the serial number (RRIP 1.10) and with it (1.12),
// TF in the long form, NM and SL continued across entries, SL with
// root, current and parent components, PN, and an ST that ends the area.
func TestSUSPEntries(t *testing.T) {
	long := func(s string) []byte { return append([]byte(s), 0) } // 17-byte time, GMT
	cases := []struct {
		name  string
		area  []byte
		check func(t *testing.T, i *suInfo)
	}{
		{"PX-1.10", sue("PX", cat(bb(0o100640), bb(3), bb(7), bb(8))...), func(t *testing.T, i *suInfo) {
			if !i.hasPX || i.mode != 0o100640 || i.nlink != 3 || i.uid != 7 || i.gid != 8 || i.hasSerial {
				t.Errorf("%+v", i)
			}
		}},
		{"PX-1.12", sue("PX", cat(bb(0o40755), bb(2), bb(0), bb(0), bb(99))...), func(t *testing.T, i *suInfo) {
			if !i.hasPX || i.mode != 0o40755 || !i.hasSerial || i.serial != 99 {
				t.Errorf("%+v", i)
			}
		}},
		{"TF-long", sue("TF", cat([]byte{tfModify | tfAccess | tfLongForm}, long("2020010203040550"), long("2021123123595900"))...), func(t *testing.T, i *suInfo) {
			if want := time.Date(2020, 1, 2, 3, 4, 5, 500_000_000, time.UTC).UnixNano(); i.mtime != want {
				t.Errorf("mtime %v", time.Unix(0, i.mtime))
			}
			if want := time.Date(2021, 12, 31, 23, 59, 59, 0, time.UTC).UnixNano(); i.atime != want {
				t.Errorf("atime %v", time.Unix(0, i.atime))
			}
		}},
		{"TF-short-offset", sue("TF", tfModify, 120, 6, 15, 12, 0, 0, 8), func(t *testing.T, i *suInfo) {
			// 8 quarter hours east of GMT: 12:00 local is 10:00 GMT.
			if want := time.Date(2020, 6, 15, 10, 0, 0, 0, time.UTC).UnixNano(); i.mtime != want {
				t.Errorf("mtime %v", time.Unix(0, i.mtime).UTC())
			}
		}},
		{"NM-continued", cat(sue("NM", append([]byte{nmContinue}, "long-"...)...), sue("NM", append([]byte{0}, "name"...)...)), func(t *testing.T, i *suInfo) {
			if string(i.name) != "long-name" {
				t.Errorf("name %q", i.name)
			}
		}},
		{"SL-components", cat(
			sue("SL", cat([]byte{1}, []byte{slRoot, 0}, []byte{0, 3}, []byte("usr"), []byte{slContinue, 2}, []byte("li"))...),
			sue("SL", cat([]byte{0}, []byte{0, 1}, []byte("b"), []byte{slParent, 0}, []byte{slCurrent, 0}, []byte{0, 1}, []byte("x"))...)),
			func(t *testing.T, i *suInfo) {
				if string(i.link) != "/usr/lib/.././x" {
					t.Errorf("link %q", i.link)
				}
			}},
		{"PN", sue("PN", cat(bb(0), bb(0x0801))...), func(t *testing.T, i *suInfo) {
			if i.rdev != 0x0801 {
				t.Errorf("rdev %#x", i.rdev)
			}
		}},
		{"PN-split", sue("PN", cat(bb(259), bb(70000))...), func(t *testing.T, i *suInfo) {
			if i.rdev != mkdev(259, 70000) {
				t.Errorf("rdev %#x", i.rdev)
			}
		}},
		// NetBSD's makefs: the last time's GMT offset is left out
		// of the entry's length (and the next entry starts there).
		{"TF-makefs-short", cat(sue("TF", cat([]byte{tfModify | tfAccess}, []byte{120, 6, 15, 10, 0, 0, 0}, []byte{121, 1, 2, 3, 4, 5})...),
			sue("NM", append([]byte{0}, "after"...)...)), func(t *testing.T, i *suInfo) {
			if want := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(); i.atime != want {
				t.Errorf("atime %v", time.Unix(0, i.atime).UTC())
			}
			if string(i.name) != "after" {
				t.Errorf("name %q: the next entry lost", i.name)
			}
		}},
		// genisoimage: an SL entry of 300 bytes with 300%256 in its
		// length byte.
		{"SL-length-wrapped", cat(wrapped(sue("SL", cat([]byte{0}, []byte{0, 200}, []byte(strings.Repeat("a", 200)), []byte{0, 89}, []byte(strings.Repeat("b", 89)))...)),
			sue("NM", append([]byte{0}, "after"...)...)), func(t *testing.T, i *suInfo) {
			if want := strings.Repeat("a", 200) + "/" + strings.Repeat("b", 89); string(i.link) != want {
				t.Errorf("link %q", i.link)
			}
			if string(i.name) != "after" {
				t.Errorf("name %q: the next entry lost", i.name)
			}
		}},
		{"ST-ends", cat(sue("ST"), sue("NM", append([]byte{0}, "after"...)...)), func(t *testing.T, i *suInfo) {
			if i.hasNM {
				t.Error("entry after ST parsed")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := &fsys{bs: 2048}
			info, problem := fs.parseSU(&dirRec{sys: c.area}, 0)
			if problem != "" {
				t.Fatal(problem)
			}
			c.check(t, info)
		})
	}
	// Malformed: each is a problem, never a panic.
	nm200 := append([]byte{nmContinue}, strings.Repeat("n", 200)...)
	badPX := sue("PX", cat(bb(1), bb(1), bb(1), bb(1))...)
	badPX[11] ^= 1
	for _, area := range [][]byte{
		sue("PX", bb(1)...),     // too short
		badPX,                   // halves disagree
		{'N', 'M', 200, 1, 0},   // past the area
		{'X', 'X', 2, 1},        // shorter than a header
		sue("SL", 0, 0, 5, 'a'), // component past the entry
		cat(sue("NM", nm200...), sue("NM", nm200...)), // name over 255 bytes
		sue("SL", 0, slContinue, 1, 'a'),              // component continued past the last SL
	} {
		fs := &fsys{bs: 2048}
		if _, problem := fs.parseSU(&dirRec{sys: area}, 0); problem == "" {
			t.Errorf("%q: no problem found", area)
		}
	}
}
