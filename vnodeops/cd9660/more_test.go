package cd9660

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/tests/hosttools"
	"github.com/rump9p/rump9p/vnodeops"
)

// namesTree writes a tree whose names show the name mappings.
func namesTree(t *testing.T) string {
	src := t.TempDir()
	for p, data := range map[string]string{
		"file": "f", "dir/inner": "i", "README.": "r", "Mixed Case.longext": "m",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		if err := os.WriteFile(filepath.Join(src, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// paths returns the sorted paths of a walk.
func paths(m map[string]file) []string {
	var out []string
	for p := range m {
		if p != "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestNames checks which tree and which names each option gives: Rock
// Ridge names, Joliet names (case kept), plain names mapped as NetBSD
// maps them, as recorded (nomaptrans), and with versions (gens).
func TestNames(t *testing.T) {
	src := namesTree(t)
	rj := mkiso(t, src, "-R", "-J")
	j := mkiso(t, src, "--norock", "-J")
	plain := mkiso(t, src, "--norock")
	for _, c := range []struct {
		name string
		img  string
		opts map[string]string
		want []string
	}{
		{"rockridge", rj, nil, []string{"/Mixed Case.longext", "/README.", "/dir", "/dir/inner", "/file"}},
		{"norrip-joliet", rj, map[string]string{"norrip": ""}, []string{"/Mixed Case.longext", "/README.", "/dir", "/dir/inner", "/file"}},
		{"joliet-only", j, nil, []string{"/Mixed Case.longext", "/README.", "/dir", "/dir/inner", "/file"}},
		{"norrip-nojoliet", rj, map[string]string{"norrip": "true", "nojoliet": "1"}, []string{"/dir", "/dir/inner", "/file", "/mixed_ca.lon", "/readme"}},
		{"plain", plain, nil, []string{"/dir", "/dir/inner", "/file", "/mixed_ca.lon", "/readme"}},
		{"plain-nomaptrans", plain, map[string]string{"nomaptrans": ""}, []string{"/DIR", "/DIR/INNER.;1", "/FILE.;1", "/MIXED_CA.LON;1", "/README.;1"}},
		{"plain-gens", plain, map[string]string{"gens": ""}, []string{"/dir", "/dir/inner.;1", "/file.;1", "/mixed_ca.lon;1", "/readme.;1"}},
		{"nojoliet-false", j, map[string]string{"nojoliet": "false"}, []string{"/Mixed Case.longext", "/README.", "/dir", "/dir/inner", "/file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := mountFile(t, c.img, c.opts)
			got := walk(t, fs)
			if p := paths(got); !slices.Equal(p, c.want) {
				t.Errorf("paths %q, want %q", p, c.want)
			}
			for p, f := range got {
				if f.attr.Mode&vnodeops.S_IFMT == vnodeops.S_IFREG && len(f.data) != 1 {
					t.Errorf("%s: %q", p, f.data)
				}
			}
		})
	}
}

// TestJolietLongNames checks Joliet names past 64 characters
// (-joliet-long: 103) and outside the Latin-1 range.
func TestJolietLongNames(t *testing.T) {
	src := t.TempDir()
	long := strings.Repeat("Long ", 20) + "name.txt" // 108 characters
	names := []string{long[:103], "日本語のファイル名.txt", "x"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(src, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, _ := mountFile(t, mkiso(t, src, "--norock", "-J", "-joliet-long"), nil)
	if fs.joliet != 3 {
		t.Errorf("Joliet level %d, want 3", fs.joliet)
	}
	got := walk(t, fs)
	for _, n := range names {
		if f, ok := got["/"+n]; !ok || string(f.data) != n {
			t.Errorf("%q: found %v, content %q", n, ok, f.data)
		}
	}
}

// TestOptionErrors checks that unknown options and bad values are EINVAL
// naming them.
func TestOptionErrors(t *testing.T) {
	img, err := os.ReadFile(mkiso(t, namesTree(t), "-R"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"rrip": "", "casefold": "1"}, "casefold, rrip"},
		{map[string]string{"gens": "maybe"}, "gens"},
	} {
		_, _, err := mountBytes(t, img, c.opts)
		if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("options %v: %v, want EINVAL naming %s", c.opts, err, c.want)
		}
	}
	// Not an ISO image at all: EINVAL, and Probe says no.
	junk := make([]byte, 64<<10)
	if _, _, err := mountBytes(t, junk, nil); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("mount of zeros: %v, want EINVAL", err)
	}
	if Probe(bytes.NewReader(junk), int64(len(junk))) || !Probe(bytes.NewReader(img), int64(len(img))) {
		t.Error("Probe wrong")
	}
}

// TestHybridAndAuto mounts isohybrid-style images (an MBR, or a GPT,
// in the system area; xorriso's -append_partition) through the kernel
// with type auto on the whole image, and a plain one with an El Torito
// boot catalog.
func TestHybridAndAuto(t *testing.T) {
	src := namesTree(t)
	part := filepath.Join(t.TempDir(), "efi.img")
	if err := os.WriteFile(part, bytes.Repeat([]byte{0xE5}, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(src, "boot.img")
	if err := os.WriteFile(boot, bytes.Repeat([]byte{0x90}, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		args  []string
		table string
	}{
		{"mbr", []string{"-R", "-J", "-append_partition", "2", "0xef", part}, "dos"},
		{"gpt", []string{"-R", "-J", "-append_partition", "2", "0xef", part, "-appended_part_as_gpt"}, "gpt"},
		{"eltorito", []string{"-R", "-b", "boot.img", "-no-emul-boot"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := mkiso(t, src, c.args...)
			if c.table != "" {
				out, err := exec.Command(hosttools.Need(t, "sfdisk"), "--dump", img).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "label: "+c.table) {
					t.Fatalf("no %s partition table in the image: %v\n%s", c.table, err, out)
				}
			}
			p := kernelMount(t, img, "auto")
			fd, err := p.Open("/mnt/dir/inner", syscall.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			n, err := p.Pread(fd, buf, 0)
			if err != nil || string(buf[:n]) != "i" {
				t.Errorf("read %q, %v", buf[:n], err)
			}
			p.Close(fd)
			if _, err := p.Stat("/mnt/boot.catalog"); c.name == "eltorito" && err != nil {
				t.Errorf("El Torito catalog not shown as a file: %v", err)
			}
		})
	}
}

// kernelMount boots a kernel (shut down at cleanup), mounts the image at
// path on /mnt as type typ, and returns a root process.
func kernelMount(t *testing.T, path, typ string) *rumpcore.Proc {
	t.Helper()
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Shutdown() })
	if err := k.Mount("/mnt", rumpcore.MountSpec{Type: typ, Image: path, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	return k.NewProc(vnodeops.Root)
}

// TestZisofs reads a file that xorriso compressed with zisofs (RRIP ZF):
// data, a run of zeros (a block of pointer i == pointer i+1), a tail.
func TestZisofs(t *testing.T) {
	src := t.TempDir()
	data := append(append(pattern(200_000, 9), make([]byte, 100_000)...), "tail"...)
	if err := os.WriteFile(filepath.Join(src, "comp"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "z.iso")
	cmd := exec.Command(hosttools.Need(t, "xorriso"), "-outdev", img, "-rockridge", "on",
		"-map", src, "/", "-set_filter_r", "--zisofs", "/", "--", "-commit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	fs, lb := mountFile(t, img, nil)
	got := walk(t, fs)
	f := got["/comp"]
	if !bytes.Equal(f.data, data) || f.attr.Size != uint64(len(data)) {
		t.Fatalf("content differs: %d bytes, size %d, want %d; log %s", len(f.data), f.attr.Size, len(data), lb)
	}
	v, err := fs.VGet(f.ino)
	if err != nil {
		t.Fatal(err)
	}
	if v.(*node).zf == nil {
		t.Error("file not compressed: the test proves nothing")
	}
	// Reads that start inside a block and span blocks.
	buf := make([]byte, 70_000)
	n, err := v.Read(buf, 30_000)
	if err != nil || n != len(buf) || !bytes.Equal(buf, data[30_000:100_000]) {
		t.Errorf("Read(70000 at 30000) = %d, %v", n, err)
	}
}
