package msdosfs_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/vnodeops"
	_ "github.com/rump9p/rump9p/vnodeops/msdosfs"
)

// tool returns the path of an external program the tests need; a missing
// tool fails the test.
func tool(t testing.TB, name string) string {
	t.Helper()
	return hosttools.Need(t, name)
}

// run runs a command and fails the test when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "MTOOLS_SKIP_CHECK=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// fatGeom says how to make an image of each type.
var fatGeom = map[int][]string{
	12: {"-F", "12", "-S", "512", "-s", "2"},
	16: {"-F", "16", "-S", "512", "-s", "4"},
	32: {"-F", "32", "-S", "512", "-s", "1"},
}

var fatSizeKiB = map[int]int{12: 3072, 16: 16384, 32: 40000}

// mkfs makes a fresh image of FAT type bits in a temporary directory.
func mkfs(t testing.TB, bits int) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), fmt.Sprintf("fat%d.img", bits))
	args := append([]string{}, fatGeom[bits]...)
	args = append(args, "-C", img, fmt.Sprint(fatSizeKiB[bits]))
	run(t, "mkfs.fat", args...)
	return img
}

// fsck runs fsck.fat -n on img and fails the test unless it is clean.
func fsck(t testing.TB, img string) {
	t.Helper()
	out, err := runErr(t, "fsck.fat", "-n", "-V", img)
	if err != nil {
		t.Fatalf("fsck.fat -n %s: %v\n%s", img, err, out)
	}
}

// sourceTree writes a tree with long, mixed-case and non-ASCII names and
// returns its root. mtools cannot carry characters past U+FFFF, so those
// are tested through the driver alone.
func sourceTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	big := make([]byte, 150_000)
	rng.Read(big)
	files := map[string][]byte{
		"README":          []byte("short upper name\n"),
		"lower.txt":       []byte("lower case 8.3 name\n"),
		"UPPER.TXT":       []byte("upper case 8.3\n"),
		"MixedCase.Md":    []byte("# mixed\n"),
		"Hello World.txt": []byte("hello, world\n"),
		"a very long file name that spans several long entries.text": []byte("long\n"),
		"ünïcødé-名前.txt":                                             []byte("unicode\n"),
		"empty":                                                      nil,
		"big.bin":                                                    big,
		"Sub Dir/Nested/deep file.dat":                               []byte("deep\n"),
		"Sub Dir/x.y":                                                []byte("xy"),
		"Sub Dir/Nested/Ærø/ƒile name":                               []byte("f"),
		"many/f00":                                                   []byte("0"),
	}
	for i := 1; i < 40; i++ {
		files[fmt.Sprintf("many/file number %02d with a long name", i)] = []byte(fmt.Sprint(i))
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "Empty Dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// populate copies the tree at src into the root of img with mcopy -s.
func populate(t *testing.T, img, src string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-s", "-i", img}
	for _, e := range ents {
		args = append(args, filepath.Join(src, e.Name()))
	}
	args = append(args, "::")
	run(t, "mcopy", args...)
}

// boot boots a kernel and mounts img at /mnt.
func boot(t testing.TB, img string, spec rumpcore.MountSpec) (*rumpcore.Kernel, *rumpcore.Proc) {
	t.Helper()
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Type == "" {
		spec.Type = "msdosfs"
	}
	spec.Image = img
	if err := k.Mount("/mnt", spec); err != nil {
		t.Fatalf("mount %s: %v", img, err)
	}
	p := k.NewProc(vnodeops.Root)
	p.Umask(0)
	return k, p
}

func shutdown(t testing.TB, k *rumpcore.Kernel) {
	t.Helper()
	if err := k.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// readAll reads a file through the kernel.
func readAll(t *testing.T, p *rumpcore.Proc, path string) []byte {
	t.Helper()
	fd, err := p.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer p.Close(fd)
	var out []byte
	buf := make([]byte, 7000) // not a multiple of the cluster size
	for {
		n, err := p.Read(fd, buf)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// writeFile creates path through the kernel with data.
func writeFile(t *testing.T, p *rumpcore.Proc, path string, data []byte) {
	t.Helper()
	fd, err := p.Open(path, syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC, 0o644)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	defer p.Close(fd)
	if len(data) > 0 {
		n, err := p.Write(fd, data)
		if err != nil || n != len(data) {
			t.Fatalf("write %s: %d, %v", path, n, err)
		}
	}
}

// listDir returns the names of a directory through the kernel, without
// "." and "..", sorted; it checks that "." and ".." come first.
func listDir(t *testing.T, p *rumpcore.Proc, path string) []vnodeops.Dirent {
	t.Helper()
	fd, err := p.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatalf("opendir %s: %v", path, err)
	}
	defer p.Close(fd)
	var all []vnodeops.Dirent
	for {
		ds, err := p.Getdents(fd, 7)
		if err != nil {
			t.Fatalf("getdents %s: %v", path, err)
		}
		if len(ds) == 0 {
			break
		}
		all = append(all, ds...)
	}
	if len(all) < 2 || all[0].Name != "." || all[1].Name != ".." {
		t.Fatalf("%s: listing does not start with . and ..: %v", path, all)
	}
	out := all[2:]
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// compareTree checks that the tree under mnt in the kernel equals the
// host tree at src: names (with case), types, contents.
func compareTree(t *testing.T, p *rumpcore.Proc, mnt, src string) {
	t.Helper()
	want := map[string]fs.DirEntry{}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		want[e.Name()] = e
	}
	got := listDir(t, p, mnt)
	if len(got) != len(want) {
		var names []string
		for _, d := range got {
			names = append(names, d.Name)
		}
		t.Errorf("%s: %d entries %q, want %d", mnt, len(got), names, len(want))
	}
	for _, d := range got {
		e, ok := want[d.Name]
		if !ok {
			t.Errorf("%s: unexpected entry %q", mnt, d.Name)
			continue
		}
		path := mnt + "/" + d.Name
		a, err := p.Stat(path)
		if err != nil {
			t.Errorf("stat %s: %v", path, err)
			continue
		}
		if a.Ino != d.Ino {
			t.Errorf("%s: dirent ino %d, stat ino %d", path, d.Ino, a.Ino)
		}
		if e.IsDir() {
			if !a.IsDir() || d.Type != vnodeops.DT_DIR {
				t.Errorf("%s: not a directory", path)
				continue
			}
			compareTree(t, p, path, filepath.Join(src, d.Name))
			continue
		}
		if a.IsDir() || d.Type != vnodeops.DT_REG {
			t.Errorf("%s: not a file", path)
			continue
		}
		data, _ := os.ReadFile(filepath.Join(src, d.Name))
		if got := readAll(t, p, path); !bytes.Equal(got, data) {
			t.Errorf("%s: content differs (%d bytes, want %d)", path, len(got), len(data))
		}
		if a.Size != uint64(len(data)) {
			t.Errorf("%s: size %d, want %d", path, a.Size, len(data))
		}
	}
}

// mcat reads a file from the image with mtools.
func mcat(t *testing.T, img, path string) []byte {
	t.Helper()
	return []byte(run(t, "mcopy", "-n", "-i", img, "::"+path, "-"))
}

// crossCheck extracts the whole image with mcopy -s and compares the
// result with what the driver reads from the image (mounted read-only in
// a new kernel): two independent readers must agree on every name, type
// and content.
func crossCheck(t *testing.T, img string) {
	t.Helper()
	dst := t.TempDir()
	// mdir -b lists bare names, and fails on an empty root.
	ls, err := runErr(t, "mdir", "-/", "-b", "-i", img, "::")
	switch {
	case err != nil && !strings.Contains(ls, `File "::" not found`):
		t.Fatalf("mdir -/ %s: %v\n%s", img, err, ls)
	case err == nil && strings.TrimSpace(ls) != "":
		run(t, "mcopy", "-s", "-n", "-i", img, "::*", dst+"/")
	}
	k, p := boot(t, img, rumpcore.MountSpec{ReadOnly: true})
	defer shutdown(t, k)
	compareTree(t, p, "/mnt", dst)
}
