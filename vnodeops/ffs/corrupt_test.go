package ffs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// corruptBase makes a small image with a file of direct and indirect
// blocks, a directory and a short symlink, and returns its bytes, its
// superblock and the inode numbers of its files.
func corruptBase(t *testing.T, v variant) ([]byte, *superblock, map[string]uint64) {
	t.Helper()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "dir"), 0o755)
	os.WriteFile(filepath.Join(src, "dir", "file"), pattern(14*v.bsize+3, 1), 0o644)
	os.WriteFile(filepath.Join(src, "small"), []byte("small"), 0o644)
	os.Symlink("small", filepath.Join(src, "link"))
	img := filepath.Join(t.TempDir(), "img")
	makefs(t, img, src, v, "2m")
	fs := mountImage(t, img, true, nil, nil)
	c := newClient(t, fs)
	inos := map[string]uint64{"": rootIno}
	for _, p := range []string{"dir", "dir/file", "small", "link"} {
		_, ino, err := c.walk(p)
		if err != nil {
			t.Fatal(err)
		}
		inos[p] = ino
	}
	sb := fs.(*fsys).sb
	c.release()
	fs.Unmount(false)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return data, sb, inos
}

// inodeAt returns the on-disk inode ino of an image's bytes.
func inodeAt(data []byte, sb *superblock, ino uint64) dinode {
	a, off := sb.inoLoc(ino)
	o := a<<sb.fshift + off
	return dinode{b: data[o : o+sb.dinodeSize()], bo: sb.bo, ufs2: sb.ufs2}
}

// TestCorrupt: each hand-made corruption gives EIO from the operation
// that meets it, with exactly one log line naming the mount and the
// inode, and never a panic or a hang.
func TestCorrupt(t *testing.T) {
	type fixture struct {
		name  string
		patch func(data []byte, sb *superblock, inos map[string]uint64)
		path  string // walked; the last step must fail, or op
		op    func(v vnodeops.Vnode) error
		ino   string // file the log line names
	}
	readOp := func(v vnodeops.Vnode) error { _, err := readAll(v); return err }
	lookupOp := func(v vnodeops.Vnode) error { _, err := v.Lookup("nothing"); return err }
	fixtures := []fixture{
		{"unknown file type", func(d []byte, sb *superblock, in map[string]uint64) {
			inodeAt(d, sb, in["small"]).setMode(0o170644)
		}, "small", nil, "small"},
		{"block address past the end", func(d []byte, sb *superblock, in map[string]uint64) {
			inodeAt(d, sb, in["dir/file"]).setAddr(3, sb.size+100)
		}, "dir/file", readOp, "dir/file"},
		{"indirect address past the end", func(d []byte, sb *superblock, in map[string]uint64) {
			inodeAt(d, sb, in["dir/file"]).setAddr(nDAddr, -5)
		}, "dir/file", readOp, "dir/file"},
		{"directory size not whole chunks", func(d []byte, sb *superblock, in map[string]uint64) {
			inodeAt(d, sb, in["dir"]).setSize(700)
		}, "dir", nil, "dir"},
		{"directory hole", func(d []byte, sb *superblock, in map[string]uint64) {
			inodeAt(d, sb, in["dir"]).setAddr(0, 0)
		}, "dir", lookupOp, "dir"},
		{"record length 3", func(d []byte, sb *superblock, in map[string]uint64) {
			a := inodeAt(d, sb, in["dir"]).addr(0)
			sb.bo.PutUint16(d[a<<sb.fshift+4:], 3)
		}, "dir", lookupOp, "dir"},
		{"record length past the chunk", func(d []byte, sb *superblock, in map[string]uint64) {
			a := inodeAt(d, sb, in["dir"]).addr(0)
			sb.bo.PutUint16(d[a<<sb.fshift+12+4:], 1000)
		}, "dir", lookupOp, "dir"},
		{"entry names inode past the end", func(d []byte, sb *superblock, in map[string]uint64) {
			a := inodeAt(d, sb, in["dir"]).addr(0)
			sb.bo.PutUint32(d[a<<sb.fshift+24:], uint32(sb.numInodes()+7))
		}, "dir", lookupOp, "dir"},
		{"size past the block map", func(d []byte, sb *superblock, in map[string]uint64) {
			inodeAt(d, sb, in["small"]).setSize(1 << 62)
		}, "small", nil, "small"},
		{"long symlink without blocks", func(d []byte, sb *superblock, in map[string]uint64) {
			inodeAt(d, sb, in["link"]).setSize(uint64(sb.maxsymlinklen + 5))
		}, "link", func(v vnodeops.Vnode) error { _, err := v.Readlink(); return err }, "link"},
	}
	for _, v := range []variant{variants[0], variants[7]} {
		for _, f := range fixtures {
			t.Run(v.name+"/"+f.name, func(t *testing.T) {
				data, sb, inos := corruptBase(t, v)
				f.patch(data, sb, inos)
				img := filepath.Join(t.TempDir(), "bad")
				if err := os.WriteFile(img, data, 0o644); err != nil {
					t.Fatal(err)
				}
				var log logBuf
				fs := mountImage(t, img, true, nil, &log)
				c := newClient(t, fs)
				v, _, err := c.walk(f.path)
				if err == nil && f.op != nil {
					err = f.op(v)
				}
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("got %v, want EIO", err)
				}
				lines := strings.Count(log.String(), "corrupt file system")
				if lines != 1 || !strings.Contains(log.String(), "mount=test") ||
					!strings.Contains(log.String(), fmt.Sprintf("ino=%d", inos[f.ino])) {
					t.Errorf("log (%d lines), want one naming mount=test ino=%d:\n%s", lines, inos[f.ino], log.String())
				}
			})
		}
	}
}

// TestCorruptMount: a corrupt cylinder group or superblock fails the
// mount with an error, never a panic.
func TestCorruptMount(t *testing.T) {
	v := variants[5]
	data, sb, _ := corruptBase(t, v)
	cases := map[string]func([]byte){
		"cg magic":   func(d []byte) { d[sb.cgtod(0)<<sb.fshift+cgMagicOff] ^= 0xff },
		"cg index":   func(d []byte) { d[sb.cgtod(0)<<sb.fshift+cgCgx] ^= 1 },
		"block size": func(d []byte) { sb.bo.PutUint32(d[sb.loc+sbBsize:], 3000) },
		"ncg":        func(d []byte) { sb.bo.PutUint32(d[sb.loc+sbNcg:], 1<<30) },
		"csaddr":     func(d []byte) { sb.bo.PutUint64(d[sb.loc+sbCsaddr:], 1<<40) },
	}
	for name, patch := range cases {
		t.Run(name, func(t *testing.T) {
			d := append([]byte(nil), data...)
			patch(d)
			img := filepath.Join(t.TempDir(), "bad")
			if err := os.WriteFile(img, d, 0o644); err != nil {
				t.Fatal(err)
			}
			if fs, err := mountErrOf(img, true, nil, nil); err == nil {
				fs.Unmount(false)
				if v.version == 2 || name != "csaddr" {
					t.Fatal("mounted")
				}
			}
		})
	}
}
