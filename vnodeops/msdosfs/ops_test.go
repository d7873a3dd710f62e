package msdosfs_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// eachFAT runs fn on a fresh image of every FAT type, then checks the
// image with fsck.fat -n.
// Each after function runs then, on the checked image.
func eachFAT(t *testing.T, fn func(t *testing.T, img string, p *rumpcore.Proc, k *rumpcore.Kernel), after ...func(t *testing.T, img string)) {
	for _, bits := range fatTypes {
		t.Run(fmt.Sprintf("FAT%d", bits), func(t *testing.T) {
			img := mkfs(t, bits)
			k, p := boot(t, img, rumpcore.MountSpec{})
			fn(t, img, p, k)
			shutdown(t, k)
			fsck(t, img)
			crossCheck(t, img)
			for _, a := range after {
				a(t, img)
			}
		})
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if err != want {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

func TestInvalidNames(t *testing.T) {
	img := mkfs(t, 12)
	k, p := boot(t, img, rumpcore.MountSpec{})
	defer shutdown(t, k)
	for _, name := range []string{"a\\b", "a:b", "a*b", "a?b", "a\"b", "a<b", "a>b", "a|b", "a\x01b", "trail.", "trail "} {
		_, err := p.Open("/mnt/"+name, syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		wantErr(t, "create "+name, err, syscall.EINVAL)
		wantErr(t, "mkdir "+name, p.Mkdir("/mnt/"+name, 0o755), syscall.EINVAL)
	}
	// The longest names: 255 bytes of ASCII, 63 astral characters (126
	// UTF-16 units, surrogate pairs).
	for _, name := range []string{strings.Repeat("x", 255), strings.Repeat("😀", 63)} {
		writeFile(t, p, "/mnt/"+name, []byte(name))
		if got := readAll(t, p, "/mnt/"+name); string(got) != name {
			t.Errorf("%.20s... read back %q", name, got)
		}
	}
	// Names FAT allows in long names only.
	for _, name := range []string{"a+b", "a,b", "a;b", "a=b", "a[b]", ".hidden", "two.dots.txt", "sp ace"} {
		writeFile(t, p, "/mnt/"+name, []byte(name))
		if got := readAll(t, p, "/mnt/"+name); string(got) != name {
			t.Errorf("%s read back %q", name, got)
		}
	}
}

// TestAliases makes many names with one basis and checks the aliases are
// unique (fsck.fat flags duplicates) and that lookup by alias works.
func TestAliases(t *testing.T) {
	eachFAT(t, func(t *testing.T, img string, p *rumpcore.Proc, k *rumpcore.Kernel) {
		for i := 0; i < 30; i++ {
			writeFile(t, p, fmt.Sprintf("/mnt/Long File Name %d.txt", i), []byte{byte(i)})
		}
		if got := readAll(t, p, "/mnt/LONGFI~1.TXT"); len(got) != 1 || got[0] != 0 {
			t.Errorf("alias LONGFI~1.TXT read %v", got)
		}
		if got := readAll(t, p, "/mnt/LONGF~10.TXT"); len(got) != 1 || got[0] != 9 {
			t.Errorf("alias LONGF~10.TXT read %v", got)
		}
		if n := len(listDir(t, p, "/mnt")); n != 30 {
			t.Errorf("%d entries, want 30", n)
		}
	})
}

func TestRemoveAndOpenUnlinked(t *testing.T) {
	eachFAT(t, func(t *testing.T, img string, p *rumpcore.Proc, k *rumpcore.Kernel) {
		st0, err := p.Statvfs("/mnt")
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("x"), 100_000)
		writeFile(t, p, "/mnt/doomed file", data)
		fd, err := p.Open("/mnt/doomed file", syscall.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Unlink("/mnt/doomed file"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Stat("/mnt/doomed file"); err != syscall.ENOENT {
			t.Errorf("stat after unlink: %v", err)
		}
		// The same slot may now be reused by another file.
		writeFile(t, p, "/mnt/doomed file", []byte("new"))
		st1, _ := p.Statvfs("/mnt")
		if st1.Bfree >= st0.Bfree-1 {
			t.Errorf("clusters freed while the file is open: free %d -> %d", st0.Bfree, st1.Bfree)
		}
		buf := make([]byte, len(data))
		if n, err := p.Pread(fd, buf, 0); err != nil || n != len(data) || !bytes.Equal(buf, data) {
			t.Errorf("read of open unlinked file: %d, %v", n, err)
		}
		if _, err := p.Pwrite(fd, []byte("more"), int64(len(data))); err != nil {
			t.Errorf("write to open unlinked file: %v", err)
		}
		a, err := p.Fstat(fd)
		if err != nil || a.Nlink != 0 {
			t.Errorf("fstat unlinked: nlink %d, %v", a.Nlink, err)
		}
		if got := readAll(t, p, "/mnt/doomed file"); string(got) != "new" {
			t.Errorf("new file reads %q", got)
		}
		if err := p.Close(fd); err != nil {
			t.Fatal(err)
		}
		st2, _ := p.Statvfs("/mnt")
		cs := uint64(st0.Bsize)
		if st2.Bfree != st0.Bfree-(3+cs-1)/cs {
			t.Errorf("after close: free %d, want %d", st2.Bfree, st0.Bfree-(3+cs-1)/cs)
		}
		// Directories.
		if err := p.Mkdir("/mnt/d", 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, "/mnt/d/f", []byte("f"))
		wantErr(t, "rmdir non-empty", p.Rmdir("/mnt/d"), syscall.ENOTEMPTY)
		if err := p.Unlink("/mnt/d/f"); err != nil {
			t.Fatal(err)
		}
		if err := p.Rmdir("/mnt/d"); err != nil {
			t.Fatal(err)
		}
		st3, _ := p.Statvfs("/mnt")
		if st3.Bfree != st2.Bfree {
			t.Errorf("after rmdir: free %d, want %d", st3.Bfree, st2.Bfree)
		}
	})
}

func TestRename(t *testing.T) {
	eachFAT(t, func(t *testing.T, img string, p *rumpcore.Proc, k *rumpcore.Kernel) {
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(p.Mkdir("/mnt/A Dir", 0o755))
		must(p.Mkdir("/mnt/A Dir/Child", 0o755))
		must(p.Mkdir("/mnt/B", 0o755))
		writeFile(t, p, "/mnt/A Dir/Child/leaf.txt", []byte("leaf"))
		writeFile(t, p, "/mnt/file one", []byte("one"))
		writeFile(t, p, "/mnt/B/target", []byte("target"))

		// A live vnode keeps its inode number across renames.
		fd, err := p.Open("/mnt/file one", syscall.O_RDONLY, 0)
		must(err)
		a0, _ := p.Fstat(fd)
		must(p.Rename("/mnt/file one", "/mnt/B/File Two"))
		a1, err := p.Stat("/mnt/B/File Two")
		must(err)
		if a1.Ino != a0.Ino {
			t.Errorf("ino changed across rename of an open file: %d -> %d", a0.Ino, a1.Ino)
		}
		// A new file in the freed slot gets another number.
		writeFile(t, p, "/mnt/file one", []byte("again"))
		a2, err := p.Stat("/mnt/file one")
		must(err)
		if a2.Ino == a0.Ino {
			t.Errorf("new file got the inode number of the moved one")
		}
		must(p.Close(fd))

		// Replace an existing file.
		must(p.Rename("/mnt/B/File Two", "/mnt/B/target"))
		if got := readAll(t, p, "/mnt/B/target"); string(got) != "one" {
			t.Errorf("target reads %q", got)
		}
		if _, err := p.Stat("/mnt/B/File Two"); err != syscall.ENOENT {
			t.Errorf("old name still there: %v", err)
		}

		// Move a directory across parents: ".." follows.
		dirIno := mustStat(t, p, "/mnt/A Dir/Child").Ino
		must(p.Rename("/mnt/A Dir/Child", "/mnt/B/Moved Child"))
		if a := mustStat(t, p, "/mnt/B/Moved Child"); a.Ino != dirIno {
			t.Errorf("directory ino changed: %d -> %d", dirIno, a.Ino)
		}
		if a, b := mustStat(t, p, "/mnt/B/Moved Child/.."), mustStat(t, p, "/mnt/B"); a.Ino != b.Ino {
			t.Errorf(".. of moved dir is %d, want %d", a.Ino, b.Ino)
		}
		if got := readAll(t, p, "/mnt/B/Moved Child/leaf.txt"); string(got) != "leaf" {
			t.Errorf("leaf reads %q", got)
		}
		if a := mustStat(t, p, "/mnt/A Dir"); a.Nlink != 2 {
			t.Errorf("A Dir nlink %d, want 2", a.Nlink)
		}
		if a := mustStat(t, p, "/mnt/B"); a.Nlink != 3 {
			t.Errorf("B nlink %d, want 3", a.Nlink)
		}
		// To the root: ".." becomes cluster 0.
		must(p.Rename("/mnt/B/Moved Child", "/mnt/top"))
		if a, b := mustStat(t, p, "/mnt/top/.."), mustStat(t, p, "/mnt"); a.Ino != b.Ino {
			t.Errorf(".. of top is %d, want root %d", a.Ino, b.Ino)
		}
		// Replace an empty directory.
		must(p.Mkdir("/mnt/empty", 0o755))
		must(p.Rename("/mnt/A Dir", "/mnt/empty"))
		// Rename within a directory to a long name and back to 8.3.
		must(p.Rename("/mnt/file one", "/mnt/a much longer name than before.txt"))
		must(p.Rename("/mnt/a much longer name than before.txt", "/mnt/SHORT.TXT"))
		if got := readAll(t, p, "/mnt/short.txt"); string(got) != "again" {
			t.Errorf("SHORT.TXT reads %q", got)
		}
	}, func(t *testing.T, img string) {
		if got := mcat(t, img, "/top/leaf.txt"); string(got) != "leaf" {
			t.Errorf("mcopy top/leaf.txt: %q", got)
		}
		if got := mcat(t, img, "/SHORT.TXT"); string(got) != "again" {
			t.Errorf("mcopy SHORT.TXT: %q", got)
		}
	})
}

func mustStat(t *testing.T, p *rumpcore.Proc, path string) vnodeops.Attr {
	t.Helper()
	a, err := p.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return a
}

func TestTruncateAndHoles(t *testing.T) {
	eachFAT(t, func(t *testing.T, img string, p *rumpcore.Proc, k *rumpcore.Kernel) {
		st0, _ := p.Statvfs("/mnt")
		data := bytes.Repeat([]byte("abcdefgh"), 10_000)
		writeFile(t, p, "/mnt/t", data)
		if err := p.Truncate("/mnt/t", 1000); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, p, "/mnt/t"); !bytes.Equal(got, data[:1000]) {
			t.Errorf("after shrink: %d bytes", len(got))
		}
		// Growing reads zeros past the old end, even where old data was.
		if err := p.Truncate("/mnt/t", 50_000); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, p, "/mnt/t")
		if len(got) != 50_000 || !bytes.Equal(got[:1000], data[:1000]) || bytes.ContainsFunc(got[1000:], func(r rune) bool { return r != 0 }) {
			t.Errorf("after grow: bad contents (%d bytes)", len(got))
		}
		// A write past the end leaves a zero gap.
		fd, err := p.Open("/mnt/t", syscall.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Pwrite(fd, []byte("end"), 70_000); err != nil {
			t.Fatal(err)
		}
		// EFBIG at the 4 GiB limit.
		if _, err := p.Pwrite(fd, []byte("x"), 1<<32-1); err != syscall.EFBIG {
			t.Errorf("write at 4 GiB-1: %v, want EFBIG", err)
		}
		wantErr(t, "ftruncate 4 GiB", p.Ftruncate(fd, 1<<32), syscall.EFBIG)
		p.Close(fd)
		got = readAll(t, p, "/mnt/t")
		if len(got) != 70_003 || string(got[70_000:]) != "end" || bytes.ContainsFunc(got[1000:70_000], func(r rune) bool { return r != 0 }) {
			t.Errorf("after sparse write: bad contents (%d bytes)", len(got))
		}
		if err := p.Truncate("/mnt/t", 0); err != nil {
			t.Fatal(err)
		}
		st1, _ := p.Statvfs("/mnt")
		if st1.Bfree != st0.Bfree {
			t.Errorf("truncate to 0: free %d, want %d", st1.Bfree, st0.Bfree)
		}
	})
}

// TestFixedRootFull fills the fixed root directory of FAT12/16 (ENOSPC)
// while a subdirectory grows past one cluster.
func TestFixedRootFull(t *testing.T) {
	for _, bits := range []int{12, 16} {
		t.Run(fmt.Sprintf("FAT%d", bits), func(t *testing.T) {
			img := mkfs(t, bits)
			// Shrink nothing: count the root's entries from the BPB.
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			rootEnts := int(binary.LittleEndian.Uint16(b[17:]))
			k, p := boot(t, img, rumpcore.MountSpec{})
			var n int
			for n = 0; n < rootEnts+1; n++ {
				fd, err := p.Open(fmt.Sprintf("/mnt/F%d", n), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
				if err == syscall.ENOSPC {
					break
				}
				if err != nil {
					t.Fatalf("create %d: %v", n, err)
				}
				p.Close(fd)
			}
			if n != rootEnts {
				t.Errorf("root took %d short entries, want %d", n, rootEnts)
			}
			if err := p.Unlink("/mnt/F0"); err != nil {
				t.Fatal(err)
			}
			if err := p.Mkdir("/mnt/D", 0o755); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100; i++ {
				writeFile(t, p, fmt.Sprintf("/mnt/D/a long name number %d", i), nil)
			}
			if got := len(listDir(t, p, "/mnt/D")); got != 100 {
				t.Errorf("D holds %d", got)
			}
			shutdown(t, k)
			fsck(t, img)
		})
	}
}

func TestMetadata(t *testing.T) {
	img := mkfs(t, 16)
	k, p := boot(t, img, rumpcore.MountSpec{Options: map[string]string{
		"uid": "1000", "gid": "100", "mask": "0644", "dirmask": "0750", "tz": "+02:00",
	}})
	writeFile(t, p, "/mnt/f", []byte("x"))
	if err := p.Mkdir("/mnt/d", 0o777); err != nil {
		t.Fatal(err)
	}
	a := mustStat(t, p, "/mnt/f")
	if a.Mode != vnodeops.S_IFREG|0o644 || a.UID != 1000 || a.GID != 100 || a.Nlink != 1 {
		t.Errorf("file attr mode %o uid %d gid %d nlink %d", a.Mode, a.UID, a.GID, a.Nlink)
	}
	if d := mustStat(t, p, "/mnt/d"); d.Mode != vnodeops.S_IFDIR|0o750 || d.Nlink != 2 {
		t.Errorf("dir mode %o nlink %d", d.Mode, d.Nlink)
	}
	if r := mustStat(t, p, "/mnt"); r.Nlink != 3 {
		t.Errorf("root nlink %d, want 3", r.Nlink)
	}
	// chmod toggles the read-only attribute only.
	if err := p.Chmod("/mnt/f", 0o444); err != nil {
		t.Fatal(err)
	}
	if a := mustStat(t, p, "/mnt/f"); a.Mode&0o777 != 0o444 {
		t.Errorf("after chmod 444: %o", a.Mode&0o777)
	}
	wantErr(t, "chmod 600", p.Chmod("/mnt/f", 0o600), syscall.EPERM)
	wantErr(t, "chmod 4644", p.Chmod("/mnt/f", 0o4644), syscall.EPERM)
	if err := p.Chmod("/mnt/f", 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "chown", p.Chown("/mnt/f", 0, 0), syscall.EPERM)
	if err := p.Chown("/mnt/f", 1000, 100); err != nil {
		t.Errorf("chown to the same owner: %v", err)
	}
	wantErr(t, "symlink", p.Symlink("f", "/mnt/l"), syscall.EPERM)
	wantErr(t, "link", p.Link("/mnt/f", "/mnt/l"), syscall.EPERM)
	// Times: mtime has 2 s resolution, local time in the tz offset.
	mt := time.Date(2020, 5, 17, 13, 45, 31, 0, time.UTC).UnixNano()
	if err := p.Utimes("/mnt/f", mt, mt); err != nil {
		t.Fatal(err)
	}
	a = mustStat(t, p, "/mnt/f")
	if want := mt - int64(time.Second); a.Mtime != want {
		t.Errorf("mtime %v, want %v", time.Unix(0, a.Mtime).UTC(), time.Unix(0, want).UTC())
	}
	if want := time.Date(2020, 5, 17, 0, 0, 0, 0, time.FixedZone("", 7200)).UnixNano(); a.Atime != want {
		t.Errorf("atime %v, want %v", time.Unix(0, a.Atime), time.Unix(0, want))
	}
	// A read sets the access date to today (local time in the tz).
	readAll(t, p, "/mnt/f")
	tz := time.FixedZone("", 7200)
	y, m, d := time.Now().In(tz).Date()
	if a := mustStat(t, p, "/mnt/f"); a.Atime != time.Date(y, m, d, 0, 0, 0, 0, tz).UnixNano() && time.Now().In(tz).Hour() != 0 {
		t.Errorf("atime after read: %v", time.Unix(0, a.Atime).In(tz))
	}
	if a := mustStat(t, p, "/mnt/f"); a.Mtime != mt-int64(time.Second) {
		t.Errorf("read changed mtime")
	}
	if err := p.Utimes("/mnt/f", mt, mt); err != nil {
		t.Fatal(err)
	}
	shutdown(t, k)
	fsck(t, img)
	// mtools shows the local time 15:45 (UTC+2).
	if l := run(t, "mdir", "-i", img, "::F"); !strings.Contains(l, "2020-05-17  15:45") {
		t.Errorf("mdir shows:\n%s", l)
	}
	// A file written read-only keeps the attribute.
	k, p = boot(t, img, rumpcore.MountSpec{})
	if err := p.Chmod("/mnt/f", 0o555); err != nil {
		t.Fatal(err)
	}
	shutdown(t, k)
	if l := run(t, "mattrib", "-i", img, "::F"); !strings.Contains(l, "R") {
		t.Errorf("mattrib shows no R:\n%s", l)
	}
}

// TestDirtyBit checks the clean-shutdown bit of FAT[1]: cleared while
// mounted read-write, set again on unmount.
func TestDirtyBit(t *testing.T) {
	for _, bits := range []int{16, 32} {
		t.Run(fmt.Sprintf("FAT%d", bits), func(t *testing.T) {
			img := mkfs(t, bits)
			fat1 := func() uint32 {
				b, err := os.ReadFile(img)
				if err != nil {
					t.Fatal(err)
				}
				rsvd := int(binary.LittleEndian.Uint16(b[14:]))
				off := rsvd * 512
				if bits == 16 {
					return uint32(binary.LittleEndian.Uint16(b[off+2:])) & 0x8000
				}
				return binary.LittleEndian.Uint32(b[off+4:]) & 0x08000000
			}
			if fat1() == 0 {
				t.Fatal("fresh image not clean")
			}
			k, p := boot(t, img, rumpcore.MountSpec{})
			if fat1() != 0 {
				t.Error("clean bit set while mounted read-write")
			}
			writeFile(t, p, "/mnt/x", []byte("x"))
			shutdown(t, k)
			if fat1() == 0 {
				t.Error("clean bit not set after unmount")
			}
			fsck(t, img)

			// A volume found dirty stays dirty after our clean unmount.
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			rsvd := int(binary.LittleEndian.Uint16(b[14:]))
			nfats := int(b[16])
			fatSz := int(binary.LittleEndian.Uint16(b[22:]))
			if fatSz == 0 {
				fatSz = int(binary.LittleEndian.Uint32(b[36:]))
			}
			for i := 0; i < nfats; i++ {
				off := (rsvd + i*fatSz) * 512
				if bits == 16 {
					b[off+3] &^= 0x80
				} else {
					b[off+7] &^= 0x08
				}
			}
			if err := os.WriteFile(img, b, 0o644); err != nil {
				t.Fatal(err)
			}
			k, p = boot(t, img, rumpcore.MountSpec{})
			writeFile(t, p, "/mnt/y", []byte("y"))
			shutdown(t, k)
			if fat1() != 0 {
				t.Error("a volume found dirty was marked clean")
			}
		})
	}
}

// TestFSInfo checks that the FAT32 FSInfo free count and hint follow the
// allocations.
func TestFSInfo(t *testing.T) {
	img := mkfs(t, 32)
	k, p := boot(t, img, rumpcore.MountSpec{})
	writeFile(t, p, "/mnt/x", bytes.Repeat([]byte("y"), 300_000))
	st, _ := p.Statvfs("/mnt")
	shutdown(t, k)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsi := int(binary.LittleEndian.Uint16(b[48:])) * 512
	if free := binary.LittleEndian.Uint32(b[fsi+488:]); uint64(free) != st.Bfree {
		t.Errorf("FSInfo free count %d, statvfs %d", free, st.Bfree)
	}
	fsck(t, img)
}

// TestReaddirCookies removes and adds entries between Getdents calls: no
// surviving entry is skipped or repeated.
func TestReaddirCookies(t *testing.T) {
	eachFAT(t, func(t *testing.T, img string, p *rumpcore.Proc, k *rumpcore.Kernel) {
		if err := p.Mkdir("/mnt/d", 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			writeFile(t, p, fmt.Sprintf("/mnt/d/entry %02d", i), nil)
		}
		fd, err := p.Open("/mnt/d", syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		round := 0
		for {
			ds, err := p.Getdents(fd, 5)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 0 {
				break
			}
			for _, d := range ds {
				seen[d.Name]++
			}
			// Remove an entry not yet seen, add a new one.
			victim := fmt.Sprintf("/mnt/d/entry %02d", 49-round)
			if seen[victim[7:]] == 0 && round < 10 {
				if err := p.Unlink(victim); err != nil {
					t.Fatal(err)
				}
			}
			if round < 10 {
				writeFile(t, p, fmt.Sprintf("/mnt/d/new %d", round), nil)
			}
			round++
		}
		p.Close(fd)
		for i := 0; i < 40; i++ {
			if n := seen[fmt.Sprintf("entry %02d", i)]; n != 1 {
				t.Errorf("entry %02d seen %d times", i, n)
			}
		}
		for name, n := range seen {
			if n != 1 {
				t.Errorf("%s seen %d times", name, n)
			}
		}
	})
}

// TestPartitions mounts a FAT partition of MBR and GPT disk images,
// selected by number and by "auto", writes to it, and checks it with
// fsck.fat and mtools at the partition's offset.
func TestPartitions(t *testing.T) {
	for _, label := range []string{"dos", "gpt"} {
		t.Run(label, func(t *testing.T) {
			disk := t.TempDir() + "/disk.img"
			f, err := os.Create(disk)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(48 << 20); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if label == "dos" {
				cmd := "label: dos\nstart=2048, size=65536, type=c\n"
				out, err := runStdin(t, cmd, "sfdisk", disk)
				if err != nil {
					t.Fatalf("sfdisk: %v\n%s", err, out)
				}
			} else {
				run(t, "sgdisk", "-n", "1:2048:+32M", "-t", "1:ef00", disk)
			}
			// 32 MiB at sector 2048.
			run(t, "mkfs.fat", "-F", "16", "--offset", "2048", disk, "32768")
			part := disk + "@@1M"
			src := sourceTree(t)
			populate(t, part, src)
			for _, sel := range []string{"1", "auto"} {
				k, p := boot(t, disk, rumpcore.MountSpec{Type: "auto", Partition: sel})
				compareTree(t, p, "/mnt", src)
				writeFile(t, p, "/mnt/written via "+sel, []byte(sel))
				shutdown(t, k)
				if err := os.WriteFile(src+"/written via "+sel, []byte(sel), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := mcat(t, part, "/written via 1"); string(got) != "1" {
				t.Errorf("mcopy: %q", got)
			}
			// fsck.fat has no offset option: check a copy of the partition.
			b, err := os.ReadFile(disk)
			if err != nil {
				t.Fatal(err)
			}
			pimg := t.TempDir() + "/part.img"
			if err := os.WriteFile(pimg, b[1<<20:1<<20+32<<20], 0o644); err != nil {
				t.Fatal(err)
			}
			fsck(t, pimg)
		})
	}
}

func runStdin(t *testing.T, stdin, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFAT12Packing fills most of a FAT12 volume with interleaved files, so
// that FAT entries straddle sector boundaries (every 341⅓ clusters with
// 512-byte sectors), then frees every other file and refills the holes:
// fsck.fat and mtools must agree with what we wrote.
func TestFAT12Packing(t *testing.T) {
	img := mkfs(t, 12)
	k, p := boot(t, img, rumpcore.MountSpec{})
	st, err := p.Statvfs("/mnt")
	if err != nil {
		t.Fatal(err)
	}
	cs := int(st.Frsize)
	files := map[string][]byte{}
	// Grow 8 files a cluster at a time, round robin, so that their chains
	// interleave.
	fds := make([]int, 8)
	for i := range fds {
		name := fmt.Sprintf("/mnt/f%d", i)
		fds[i], err = p.Open(name, syscall.O_CREAT|syscall.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	rounds := int(st.Bfree)*9/10/len(fds) - 1
	for r := 0; r < rounds; r++ {
		for i, fd := range fds {
			chunk := bytes.Repeat([]byte{byte('a' + i), byte(r)}, cs/2)
			if _, err := p.Write(fd, chunk); err != nil {
				t.Fatalf("round %d file %d: %v", r, i, err)
			}
			name := fmt.Sprintf("/f%d", i)
			files[name] = append(files[name], chunk...)
		}
	}
	for _, fd := range fds {
		p.Close(fd)
	}
	for i := 0; i < len(fds); i += 2 {
		name := fmt.Sprintf("/f%d", i)
		if err := p.Unlink("/mnt" + name); err != nil {
			t.Fatal(err)
		}
		delete(files, name)
	}
	big := bytes.Repeat([]byte("0123456789"), rounds*cs/10*3)
	writeFile(t, p, "/mnt/refill", big)
	files["/refill"] = big
	shutdown(t, k)
	fsck(t, img)
	for name, data := range files {
		if got := mcat(t, img, name); !bytes.Equal(got, data) {
			t.Errorf("mcopy %s: %d bytes differ from the %d written", name, len(got), len(data))
		}
	}
}

// TestGeometries covers other layouts mkfs.fat makes: one FAT copy, large
// sectors, large clusters.
func TestGeometries(t *testing.T) {
	for _, g := range []struct {
		name    string
		args    []string
		sizeKiB int
	}{
		{"FAT16-one-FAT", []string{"-F", "16", "-f", "1"}, 16384},
		{"FAT12-4K-sectors", []string{"-F", "12", "-S", "4096", "-s", "1"}, 8192},
		{"FAT16-64K-clusters", []string{"-F", "16", "-S", "512", "-s", "128"}, 300 * 1024},
		{"FAT32-4K-sectors", []string{"-F", "32", "-S", "4096", "-s", "1"}, 300 * 1024},
	} {
		t.Run(g.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			run(t, "mkfs.fat", append(g.args, "-C", img, fmt.Sprint(g.sizeKiB))...)
			src := sourceTree(t)
			populate(t, img, src)
			k, p := boot(t, img, rumpcore.MountSpec{})
			compareTree(t, p, "/mnt", src)
			data := bytes.Repeat([]byte("geometry"), 40_000)
			writeFile(t, p, "/mnt/written file", data)
			if err := p.Rename("/mnt/Sub Dir", "/mnt/many/Sub Dir Moved"); err != nil {
				t.Fatal(err)
			}
			shutdown(t, k)
			fsck(t, img)
			if got := mcat(t, img, "/written file"); !bytes.Equal(got, data) {
				t.Errorf("mcopy: %d bytes, want %d", len(got), len(data))
			}
			if got := mcat(t, img, "/many/Sub Dir Moved/x.y"); string(got) != "xy" {
				t.Errorf("mcopy moved: %q", got)
			}
		})
	}
}

// TestCaseOnlyRenameThroughKernel: the kernel finds the same entry under
// both spellings and must still pass the rename down; mdir then shows the
// new case.
func TestCaseOnlyRenameThroughKernel(t *testing.T) {
	img := mkfs(t, 16)
	k, p := boot(t, img, rumpcore.MountSpec{Type: "msdosfs", Image: img})
	writeFile(t, p, "/mnt/readme.txt", []byte("x"))
	if err := p.Rename("/mnt/readme.txt", "/mnt/ReadMe.TXT"); err != nil {
		t.Fatalf("case-only rename: %v", err)
	}
	var names []string
	for _, d := range listDir(t, p, "/mnt") {
		names = append(names, d.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "ReadMe.TXT") || strings.Contains(got, "readme.txt") {
		t.Errorf("after the rename the directory lists %q", got)
	}
	shutdown(t, k)
	fsck(t, img)
	if out := run(t, "mdir", "-i", img, "::"); !strings.Contains(out, "ReadMe.TXT") {
		t.Errorf("mdir does not show the new name:\n%s", out)
	}
}
