package ext2fs

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// corruptSrc is a small tree for the corruption tests.
func corruptSrc(t *testing.T) string {
	src := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d", "sub"), 0o755))
	for _, n := range []string{"one", "two", "three"} {
		must(os.WriteFile(filepath.Join(src, "d", n), []byte(n), 0o644))
	}
	must(os.WriteFile(filepath.Join(src, "f"), bytes.Repeat([]byte("data"), 30000), 0o644))
	return src
}

// patch writes b at byte off of img.
func patch(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, img string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// firstBlock returns the first data block of path from debugfs.
func firstBlock(t *testing.T, img, path string) int64 {
	t.Helper()
	out := debugfs(t, img, false, "blocks "+path)
	f := strings.Fields(out[strings.Index(out, ")")+1:])
	if len(f) == 0 {
		t.Fatalf("no blocks for %s: %s", path, out)
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		t.Fatalf("blocks %s: %q", path, out)
	}
	return n
}

// inodeOffset returns the byte offset of path's inode in img.
func inodeOffset(t *testing.T, img, path string, bs int64) int64 {
	t.Helper()
	out := debugfs(t, img, false, "imap "+path)
	m := regexp.MustCompile(`located at block (\d+), offset 0x([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("imap %s: %s", path, out)
	}
	blk, _ := strconv.ParseInt(m[1], 10, 64)
	off, _ := strconv.ParseInt(m[2], 16, 64)
	return blk*bs + off
}

// bootLog mounts img read-only with a logger into buf; the mount may
// fail (returned).
func bootLog(t *testing.T, img string, buf *bytes.Buffer) (*rumpcore.Proc, error) {
	t.Helper()
	k, err := rumpcore.Init(rumpcore.Options{Logger: slog.New(slog.NewTextHandler(buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Shutdown() })
	if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "ext2fs", Image: img, ReadOnly: true}); err != nil {
		return nil, err
	}
	return k.NewProc(vnodeops.Root), nil
}

// walkAll reads every file and directory below dir, ignoring errors,
// following no symlinks and bounding depth (a corrupt image may loop).
func walkAll(p *rumpcore.Proc, dir string, depth int) {
	if depth > 20 {
		return
	}
	ds, _ := listDir(p, dir, 50)
	for _, d := range ds {
		if d.Name == "." || d.Name == ".." {
			continue
		}
		path := dir + "/" + d.Name
		a, err := p.Lstat(path)
		if err != nil {
			continue
		}
		switch a.Mode & vnodeops.S_IFMT {
		case vnodeops.S_IFDIR:
			walkAll(p, path, depth+1)
		case vnodeops.S_IFREG:
			if fd, err := p.Open(path, syscall.O_RDONLY, 0); err == nil {
				buf := make([]byte, 64<<10)
				for {
					n, err := p.Read(fd, buf)
					if n == 0 || err != nil {
						break
					}
				}
				p.Close(fd)
			}
		case vnodeops.S_IFLNK:
			p.Readlink(path)
		}
	}
}

func TestCorrupt(t *testing.T) {
	src := corruptSrc(t)
	cases := []struct {
		name   string
		mkfs   []string
		bs     int64
		break_ func(t *testing.T, img string, bs int64)
		check  func(p *rumpcore.Proc) error
	}{
		{"dir-rec_len", []string{"-t", "ext2", "-b", "1024"}, 1024,
			func(t *testing.T, img string, bs int64) {
				b := firstBlock(t, img, "/d")
				patch(t, img, b*bs+12+4, []byte{3, 0}) // rec_len of ".." = 3
			},
			func(p *rumpcore.Proc) error { _, err := listDir(p, "/mnt/d", 10); return err }},
		{"dir-rec_len-overrun", []string{"-t", "ext2", "-b", "4096"}, 4096,
			func(t *testing.T, img string, bs int64) {
				b := firstBlock(t, img, "/d")
				patch(t, img, b*bs+12+4, []byte{0xf0, 0xff}) // past the block
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/d/one"); return err }},
		{"block-pointer-out-of-range", []string{"-t", "ext2", "-b", "1024"}, 1024,
			func(t *testing.T, img string, bs int64) {
				debugfs(t, img, true, "sif /f block[3] 99999999")
			},
			func(p *rumpcore.Proc) error {
				fd, err := p.Open("/mnt/f", syscall.O_RDONLY, 0)
				if err != nil {
					return err
				}
				defer p.Close(fd)
				_, err = p.Pread(fd, make([]byte, 8192), 0)
				return err
			}},
		{"indirect-pointer-out-of-range", []string{"-t", "ext2", "-b", "1024"}, 1024,
			func(t *testing.T, img string, bs int64) {
				debugfs(t, img, true, "sif /f block[IND] 4000000000")
			},
			func(p *rumpcore.Proc) error {
				fd, err := p.Open("/mnt/f", syscall.O_RDONLY, 0)
				if err != nil {
					return err
				}
				defer p.Close(fd)
				_, err = p.Pread(fd, make([]byte, 1024), 13*1024)
				return err
			}},
		{"dotdot-self-loop", []string{"-t", "ext2", "-b", "1024"}, 1024,
			func(t *testing.T, img string, bs int64) {
				b := firstBlock(t, img, "/d/sub")
				self := readAt(t, img, b*bs, 4) // "." names sub itself
				patch(t, img, b*bs+12, self)
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/d/sub/../one"); return err }},
		{"size-beyond-block-map", []string{"-t", "ext2", "-b", "1024"}, 1024,
			func(t *testing.T, img string, bs int64) {
				debugfs(t, img, true, "sif /f size 0x1000000000000000") // 2^60
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/f"); return err }},
		{"size-beyond-extents", []string{"-t", "ext4", "-b", "1024", "-O", "^metadata_csum"}, 1024,
			func(t *testing.T, img string, bs int64) {
				debugfs(t, img, true, "sif /f size 0x1000000000000000")
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/f"); return err }},
		{"dir-second-name", []string{"-t", "ext2", "-b", "1024"}, 1024,
			func(t *testing.T, img string, bs int64) {
				// /alias names d/sub: a directory with two names in two
				// directories (a cycle once one is an ancestor of the other).
				out := debugfs(t, img, false, "stat /d/sub")
				m := regexp.MustCompile(`Inode: (\d+)`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("stat /d/sub: %s", out)
				}
				debugfs(t, img, true, "ln <"+m[1]+"> /alias")
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/alias/x"); return err }},
		{"extent-magic", []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"}, 4096,
			func(t *testing.T, img string, bs int64) {
				off := inodeOffset(t, img, "/f", bs)
				patch(t, img, off+inBlock, []byte{0x0b, 0xf3})
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/f"); return err }},
		{"extent-depth", []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum"}, 4096,
			func(t *testing.T, img string, bs int64) {
				off := inodeOffset(t, img, "/f", bs)
				patch(t, img, off+inBlock+6, []byte{9, 0})
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/f"); return err }},
		{"inode-checksum", []string{"-t", "ext4", "-b", "4096", "-O", "metadata_csum"}, 4096,
			func(t *testing.T, img string, bs int64) {
				off := inodeOffset(t, img, "/f", bs)
				b := readAt(t, img, off+inAtime, 1)
				patch(t, img, off+inAtime, []byte{b[0] ^ 1})
			},
			func(p *rumpcore.Proc) error { _, err := p.Lstat("/mnt/f"); return err }},
		{"dir-checksum", []string{"-t", "ext4", "-b", "4096", "-O", "metadata_csum"}, 4096,
			func(t *testing.T, img string, bs int64) {
				b := firstBlock(t, img, "/d")
				x := readAt(t, img, b*bs+30, 1)
				patch(t, img, b*bs+30, []byte{x[0] ^ 0x20})
			},
			func(p *rumpcore.Proc) error { _, err := listDir(p, "/mnt/d", 10); return err }},
		{"superblock-checksum", []string{"-t", "ext4", "-b", "4096", "-O", "metadata_csum"}, 4096,
			func(t *testing.T, img string, bs int64) {
				x := readAt(t, img, 1024+0x78, 1) // s_volume_name
				patch(t, img, 1024+0x78, []byte{x[0] ^ 0x55})
			},
			nil},
		{"inode-count-mismatch", []string{"-t", "ext2", "-b", "4096"}, 4096,
			func(t *testing.T, img string, bs int64) {
				patch(t, img, 1024+sbInodesCount, []byte{0xff, 0xff, 0xff, 0x7f})
			},
			nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mkfs(t, img, "8M", src, c.mkfs...)
			c.break_(t, img, c.bs)
			var logbuf bytes.Buffer
			p, err := bootLog(t, img, &logbuf)
			if c.check == nil {
				if err == nil {
					t.Fatalf("mount of a corrupt image succeeded")
				}
				if !isErrno(err, syscall.EIO) && !isErrno(err, syscall.EINVAL) {
					t.Fatalf("mount: %v, want EIO or EINVAL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("mount: %v", err)
			}
			err = c.check(p)
			if !isErrno(err, syscall.EIO) {
				t.Fatalf("got %v, want EIO", err)
			}
			if !strings.Contains(logbuf.String(), "corrupt") || !strings.Contains(logbuf.String(), "ino=") {
				t.Fatalf("no log line naming the inode: %q", logbuf.String())
			}
			walkAll(p, "/mnt", 0) // no panic, no hang
		})
	}
}
