package msdosfs_test

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
)

var fatTypes = []int{12, 16, 32}

// TestReadMcopyTree reads a tree written by mcopy -s back through the
// kernel, read-only and read-write, and compares it with the source.
func TestReadMcopyTree(t *testing.T) {
	for _, bits := range fatTypes {
		t.Run(fmt.Sprintf("FAT%d", bits), func(t *testing.T) {
			src := sourceTree(t)
			img := mkfs(t, bits)
			populate(t, img, src)
			for _, ro := range []bool{true, false} {
				k, p := boot(t, img, rumpcore.MountSpec{ReadOnly: ro})
				compareTree(t, p, "/mnt", src)
				shutdown(t, k)
				fsck(t, img)
			}
		})
	}
}

// TestAutoProbe mounts with type auto.
func TestAutoProbe(t *testing.T) {
	img := mkfs(t, 16)
	k, p := boot(t, img, rumpcore.MountSpec{Type: "auto", ReadOnly: true})
	defer shutdown(t, k)
	if _, err := p.Stat("/mnt"); err != nil {
		t.Fatal(err)
	}
	if ms := k.Mounts(); ms[len(ms)-1].Type != "msdosfs" {
		t.Fatalf("auto mounted as %q", ms[len(ms)-1].Type)
	}
}

// TestWriteReadBack writes a tree through the driver and checks it with
// fsck.fat, mdir and mcopy, and by remounting.
func TestWriteReadBack(t *testing.T) {
	for _, bits := range fatTypes {
		t.Run(fmt.Sprintf("FAT%d", bits), func(t *testing.T) {
			img := mkfs(t, bits)
			k, p := boot(t, img, rumpcore.MountSpec{})
			files := map[string][]byte{
				"/mnt/Hello World.txt":           []byte("hello\n"),
				"/mnt/lower.txt":                 []byte("lower\n"),
				"/mnt/UPPER.TXT":                 []byte("upper\n"),
				"/mnt/MiXeD.txt":                 []byte("mixed\n"),
				"/mnt/Dir One/Sub/file.c":        bytes.Repeat([]byte("c"), 5000),
				"/mnt/Dir One/émoji 😀 name.text": []byte("astral\n"),
				"/mnt/Dir One/名前.txt":            []byte("cjk\n"),
				"/mnt/big":                       bytes.Repeat([]byte("0123456789abcdef"), 20000),
			}
			if err := p.Mkdir("/mnt/Dir One", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := p.Mkdir("/mnt/Dir One/Sub", 0o755); err != nil {
				t.Fatal(err)
			}
			for path, data := range files {
				writeFile(t, p, path, data)
			}
			for path, data := range files {
				if got := readAll(t, p, path); !bytes.Equal(got, data) {
					t.Errorf("%s: read back %d bytes, want %d", path, len(got), len(data))
				}
			}
			shutdown(t, k)
			fsck(t, img)

			// mtools sees the same names and contents.
			listing := run(t, "mdir", "-i", img, "-/", "::")
			// Long names appear as such, short-only ones in the 8.3 columns.
			for _, name := range []string{"Hello World.txt", "lower    txt", "UPPER    TXT", "MiXeD.txt", "file     c", "名前.txt", "big"} {
				if !strings.Contains(listing, name) {
					t.Errorf("mdir does not list %q:\n%s", name, listing)
				}
			}
			for path, data := range files {
				if strings.Contains(path, "😀") {
					continue // mtools cannot name it
				}
				if got := mcat(t, img, strings.TrimPrefix(path, "/mnt")); !bytes.Equal(got, data) {
					t.Errorf("mcopy %s: %d bytes, want %d", path, len(got), len(data))
				}
			}

			// A remount reads it all back.
			k, p = boot(t, img, rumpcore.MountSpec{ReadOnly: true})
			for path, data := range files {
				if got := readAll(t, p, path); !bytes.Equal(got, data) {
					t.Errorf("remount %s: %d bytes, want %d", path, len(got), len(data))
				}
			}
			shutdown(t, k)
		})
	}
}

// TestShortNameFlags checks that 8.3 names in one case per part are
// stored without long entries, using the NT lowercase flags, and that
// lookup ignores case while create keeps it.
func TestShortNameFlags(t *testing.T) {
	img := mkfs(t, 12)
	k, p := boot(t, img, rumpcore.MountSpec{})
	writeFile(t, p, "/mnt/lower.txt", []byte("1"))
	writeFile(t, p, "/mnt/UP.txt", []byte("2"))
	writeFile(t, p, "/mnt/Mixed.TXT", []byte("3"))
	if _, err := p.Open("/mnt/LOWER.TXT", syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644); err != syscall.EEXIST {
		t.Errorf("create LOWER.TXT over lower.txt: %v, want EEXIST", err)
	}
	if got := readAll(t, p, "/mnt/LoWeR.TxT"); string(got) != "1" {
		t.Errorf("case-insensitive lookup read %q", got)
	}
	if got := readAll(t, p, "/mnt/MIXED.TXT"); string(got) != "3" {
		t.Errorf("MIXED.TXT read %q", got)
	}
	var names []string
	for _, d := range listDir(t, p, "/mnt") {
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "Mixed.TXT,UP.txt,lower.txt" {
		t.Errorf("names %q", names)
	}
	shutdown(t, k)
	fsck(t, img)
	// mdir -/ shows the short name column: lower.txt and UP.txt have no
	// long name, so their short names are LOWER TXT and UP TXT and no
	// alias with a ~ appears for them; Mixed.TXT needs one.
	listing := run(t, "mdir", "-i", img, "::")
	if !strings.Contains(listing, "lower    txt") && !strings.Contains(listing, "LOWER    TXT") {
		t.Errorf("lower.txt short entry missing:\n%s", listing)
	}
	if !strings.Contains(listing, "MIXED~1  TXT") {
		t.Errorf("Mixed.TXT alias missing:\n%s", listing)
	}
	if strings.Count(listing, "~") != 1 {
		t.Errorf("unexpected aliases:\n%s", listing)
	}
}
