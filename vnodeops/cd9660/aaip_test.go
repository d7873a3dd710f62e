package cd9660

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/vnodeops"
)

// xattrTree makes a source tree whose files carry extended attributes and
// POSIX ACLs (setfattr, setfacl): short and long (several AL entries and
// continuation areas) values, many names on one file, binary and empty
// values, trusted.* and security.* (as root), access and default ACLs
// with named users and groups, and files with none. It skips the test
// when the temporary directory's file system keeps no user attributes.
func xattrTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for _, d := range []string{"d", "d/sub", "deep/1/2/3/4/5/6/7/8/9"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"plain", "small", "many", "big", "acl", "d/inner"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("small", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setxattr(filepath.Join(src, "small"), "user.a", []byte("hello"), 0); err != nil {
		t.Skipf("no user xattrs in %s: %v", src, err)
	}
	set := func(path, name, value string) {
		t.Helper()
		run(t, "setfattr", "-n", name, "-v", value, filepath.Join(src, path))
	}
	set("", "user.root", "top of the tree")
	set("small", "user.b", "0x00ff0001")
	set("many", "user.empty", `""`)
	for i := range 40 {
		set("many", fmt.Sprintf("user.key-%02d", i), strings.Repeat(fmt.Sprint(i), 1+i))
	}
	set("big", "user.big", "0x"+hex.EncodeToString(pattern(3000, 3)))
	set("d", "user.dir", "yes")
	// Relocated (RRIP 4.1.5): deeper than ISO 9660's 8 levels.
	set("deep/1/2/3/4/5/6/7/8", "user.deep", "8")
	set("deep/1/2/3/4/5/6/7/8/9", "user.deeper", "9")
	if os.Geteuid() == 0 {
		set("acl", "trusted.t", "secret")
		set("acl", "security.s", "label")
	}
	setfacl := func(args ...string) {
		t.Helper()
		run(t, "setfacl", args...)
	}
	setfacl("-m", "u:1234:rw-,g:99:r--,u:70000:--x,g:66000:rwx", filepath.Join(src, "acl"))
	setfacl("-m", "g:4321:rwx", filepath.Join(src, "d"))
	setfacl("-d", "-m", "u:55:rwx,g::r-x,o::---", filepath.Join(src, "d"))
	setfacl("-d", "-m", "u:56:r-x", filepath.Join(src, "d/sub"))
	// A file made under a default ACL gets an access ACL from it.
	if err := os.WriteFile(filepath.Join(src, "d/made"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	return src
}

// hostXattrs returns the attributes of path (not following a symbolic
// link) as getfattr shows them.
func hostXattrs(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out, err := exec.Command(hosttools.Need(t, "getfattr"), "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", path).Output()
	if err != nil {
		t.Fatalf("getfattr %s: %v", path, err)
	}
	m := map[string][]byte{}
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, val, _ := strings.Cut(l, "=")
		v, err := hex.DecodeString(strings.TrimPrefix(val, "0x"))
		if val == `""` {
			v, err = []byte{}, nil
		}
		if err != nil {
			t.Fatalf("getfattr line %q: %v", l, err)
		}
		m[name] = v
	}
	return m
}

// driverXattrs returns the attributes of the file ino of fs, as Listxattr
// names them and Getxattr gives them.
func driverXattrs(t *testing.T, fs vnodeops.FS, ino uint64) map[string][]byte {
	t.Helper()
	v, err := fs.VGet(ino)
	if err != nil {
		t.Fatal(err)
	}
	x := v.(vnodeops.Xattrs)
	names, err := x.Listxattr()
	if err != nil {
		t.Fatalf("Listxattr(%d): %v", ino, err)
	}
	m := map[string][]byte{}
	for _, n := range names {
		if _, dup := m[n]; dup {
			t.Errorf("Listxattr(%d) names %s twice", ino, n)
		}
		if m[n], err = x.Getxattr(n); err != nil {
			t.Errorf("Getxattr(%d, %s): %v", ino, n, err)
		}
	}
	if _, err := x.Getxattr("user.absent"); err != syscall.ENODATA {
		t.Errorf("Getxattr(%d, user.absent) = %v, want ENODATA", ino, err)
	}
	return m
}

// aaipMakers are xorriso's two ways of recording AAIP: Rock Ridge 1.10
// with AL unannounced (its default, the spec's SUSP-1.10 downgrade), and
// Rock Ridge 1.12 with the ER "AAIP_0200" and ES entries; and the first
// with directories deeper than 8 levels relocated (RRIP 4.1.5), whose
// attributes are on their CL placeholders.
var aaipMakers = []struct {
	name string
	pre  []string
}{
	{"rrip-1.10", nil},
	{"rrip-1.12", []string{"-compliance", "new_rr"}},
	{"relocated", []string{"-compliance", "deep_paths_off"}},
}

// TestAAIPMatchesSource records a tree's attributes and ACLs with xorriso
// and checks that every file lists and gives what getfattr shows on the
// source, through the driver and through the kernel; the ACLs are
// decoded from AAIP's own form (with --xattr-any they are also recorded
// as plain attributes: the binary form alone is tested with --xattr).
func TestAAIPMatchesSource(t *testing.T) {
	src := xattrTree(t)
	for _, m := range aaipMakers {
		for _, rec := range [][]string{{"--xattr-any", "--acl"}, {"--xattr", "--acl"}} {
			t.Run(m.name+strings.Join(rec, ""), func(t *testing.T) {
				img := mkisoAfter(t, m.pre, src, append([]string{"-R", "-J"}, rec...)...)
				fs, lb := mountFile(t, img, nil)
				if !fs.aaip {
					t.Fatal("AAIP not honoured")
				}
				if m.name == "relocated" && !bytes.Contains(mustRead(t, img), []byte("RE\x04\x01")) {
					t.Fatal("no directory relocated: the variant tests nothing")
				}
				anyOnly := rec[0] == "--xattr-any"
				got := walk(t, fs)
				for p, f := range got {
					want := hostXattrs(t, filepath.Join(src, p))
					if !anyOnly {
						maps.DeleteFunc(want, func(k string, _ []byte) bool {
							return !strings.HasPrefix(k, "user.") && !strings.HasPrefix(k, "system.posix_acl_")
						})
					}
					have := driverXattrs(t, fs, f.ino)
					if !maps.EqualFunc(have, want, bytes.Equal) {
						t.Errorf("%s: attributes\n got %s\nwant %s", p, show(have), show(want))
					}
				}
				if l := lb.lines(); len(l) > 0 {
					t.Errorf("log lines on a good image: %q", l)
				}
				// Through the kernel: root sees trusted.*, others not.
				p := kernelMount(t, img, "cd9660")
				names, err := p.Listxattr("/mnt/acl")
				want := slices.Sorted(maps.Keys(hostXattrs(t, filepath.Join(src, "acl"))))
				if !anyOnly {
					want = slices.DeleteFunc(want, func(k string) bool { return strings.HasPrefix(k, "trusted.") || strings.HasPrefix(k, "security.") })
				}
				if slices.Sort(names); err != nil || !slices.Equal(names, want) {
					t.Errorf("kernel Listxattr(/mnt/acl) = %q, %v; want %q", names, err, want)
				}
				v, err := p.Getxattr("/mnt/big", "user.big")
				if err != nil || !bytes.Equal(v, pattern(3000, 3)) {
					t.Errorf("kernel Getxattr(/mnt/big, user.big) = %d bytes, %v", len(v), err)
				}
			})
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// show formats attributes for a failure message.
func show(m map[string][]byte) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if len(v) > 40 {
			fmt.Fprintf(&b, "%s=[%d bytes] ", k, len(v))
			continue
		}
		fmt.Fprintf(&b, "%s=%x ", k, v)
	}
	return b.String()
}

// TestAAIPNone checks that no attributes are listed where none may be
// read: an image made without recording them, the same tree under
// norrip (Joliet), and a Rock Ridge 1.12 image whose AAIP ER was renamed
// (AL entries not announced, and no SUSP-1.10 downgrade either).
func TestAAIPNone(t *testing.T) {
	src := xattrTree(t)
	plain := mkiso(t, src, "-R", "-J")
	recorded := mkiso(t, src, "-R", "-J", "--xattr-any", "--acl")
	img112, err := os.ReadFile(mkisoAfter(t, []string{"-compliance", "new_rr"}, src, "-R", "--xattr", "--acl"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(img112, []byte(aaipID))
	if i < 0 || bytes.Contains(img112[i+1:], []byte(aaipID)) {
		t.Fatalf("want one %s in the image, at %d", aaipID, i)
	}
	copy(img112[i:], "AAIP_9999")
	unannounced := filepath.Join(t.TempDir(), "u.iso")
	if err := os.WriteFile(unannounced, img112, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		img  string
		opts map[string]string
	}{
		{"not recorded", plain, nil},
		{"norrip", recorded, map[string]string{optNoRRIP: ""}},
		{"not announced", unannounced, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, lb := mountFile(t, c.img, c.opts)
			for p, f := range walk(t, fs) {
				if have := driverXattrs(t, fs, f.ino); len(have) > 0 {
					t.Errorf("%s: attributes %s", p, show(have))
				}
			}
			if l := lb.lines(); len(l) > 0 {
				t.Errorf("log lines on a good image: %q", l)
			}
		})
	}
}

// TestAAIPCorrupt patches the AL entry of one file of a good image and
// checks that its attributes answer EIO with one log line naming its
// inode, while its other calls and the other files' attributes work.
func TestAAIPCorrupt(t *testing.T) {
	src := xattrTree(t)
	base, good := goodImage(t, src, "-R", "--xattr")
	smallIno, err := lookupPath(good, "/small")
	if err != nil {
		t.Fatal(err)
	}
	al := suEntry(t, findRecord(t, good, good.Root(), "small"), "AL")
	// user.a=hello and user.b: one AL entry, in the record.
	if base[al+4] != 0 || int(base[al+2]) < 5+2+2+2+5 {
		t.Fatalf("AL entry of /small: % x", base[al:al+int64(base[al+2])])
	}
	for _, c := range []struct {
		name  string
		patch func(img []byte)
	}{
		{"component past the list", func(img []byte) { img[al+6] = 0xFF }},
		{"list never ends", func(img []byte) { img[al+4] |= alContinue }},
		{"component never ends", func(img []byte) {
			for i := al + 5; i < al+int64(img[al+2]); i += 2 + int64(img[i+1]) {
				img[i] |= compContinue
			}
		}},
		{"name with a 0x00 byte", func(img []byte) { img[al+8] = 0 }},
		{"entry too short", func(img []byte) { img[al+2] = 4 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := bytes.Clone(base)
			c.patch(img)
			fs, lb, err := mountBytes(t, img, nil)
			if err != nil {
				t.Fatalf("mount: %v", err)
			}
			v, err := fs.VGet(smallIno)
			if err != nil {
				if c.name != "entry too short" {
					t.Fatalf("VGet: %v", err)
				}
				return // the SUSP walk itself stops there
			}
			if _, err := v.Getattr(); err != nil {
				t.Errorf("Getattr: %v", err)
			}
			x := v.(vnodeops.Xattrs)
			if _, err := x.Listxattr(); !errors.Is(err, syscall.EIO) {
				t.Errorf("Listxattr = %v, want EIO", err)
			}
			l := lb.lines()
			if len(l) != 1 || !strings.Contains(l[0], fmt.Sprintf("ino=%d ", smallIno)) {
				t.Errorf("log: %q", l)
			}
			if _, err := x.Getxattr("user.a"); !errors.Is(err, syscall.EIO) {
				t.Errorf("Getxattr = %v, want EIO", err)
			}
			manyIno, _ := lookupPath(fs, "/many")
			if got := driverXattrs(t, fs, manyIno); len(got) != 41 {
				t.Errorf("/many: %d attributes, want 41", len(got))
			}
		})
	}
}

// TestDecodeAL decodes the examples of the AAIP 2.0 specification and
// hand-made lists in the forms xorriso does not write, and malformed
// ones.
func TestDecodeAL(t *testing.T) {
	rec := func(flags byte, s string) []byte { return append([]byte{flags, byte(len(s))}, s...) }
	long := strings.Repeat("x", 250)
	acl := func(ents ...[3]uint32) []byte {
		b := []byte{2, 0, 0, 0}
		for _, e := range ents {
			b = append(b, byte(e[0]), byte(e[0]>>8), byte(e[1]), 0, byte(e[2]), byte(e[2]>>8), byte(e[2]>>16), byte(e[2]>>24))
		}
		return b
	}
	const u = aclUndefinedID
	for _, c := range []struct {
		name    string
		list    []byte
		want    []xattr
		problem string
	}{
		{"spec: name, long content, one, more", cat(rec(0, "\x03name"), rec(1, long), rec(0, "content"), rec(0, "one"), rec(0, "more")),
			[]xattr{{"user.name", []byte(long + "content")}}, ""},
		{"short notation", cat(rec(0, "\x03abc"), rec(0, "1"), rec(0, "user.abc2"), rec(0, "2"),
			rec(0, "\x01\x03abc"), rec(0, "3"), rec(0, "\x05t"), rec(0, "4"), rec(0, "\x06s"), rec(0, "5"),
			rec(0, "\x04di"), rec(0, "6"), rec(0, "\x02other"), rec(0, "7"), rec(0, "\x07x"), rec(0, "8"), rec(0, "\x03"), rec(0, "9")),
			[]xattr{{"user.abc", []byte("1")}, {"user.abc2", []byte("2")}, {"trusted.t", []byte("4")}, {"security.s", []byte("5")}}, ""},
		{"spec: u::rw-,u:lisa:rw-,g::r--,g:toolies:rw-,m::r--,o::r--",
			cat(rec(0, ""), rec(0, "\x16\xAE\x01\x7b\x34\xCE\x02\xff\xfe\x54\x64")),
			[]xattr{{aclAccessName, acl([3]uint32{1, 6, u}, [3]uint32{2, 6, 123}, [3]uint32{4, 4, u}, [3]uint32{8, 6, 65534}, [3]uint32{0x10, 4, u}, [3]uint32{0x20, 4, u})}}, ""},
		// The spec's example writes du:lisa:rwx as 0xA7, without the
		// QUALIFIER bit its qualifier needs; libisofs writes 0xAF.
		{"spec: access and default", cat(rec(0, ""), rec(0, "\x17\x35\x65\x81\x17\x35\x57\x65\xAF\x01\x7b")),
			[]xattr{{aclDefaultName, acl([3]uint32{1, 7, u}, [3]uint32{2, 7, 123}, [3]uint32{4, 5, u}, [3]uint32{0x10, 7, u}, [3]uint32{0x20, 5, u})}}, ""},
		{"qualifier in two records, translate skipped", cat(rec(0, ""), rec(0, "\x08\x0d\x00\x7b\x00\x00\x00\x00\x00\x00\x7blisa\x16\xAE\x81\x01\x01\x02\x34\x54\x64")),
			[]xattr{{aclAccessName, acl([3]uint32{1, 6, u}, [3]uint32{2, 6, 0x102}, [3]uint32{4, 4, u}, [3]uint32{0x10, 4, u}, [3]uint32{0x20, 4, u})}}, ""},
		{"first value wins", cat(rec(0, "\x03a"), rec(0, "1"), rec(0, "user.a"), rec(0, "2")), []xattr{{"user.a", []byte("1")}}, ""},
		{"empty", nil, nil, ""},
		{"record past the end", cat(rec(0, "\x03a"), []byte{0, 5, 'x'}), nil, "runs past"},
		{"component never ends", cat(rec(0, "\x03a"), rec(1, "x")), nil, "continued past"},
		{"name without value", rec(0, "\x03a"), nil, "no value"},
		{"NUL in name", cat(rec(0, "\x03a\x00b"), rec(0, "x")), nil, "0x00"},
		{"long name", cat(rec(1, "\x03"+long), rec(0, long), rec(0, "x")), nil, "name longer"},
		{"huge value", cat(rec(0, "\x03a"), bytes.Repeat(rec(1, long), 300), rec(0, "")), nil, "component longer"},
		{"qualifier past the end", cat(rec(0, ""), rec(0, "\x16\xAE\x05\x01")), nil, "qualifier runs past"},
		{"named user without id", cat(rec(0, ""), rec(0, "\x16\xA6\x34\x54\x64")), nil, "0-byte id"},
		{"5-byte id", cat(rec(0, ""), rec(0, "\x16\xAE\x05\x01\x02\x03\x04\x05\x34\x54\x64")), nil, "5-byte id"},
		{"no mask", cat(rec(0, ""), rec(0, "\x16\xAE\x01\x01\x34\x64")), nil, "without a mask"},
		{"no owner", cat(rec(0, ""), rec(0, "\x34\x54\x64")), nil, "not one owner"},
		{"two switch marks", cat(rec(0, ""), rec(0, "\x81\x81")), nil, "two switch marks"},
		{"two ACLs", cat(rec(0, ""), rec(0, ""), rec(0, ""), rec(0, "")), nil, "two binary ACLs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, problem := decodeAL(c.list)
			if c.problem != "" {
				if !strings.Contains(problem, c.problem) {
					t.Errorf("problem %q, want one with %q", problem, c.problem)
				}
				return
			}
			if problem != "" || !slices.EqualFunc(got, c.want, func(a, b xattr) bool {
				return a.name == b.name && bytes.Equal(a.value, b.value)
			}) {
				t.Errorf("got %v, %q; want %v", got, problem, c.want)
			}
		})
	}
}

// TestALList joins AL entries and refuses entries after the end and
// lists over the cap.
func TestALList(t *testing.T) {
	var l alList
	if p := l.add(sue("AL", alContinue, 0, 2, 'a')); p != "" {
		t.Fatal(p)
	}
	if p := l.add(sue("AL", 0, 'b', 'c')); p != "" || string(l.data) != "\x00\x02abc" || !l.ended {
		t.Fatalf("%q: %q, ended %v", p, l.data, l.ended)
	}
	if p := l.add(sue("AL", 0)); !strings.Contains(p, "after the end") {
		t.Errorf("AL after the end: %q", p)
	}
	l = alList{}
	e := sue("AL", append([]byte{alContinue}, make([]byte, 250)...)...)
	var p string
	for i := 0; p == "" && i < maxALBytes; i++ {
		p = l.add(e)
	}
	if !strings.Contains(p, "longer than") || len(l.data) > maxALBytes {
		t.Errorf("over the cap: %q, %d bytes", p, len(l.data))
	}
}

// TestAAIPAnnounced is the rule of when AL entries are read.
func TestAAIPAnnounced(t *testing.T) {
	for _, c := range []struct {
		ids  []string
		want bool
	}{
		{nil, false},
		{[]string{"RRIP_1991A"}, true},
		{[]string{"IEEE_1282"}, false},
		{[]string{"IEEE_1282", "AAIP_0200"}, true},
		{[]string{"RRIP_1991A", "IEEE_P1282"}, false},
		{[]string{"AAIP_0100"}, false},
	} {
		if got := aaipAnnounced(c.ids); got != c.want {
			t.Errorf("aaipAnnounced(%q) = %v", c.ids, got)
		}
	}
}

// TestAAIPFuzzSeeds checks that the seed inputs aimed at base 3's AL
// entries still hit them: the patched list of /small is EIO, and with the
// AAIP ER renamed no attributes are read at all. A new xorriso that lays
// the base out differently makes this fail: re-aim the seeds then.
func TestAAIPFuzzSeeds(t *testing.T) {
	for name, want := range map[string]error{
		"al-component-length": syscall.EIO,
		"al-never-ends":       syscall.EIO,
		"aaip-er-renamed":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzMount", name))
			if err != nil {
				t.Fatal(err)
			}
			_, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "[]byte(")
			s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				t.Fatal(err)
			}
			fs, err := Mount(vnodeops.MountArgs{Name: "seed", Dev: fuzzDevice(t, []byte(s)), ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			names, err := vnodeAt(t, fs, "/small").(vnodeops.Xattrs).Listxattr()
			if err != want || want == nil && len(names) != 0 {
				t.Errorf("Listxattr = %q, %v; want none, %v", names, err, want)
			}
		})
	}
}
