package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/ukfs"
)

// rump9p runs one command line in-process and returns its output and
// exit status.
func rump9p(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(stdin), &o, &e)
	return o.String(), e.String(), code
}

// ok runs a command line that must succeed.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := rump9p(t, "", args...)
	if code != 0 {
		t.Fatalf("rump9p %s: status %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// fails runs a command line that must end with status code and say want
// on stderr.
func fails(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	_, errs, got := rump9p(t, "", args...)
	if got != code || !strings.Contains(errs, want) {
		t.Errorf("rump9p %s: status %d, stderr %q; want status %d naming %q", strings.Join(args, " "), got, errs, code, want)
	}
}

// seedTree makes a host tree with every file type cp -a keeps.
func seedTree(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "sub/deeper"), 0o755))
	must(os.WriteFile(filepath.Join(d, "hello.txt"), []byte("hello\n"), 0o644))
	must(os.WriteFile(filepath.Join(d, "sub/data.bin"), bytes.Repeat([]byte("0123456789"), 20000), 0o600))
	must(os.WriteFile(filepath.Join(d, "sub/deeper/x.txt"), []byte("x"), 0o640))
	must(os.Symlink("sub/data.bin", filepath.Join(d, "link")))
	must(os.Link(filepath.Join(d, "hello.txt"), filepath.Join(d, "sub/hard.txt")))
	must(syscall.Mkfifo(filepath.Join(d, "fifo"), 0o600))
	must(syscall.Mknod(filepath.Join(d, "null"), syscall.S_IFCHR|0o666, int(1<<8|3)))
	sp, err := os.Create(filepath.Join(d, "sparse"))
	must(err)
	_, err = sp.WriteAt([]byte("end"), 4<<20)
	must(err)
	must(sp.Close())
	must(os.Chmod(filepath.Join(d, "sub/deeper"), 0o750|os.ModeSetgid))
	must(os.Lchown(filepath.Join(d, "sub/deeper/x.txt"), 1000, 1001))
	must(os.Lchown(filepath.Join(d, "link"), 5, 6))
	old := time.Date(2010, 1, 2, 3, 4, 5, 600, time.UTC)
	must(os.Chtimes(filepath.Join(d, "hello.txt"), old, old))
	must(os.Chtimes(filepath.Join(d, "sub"), old, old))
	return d
}

func mkext2Seeded(t *testing.T, seed string, size string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	args := []string{"-q", "-F", "-t", "ext2", "-b", "1024"}
	if seed != "" {
		args = append(args, "-d", seed)
	}
	hosttools.Run(t, "mke2fs", append(args, img, size)...)
	return img
}

func mkfat(t *testing.T, bits string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	size := "16384"
	if bits == "32" {
		size = "40000"
	}
	hosttools.Run(t, "mkfs.fat", "-C", "-F", bits, img, size)
	src := filepath.Join(t.TempDir(), "readme.txt")
	os.WriteFile(src, []byte("from mcopy\n"), 0o644)
	hosttools.Run(t, "mcopy", "-i", img, src, "::/README.TXT")
	hosttools.Run(t, "mmd", "-i", img, "::/DOCS")
	return img
}

// debugfsNames lists a directory of an ext2 image with debugfs.
func debugfsNames(t *testing.T, img, dir string) []string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(hosttools.Run(t, "debugfs", "-R", "ls -p "+dir, img), "\n") {
		f := strings.Split(line, "/")
		if len(f) > 5 && f[5] != "." && f[5] != ".." {
			names = append(names, f[5])
		}
	}
	sort.Strings(names)
	return names
}

func lines(s string) []string {
	return strings.Fields(s)
}

// blocks returns the 512-byte blocks a file of an image takes, from
// rump9p stat.
func blocks(t *testing.T, loc string) int {
	t.Helper()
	out := ok(t, "stat", loc)
	_, after, _ := strings.Cut(out, "Blocks:")
	n, err := strconv.Atoi(strings.Fields(after)[0])
	if err != nil {
		t.Fatalf("stat %s: %v\n%s", loc, err, out)
	}
	return n
}

// TestImageUsage: the image commands' usage errors exit 2, before any
// image is opened.
func TestImageUsage(t *testing.T) {
	if out := ok(t, "help", "cp"); !strings.Contains(out, "cp [-rpa]") {
		t.Errorf("help cp: %q", out)
	}
	dir := filepath.Join(t.TempDir(), "man")
	ok(t, "man", dir)
	if b, err := os.ReadFile(filepath.Join(dir, "rump9p-ls.1")); err != nil || !bytes.Contains(b, []byte(".TH")) {
		t.Errorf("man page of ls: %v", err)
	}
	fails(t, 2, "usage", "ls")
	fails(t, 2, "usage", "cp", "one")
	fails(t, 2, "unknown flag", "ls", "--bogus", "x.img")
	fails(t, 2, "--progress", "cp", "--progress=sometimes", "a", "b")
	fails(t, 2, "unknown predicate", "find", "x.img", "-bogus", "1")
	fails(t, 2, "mode", "chmod", "u+q", "x.img:/")
	fails(t, 2, "owner", "chown", "root", "x.img:/")
	fails(t, 2, "key=value", "ls", "-o", "novalue", "x.img")
}

func TestImageReadCommands(t *testing.T) {
	seed := seedTree(t)
	img := mkext2Seeded(t, seed, "16M")
	at := func(p string) string { return img + ":" + p }

	got := lines(ok(t, "ls", at("/")))
	if want := debugfsNames(t, img, "/"); !slices.Equal(got, want) {
		t.Errorf("ls /: %q, debugfs: %q", got, want)
	}
	if got := lines(ok(t, "ls", img)); !slices.Contains(got, "hello.txt") {
		t.Errorf("ls IMAGE: %q", got)
	}
	long := ok(t, "ls", "-l", at("/sub"))
	for _, want := range []string{"total ", "drwxr-s---", "-rw-------", "200000 ", "data.bin", "hard.txt"} {
		if !strings.Contains(long, want) {
			t.Errorf("ls -l /sub lacks %q:\n%s", want, long)
		}
	}
	if out := ok(t, "ls", "-l", at("/link")); !strings.Contains(out, "lrwxrwxrwx") || !strings.Contains(out, "-> sub/data.bin") {
		t.Errorf("ls -l link: %s", out)
	}
	if out := ok(t, "ls", "-lh", at("/sub")); !strings.Contains(out, "196K") {
		t.Errorf("ls -lh: %s", out)
	}
	if out := ok(t, "ls", "-a", at("/sub")); !strings.HasPrefix(out, ".\n..\n") {
		t.Errorf("ls -a: %q", out)
	}
	if out := ok(t, "ls", "-R", at("/sub")); !strings.Contains(out, at("/sub/deeper")+":\nx.txt") {
		t.Errorf("ls -R: %q", out)
	}
	if out := ok(t, "cat", at("/hello.txt"), at("/sub/deeper/x.txt")); out != "hello\nx" {
		t.Errorf("cat: %q", out)
	}
	data, _ := os.ReadFile(filepath.Join(seed, "sub/data.bin"))
	if out := ok(t, "cat", at("/sub/data.bin")); out != string(data) {
		t.Errorf("cat data.bin: %d bytes", len(out))
	}
	st := ok(t, "stat", at("/sub/deeper/x.txt"))
	for _, want := range []string{"Size: 1 ", "regular file", "Uid: 1000", "Gid: 1001", "(0640/-rw-r-----)"} {
		if !strings.Contains(st, want) {
			t.Errorf("stat lacks %q:\n%s", want, st)
		}
	}
	if st := ok(t, "stat", at("/null")); !strings.Contains(st, "Device type: 1,3") {
		t.Errorf("stat null:\n%s", st)
	}
	if df := ok(t, "df", img); !strings.Contains(df, "ext2fs") || !strings.Contains(df, "Use%") {
		t.Errorf("df:\n%s", df)
	}
	if df := ok(t, "df", "-i", img); !strings.Contains(df, "IFree") {
		t.Errorf("df -i:\n%s", df)
	}
	info := ok(t, "info", img)
	for _, want := range []string{"Type:", "ext2fs", "Block size:", "1024", "Block count:", "Free inodes:"} {
		if !strings.Contains(info, want) {
			t.Errorf("info lacks %q:\n%s", want, info)
		}
	}
	if got := lines(ok(t, "find", at("/"), "-name", "*.txt", "-type", "f")); !slices.Equal(got, []string{"/hello.txt", "/sub/deeper/x.txt", "/sub/hard.txt"}) {
		t.Errorf("find -name: %q", got)
	}
	if got := lines(ok(t, "find", at("/sub"), "-size", "+100k")); !slices.Equal(got, []string{"/sub/data.bin"}) {
		t.Errorf("find -size: %q", got)
	}
	if got := lines(ok(t, "find", at("/"), "-maxdepth", "1", "-type", "l,p,c")); !slices.Equal(got, []string{"/fifo", "/link", "/null"}) {
		t.Errorf("find -type: %q", got)
	}
	if got := lines(ok(t, "find", at("/"), "!", "-type", "d", "-name", "hello*")); !slices.Equal(got, []string{"/hello.txt"}) {
		t.Errorf("find !: %q", got)
	}
	du := lines(ok(t, "du", "-s", at("/sub")))
	if n, _ := strconv.Atoi(du[0]); len(du) != 2 || du[1] != "/sub" || n < 196 || n > 260 {
		t.Errorf("du -s: %q", du)
	}

	// A mount of a configuration file, by name.
	cfg := filepath.Join(t.TempDir(), "rump9p.yaml")
	os.WriteFile(cfg, []byte("mounts:\n  - {name: disk, type: ext2fs, image: "+img+"}\n"), 0o644)
	if got := lines(ok(t, "ls", "-c", cfg, "disk:/sub/deeper")); !slices.Equal(got, []string{"x.txt"}) {
		t.Errorf("ls -c FILE MOUNT:PATH: %q", got)
	}
	fails(t, 1, "nope", "ls", "-c", cfg, "nope:/")

	// Failures name the path and exit 1; the rest still runs.
	out, errs, code := rump9p(t, "", "cat", at("/nope"), at("/hello.txt"))
	if code != 1 || !strings.Contains(errs, at("/nope")) || !strings.Contains(errs, "no such file") || out != "hello\n" {
		t.Errorf("cat of a missing file: status %d, %q, %q", code, out, errs)
	}
	fails(t, 1, "is a directory", "cat", at("/sub"))
	fails(t, 1, "missing.img", "ls", filepath.Join(t.TempDir(), "missing.img")+":/")
	fails(t, 1, "msdosfs", "ls", "--type", "msdosfs", img)
	e2fsckClean(t, img)
}

func TestImageEditCommands(t *testing.T) {
	img := mkext2Seeded(t, seedTree(t), "16M")
	at := func(p string) string { return img + ":" + p }

	ok(t, "mkdir", "-p", "-m", "750", at("/a/b/c"))
	ok(t, "mkdir", at("/d"))
	ok(t, "touch", at("/a/b/c/new"), at("/hello.txt"))
	ok(t, "ln", "-s", "../hello.txt", at("/d/sym"))
	ok(t, "ln", at("/hello.txt"), at("/d"))
	ok(t, "chmod", "u+x,go-r", at("/hello.txt"))
	ok(t, "chmod", "-R", "700", at("/a"))
	ok(t, "chown", "-R", "1234:99", at("/a"))
	ok(t, "chown", ":77", at("/d"))
	ok(t, "mv", at("/sub/data.bin"), at("/d"))
	ok(t, "mv", at("/fifo"), at("/d/pipe"))
	ok(t, "rm", at("/link"))
	ok(t, "rm", "-r", at("/sub"))
	ok(t, "touch", "-d", "2001-02-03 04:05:06", at("/d")) // after the last change in /d
	ok(t, "mkdir", at("/e"))
	ok(t, "rmdir", at("/a/b/../../e/")) // cleaned: /e
	e2fsckClean(t, img)

	if names := debugfsNames(t, img, "/a/b"); !slices.Equal(names, []string{"c"}) {
		t.Errorf("/a/b after a failed rmdir: %q", names)
	}
	if names := debugfsNames(t, img, "/d"); !slices.Equal(names, []string{"data.bin", "hello.txt", "pipe", "sym"}) {
		t.Errorf("/d: %q", names)
	}
	if names := debugfsNames(t, img, "/"); slices.Contains(names, "sub") || slices.Contains(names, "link") || slices.Contains(names, "e") {
		t.Errorf("/: %q", names)
	}
	st := hosttools.Run(t, "debugfs", "-R", "stat /hello.txt", img)
	for _, want := range []string{"Mode:  0700", "Links: 2"} {
		if !strings.Contains(st, want) {
			t.Errorf("debugfs stat /hello.txt lacks %q:\n%s", want, st)
		}
	}
	st = hosttools.Run(t, "debugfs", "-R", "stat /a/b/c/new", img)
	for _, want := range []string{"User:  1234", "Group:    99", "Mode:  0700"} {
		if !strings.Contains(st, want) {
			t.Errorf("debugfs stat /a/b/c/new lacks %q:\n%s", want, st)
		}
	}
	if st := hosttools.Run(t, "debugfs", "-R", "stat /d", img); !strings.Contains(st, "Group:    77") || !strings.Contains(st, "2001") {
		t.Errorf("debugfs stat /d:\n%s", st)
	}
	if got := hosttools.Run(t, "debugfs", "-R", "cat /d/sym", img); got != "../hello.txt" {
		// debugfs cat of a fast symlink prints nothing; check with ls.
		if !strings.Contains(ok(t, "ls", "-l", at("/d/sym")), "-> ../hello.txt") {
			t.Errorf("symlink target: %q", got)
		}
	}
	fails(t, 1, "not empty", "rmdir", at("/a/b/c"))
	fails(t, 1, "is a directory", "rm", at("/a"))
	fails(t, 1, "root", "rm", "-r", at("/"))
	fails(t, 1, "file exists", "mkdir", at("/a"))
	ok(t, "rm", "-f", at("/nothing"))
	e2fsckClean(t, img)

	// As uid 1000: what root owns is out of reach.
	fails(t, 1, "permission denied", "mkdir", "--uid", "1000", at("/mine"))
	fails(t, 1, "operation not permitted", "chown", "--uid", "1000", "1000", at("/hello.txt"))
	fails(t, 1, "read-only", "mkdir", "--ro", at("/ro"))

	// A second writer is refused while the image is open for writing.
	w, err := ukfs.Open(img, ukfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fails(t, 1, "locked", "touch", at("/x"))
	fails(t, 1, "locked", "ls", img)
	w.Close()
	e2fsckClean(t, img)
}

// TestCopyRoundTrip copies a tree with every file type into an ext2
// image with cp -a, out again, and compares.
func TestCopyRoundTrip(t *testing.T) {
	seed := seedTree(t)
	img := mkext2Seeded(t, "", "32M")
	ok(t, "cp", "-a", "--progress=never", seed, img+":/")
	e2fsckClean(t, img)
	if got := hosttools.Run(t, "debugfs", "-R", "cat /tree/sub/deeper/x.txt", img); got != "x" {
		t.Errorf("debugfs cat: %q", got)
	}
	st := hosttools.Run(t, "debugfs", "-R", "stat /tree/sparse", img)
	if !strings.Contains(st, "Size: 4194307") || blocks(t, img+":/tree/sparse") > 64 {
		t.Errorf("sparse file in the image:\n%s", st)
	}
	out := filepath.Join(t.TempDir(), "out")
	ok(t, "cp", "-a", img+":/tree", out)
	compareTrees(t, seed, out)

	// Image to image, and within one image.
	img2 := mkext2Seeded(t, "", "32M")
	ok(t, "cp", "-a", img+":/tree", img2+":/copy")
	ok(t, "cp", "-r", img2+":/copy/sub", img2+":/again")
	ok(t, "cp", img2+":/copy/hello.txt", img2+":/again/h")
	e2fsckClean(t, img2)
	out2 := filepath.Join(t.TempDir(), "out2")
	ok(t, "cp", "-a", img2+":/copy", out2)
	compareTrees(t, seed, out2)
	if b, _ := exec.Command("debugfs", "-R", "cat /again/h", img2).Output(); string(b) != "hello\n" {
		t.Errorf("cp within an image: %q", b)
	}
	fails(t, 1, "into itself", "cp", "-r", img2+":/copy", img2+":/copy/sub")
	fails(t, 1, "not copied without -r", "cp", img2+":/copy", out2)

	// Without -p: owner is the credential, mode less 022.
	ok(t, "cp", "--uid", "0", filepath.Join(seed, "sub/deeper/x.txt"), img2+":/plain")
	if st := hosttools.Run(t, "debugfs", "-R", "stat /plain", img2); !strings.Contains(st, "User:     0") || !strings.Contains(st, "Mode:  0640") {
		t.Errorf("cp without -p:\n%s", st)
	}
}

// compareTrees checks that got has what want has: types, modes, owners,
// modification times, contents, link targets, hard links, holes.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	inodes := map[uint64]uint64{}
	filepath.Walk(want, func(p string, wfi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(want, p)
		if rel == "." {
			return nil // the top directory's mode and times are the destination's
		}
		g := filepath.Join(got, rel)
		gfi, err := os.Lstat(g)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		ws, gs := wfi.Sys().(*syscall.Stat_t), gfi.Sys().(*syscall.Stat_t)
		if ws.Mode != gs.Mode || ws.Uid != gs.Uid || ws.Gid != gs.Gid || ws.Rdev != gs.Rdev {
			t.Errorf("%s: mode %o uid %d gid %d rdev %d, want %o %d %d %d", rel, gs.Mode, gs.Uid, gs.Gid, gs.Rdev, ws.Mode, ws.Uid, ws.Gid, ws.Rdev)
		}
		// Seconds: ext2's small inodes keep no nanoseconds.
		if wfi.Mode().IsRegular() || wfi.IsDir() {
			if wfi.ModTime().Unix() != gfi.ModTime().Unix() {
				t.Errorf("%s: mtime %v, want %v", rel, gfi.ModTime(), wfi.ModTime())
			}
		}
		switch {
		case wfi.Mode().IsRegular():
			wb, _ := os.ReadFile(p)
			gb, _ := os.ReadFile(g)
			if !bytes.Equal(wb, gb) {
				t.Errorf("%s: contents differ", rel)
			}
			if ws.Nlink > 1 {
				if prev, seen := inodes[ws.Ino]; seen && prev != gs.Ino {
					t.Errorf("%s: hard link not kept", rel)
				}
				inodes[ws.Ino] = gs.Ino
			}
			if rel == "sparse" && gs.Blocks > 64 {
				t.Errorf("sparse: %d blocks, holes lost", gs.Blocks)
			}
		case wfi.Mode()&os.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			gl, _ := os.Readlink(g)
			if wl != gl {
				t.Errorf("%s: link %q, want %q", rel, gl, wl)
			}
		}
		return nil
	})
}

func TestTarUntar(t *testing.T) {
	seed := seedTree(t)
	img := mkext2Seeded(t, seed, "32M")
	long := strings.Repeat("n", 120) + "/" + strings.Repeat("m", 120)
	ok(t, "mkdir", "-p", img+":/"+long)
	f, err := ukfs.Open(img, ukfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Setxattr("/sub/deeper/x.txt", "user.note", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	archive, errs, code := rump9p(t, "", "tar", img+":/")
	if code != 0 {
		t.Fatalf("tar: %d %s", code, errs)
	}
	seen := map[string]*tar.Header{}
	tr := tar.NewReader(strings.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if h.Name == "sparse" {
			b, err := io.ReadAll(tr)
			if err != nil || len(b) != 4<<20+3 || !bytes.HasSuffix(b, []byte("end")) || bytes.Count(b, []byte{0}) != 4<<20 {
				t.Errorf("sparse member's data: %d bytes, %v", len(b), err)
			}
		}
	}
	for name, typ := range map[string]byte{
		"./": tar.TypeDir, "hello.txt": tar.TypeReg, "sub/hard.txt": tar.TypeLink, "link": tar.TypeSymlink,
		"fifo": tar.TypeFifo, "null": tar.TypeChar, long + "/": tar.TypeDir,
	} {
		if h, found := seen[name]; !found || h.Typeflag != typ {
			t.Errorf("member %s: %+v", name, h)
		}
	}
	if h := seen["sparse"]; h == nil || h.Size != 4<<20+3 {
		t.Errorf("sparse member: %+v", h)
	}
	if h := seen["sub/deeper/x.txt"]; h == nil || h.Uid != 1000 || h.Mode != 0o640 || h.PAXRecords["SCHILY.xattr.user.note"] != "kept" {
		t.Errorf("x.txt: %+v", h)
	}

	// GNU tar reads it too, holes and long names included.
	arch := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(arch, []byte(archive), 0o644)
	hostOut := t.TempDir()
	hosttools.Run(t, "tar", "-C", hostOut, "-xf", arch)
	if b, err := os.ReadFile(filepath.Join(hostOut, "sparse")); err != nil || len(b) != 4<<20+3 || !bytes.HasSuffix(b, []byte("end")) {
		t.Errorf("GNU tar's sparse: %d bytes, %v", len(b), err)
	}
	if _, err := os.Stat(filepath.Join(hostOut, long)); err != nil {
		t.Errorf("GNU tar's long name: %v", err)
	}

	// Back into a fresh image: the same tree, and a clean image.
	img2 := mkext2Seeded(t, "", "32M")
	if _, errs, code := rump9p(t, archive, "untar", img2+":/restored"); code != 0 {
		t.Fatalf("untar: %d %s", code, errs)
	}
	e2fsckClean(t, img2)
	if got := hosttools.Run(t, "debugfs", "-R", "ea_get /restored/sub/deeper/x.txt user.note", img2); !strings.Contains(got, "kept") {
		t.Errorf("xattr after untar: %q", got)
	}
	// cp -a keeps it too, image to image.
	ok(t, "cp", "-a", img2+":/restored/sub", img2+":/sub2")
	if got := hosttools.Run(t, "debugfs", "-R", "ea_get /sub2/deeper/x.txt user.note", img2); !strings.Contains(got, "kept") {
		t.Errorf("xattr after cp -a: %q", got)
	}
	e2fsckClean(t, img2)
	out := filepath.Join(t.TempDir(), "out")
	ok(t, "cp", "-a", img2+":/restored", out)
	os.RemoveAll(filepath.Join(out, strings.Split(long, "/")[0]))
	os.RemoveAll(filepath.Join(out, "lost+found"))
	compareTrees(t, seed, out)

	// A tarball made by GNU tar, with holes (--sparse) and pax headers.
	gnu := filepath.Join(t.TempDir(), "gnu.tar")
	hosttools.Run(t, "tar", "--sparse", "--format=pax", "-C", seed, "-cf", gnu, ".")
	img3 := mkext2Seeded(t, "", "32M")
	ok(t, "untar", "-f", gnu, img3)
	e2fsckClean(t, img3)
	if got := hosttools.Run(t, "debugfs", "-R", "cat /sub/deeper/x.txt", img3); got != "x" {
		t.Errorf("untar of GNU tar: %q", got)
	}
	st := hosttools.Run(t, "debugfs", "-R", "stat /sparse", img3)
	if !strings.Contains(st, "Size: 4194307") || blocks(t, img3+":/sparse") > 64 {
		t.Errorf("sparse member:\n%s", st)
	}

	// Members outside the directory are refused; the rest goes in.
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("e"))
	tw.WriteHeader(&tar.Header{Name: "fine", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("f"))
	tw.Close()
	_, errs, code = rump9p(t, evil.String(), "untar", img3+":/in")
	if code != 1 || !strings.Contains(errs, "outside") {
		t.Errorf("untar of ../escape: %d %s", code, errs)
	}
	if got := hosttools.Run(t, "debugfs", "-R", "cat /in/fine", img3); got != "f" {
		t.Errorf("member after a refused one: %q", got)
	}
	e2fsckClean(t, img3)

	// A full image: a clear error, exit 1, a consistent image.
	small := mkext2Seeded(t, "", "1M")
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, bytes.Repeat([]byte{1}, 2<<20), 0o644)
	fails(t, 1, "no space left", "cp", big, small+":/big")
	e2fsckClean(t, small)
}

func TestFATExt4AndISO(t *testing.T) {
	for _, bits := range []string{"16", "32"} {
		img := mkfat(t, bits)
		got := lines(ok(t, "ls", img))
		mdir := hosttools.Run(t, "mdir", "-b", "-i", img, "::/")
		var want []string
		for _, l := range lines(mdir) {
			want = append(want, strings.ToLower(strings.Trim(strings.TrimPrefix(l, "::/"), "/")))
		}
		sort.Strings(want)
		for i := range got {
			got[i] = strings.ToLower(got[i])
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("FAT%s ls: %q, mdir: %q", bits, got, want)
		}
		if out := ok(t, "cat", img+":/README.TXT"); out != "from mcopy\n" {
			t.Errorf("FAT%s cat: %q", bits, out)
		}
		src := filepath.Join(t.TempDir(), "long name for vfat.txt")
		os.WriteFile(src, bytes.Repeat([]byte("fat"), 10000), 0o644)
		ok(t, "cp", src, img+":/DOCS/")
		ok(t, "mkdir", "-p", img+":/a/b")
		ok(t, "mv", img+":/README.TXT", img+":/a/b/readme.txt")
		hosttools.Run(t, "fsck.fat", "-n", img)
		if got := hosttools.Run(t, "mtype", "-i", img, "::/DOCS/long name for vfat.txt"); got != strings.Repeat("fat", 10000) {
			t.Errorf("FAT%s mtype: %d bytes", bits, len(got))
		}
		if got := hosttools.Run(t, "mtype", "-i", img, "::/a/b/readme.txt"); got != "from mcopy\n" {
			t.Errorf("FAT%s mtype after mv: %q", bits, got)
		}
		ok(t, "rm", "-r", img+":/a")
		hosttools.Run(t, "fsck.fat", "-n", img)
	}

	// ext4 reads, and refuses writing with a message that says why.
	e4 := filepath.Join(t.TempDir(), "ext4.img")
	tree := seedTree(t)
	hosttools.Run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-d", tree, e4, "32M")
	if got, want := lines(ok(t, "ls", e4)), debugfsNames(t, e4, "/"); !slices.Equal(got, want) {
		t.Errorf("ext4 ls: %q, debugfs: %q", got, want)
	}
	if out := ok(t, "cat", e4+":/sub/deeper/x.txt"); out != "x" {
		t.Errorf("ext4 cat: %q", out)
	}
	out := filepath.Join(t.TempDir(), "out")
	ok(t, "cp", "-a", e4+":/", out)
	os.RemoveAll(filepath.Join(out, "lost+found"))
	compareTrees(t, tree, out)
	fails(t, 1, "read-only", "mkdir", e4+":/new")
	hosttools.Run(t, "e2fsck", "-fn", e4)

	seed := filepath.Join(t.TempDir(), "iso")
	os.MkdirAll(filepath.Join(seed, "docs"), 0o755)
	os.WriteFile(filepath.Join(seed, "docs/readme"), []byte("on a CD\n"), 0o644)
	iso := filepath.Join(t.TempDir(), "cd.iso")
	hosttools.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", iso, seed)
	if got := lines(ok(t, "ls", iso+":/docs")); !slices.Equal(got, []string{"readme"}) {
		t.Errorf("ISO ls: %q", got)
	}
	if out := ok(t, "cat", iso+":/docs/readme"); out != "on a CD\n" {
		t.Errorf("ISO cat: %q", out)
	}
	if info := ok(t, "info", iso); !strings.Contains(info, "cd9660") || !strings.Contains(info, "read-only") {
		t.Errorf("ISO info:\n%s", info)
	}
	fails(t, 1, "read-only", "mkdir", iso+":/new")
}
