package ext2fs

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// The fuzz input is either a whole image (when it carries the ext2 magic
// at its place) or a list of 5-byte patches (a 32-bit offset, taken
// modulo the image size, and a byte XORed there) applied to a small base
// image made with mke2fs at test time. The patch form keeps the seed
// corpus in testdata/fuzz/FuzzMount tiny.

var (
	fuzzBaseOnce sync.Once
	fuzzBase     []byte
	fuzzBaseErr  error
)

// fuzzBaseImage makes (once) a 64 KiB ext2 image with 1 KiB blocks, 32
// inodes and a few files, directories and links, deterministically.
func fuzzBaseImage(t testing.TB) []byte {
	needTools(t)
	fuzzBaseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ext2fs-fuzz-")
		if err != nil {
			fuzzBaseErr = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "src")
		os.MkdirAll(filepath.Join(src, "d", "e"), 0o755)
		os.WriteFile(filepath.Join(src, "small"), []byte("hello"), 0o644)
		os.WriteFile(filepath.Join(src, "d", "multi"), make([]byte, 15000), 0o644)
		os.WriteFile(filepath.Join(src, "d", "e", "x"), []byte("x"), 0o600)
		os.Symlink("small", filepath.Join(src, "fast"))
		os.Symlink(string(make([]byte, 0))+"a/very/long/target/that/does/not/fit/into/the/inode/at/all/really", filepath.Join(src, "slow"))
		os.Link(filepath.Join(src, "small"), filepath.Join(src, "d", "hard"))
		img := filepath.Join(dir, "img")
		cmd := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-N", "32", "-m", "0",
			"-U", "6d9e0f8a-7a1c-4c65-9c43-1f5b9f7e0001", "-E", "hash_seed=6d9e0f8a-7a1c-4c65-9c43-1f5b9f7e0002",
			"-d", src, img, "64K")
		cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1600000000")
		if out, err := cmd.CombinedOutput(); err != nil {
			fuzzBaseErr = errors.New(string(out))
			return
		}
		fuzzBase, fuzzBaseErr = os.ReadFile(img)
		// mke2fs leaves a tiny image file short of its last unused blocks.
		if len(fuzzBase) < 64<<10 {
			fuzzBase = append(fuzzBase, make([]byte, 64<<10-len(fuzzBase))...)
		}
	})
	if fuzzBaseErr != nil {
		t.Fatal(fuzzBaseErr)
	}
	return fuzzBase
}

func fuzzImage(base, data []byte) []byte {
	if len(data) >= sbOffset+sbSize && le.Uint16(data[sbOffset+sbMagicOff:]) == sbMagic {
		return append([]byte(nil), data...)
	}
	img := append([]byte(nil), base...)
	for i := 0; i+5 <= len(data); i += 5 {
		off := int(le.Uint32(data[i:]) % uint32(len(img)))
		img[off] ^= data[i+4]
	}
	return img
}

// okErr reports whether err is one a corrupt image may give.
func okErr(err error) bool {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return false
	}
	switch en {
	case syscall.EIO, syscall.EINVAL, syscall.ENOENT, syscall.ENOTDIR, syscall.EROFS, syscall.EISDIR:
		return true
	}
	return false
}

// fuzzWalk visits every inode reachable from the root once, reading
// directories, files (up to a bound) and links.
func fuzzWalk(t *testing.T, fs vnodeops.FS) {
	seen := map[uint64]bool{}
	queue := []uint64{fs.Root()}
	budget := 2000
	for len(queue) > 0 && budget > 0 {
		ino := queue[0]
		queue = queue[1:]
		if seen[ino] {
			continue
		}
		seen[ino] = true
		budget--
		v, err := fs.VGet(ino)
		if err != nil {
			if !okErr(err) {
				t.Fatalf("VGet(%d): %v", ino, err)
			}
			continue
		}
		a, err := v.Getattr()
		if err != nil && !okErr(err) {
			t.Fatalf("Getattr(%d): %v", ino, err)
		}
		switch a.Mode & vnodeops.S_IFMT {
		case vnodeops.S_IFDIR:
			n := 0
			err := v.Readdir(0, func(d vnodeops.Dirent) bool {
				n++
				if d.Next == 0 {
					t.Fatalf("dirent %q of %d has Next 0", d.Name, ino)
				}
				if d.Name != "." && d.Name != ".." {
					queue = append(queue, d.Ino)
				}
				return n < 500
			})
			if err != nil && !okErr(err) {
				t.Fatalf("Readdir(%d): %v", ino, err)
			}
			for _, name := range []string{"..", "small", "d", "nonexistent"} {
				if _, err := v.Lookup(name); err != nil && !okErr(err) {
					t.Fatalf("Lookup(%d, %q): %v", ino, name, err)
				}
			}
		case vnodeops.S_IFREG:
			buf := make([]byte, 8192)
			for off := int64(0); off < 1<<20; off += int64(len(buf)) {
				n, err := v.Read(buf, off)
				if err != nil {
					if !okErr(err) {
						t.Fatalf("Read(%d): %v", ino, err)
					}
					break
				}
				if n == 0 {
					break
				}
			}
			v.Read(buf, 1<<40)
		case vnodeops.S_IFLNK:
			if _, err := v.Readlink(); err != nil && !okErr(err) {
				t.Fatalf("Readlink(%d): %v", ino, err)
			}
		}
		if err := v.Inactive(); err != nil && !okErr(err) {
			t.Fatalf("Inactive(%d): %v", ino, err)
		}
		v.Reclaim()
	}
	fs.Statvfs()
}

func FuzzMount(f *testing.F) {
	base := fuzzBaseImage(f)
	// A few seeds: none, and patches to the superblock, a descriptor, the
	// root inode and the root directory (see testdata for more).
	f.Add([]byte{})
	f.Add([]byte{0x18, 0x04, 0, 0, 0x01}) // s_log_block_size
	f.Add([]byte{0x08, 0x08, 0, 0, 0x80}) // group descriptor: inode table
	f.Add([]byte{0x28, 0x01, 0, 0, 0xff}) // in the inode table
	f.Fuzz(func(t *testing.T, data []byte) { runRO(t, base, data) })
}

func runRO(t *testing.T, base, data []byte) {
	{
		img := fuzzImage(base, data)
		dev := blkdev.NewMemDeviceFrom(img, true)
		fs, err := Mount(vnodeops.MountArgs{Name: "fuzz", Dev: dev, ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			if !okErr(err) {
				t.Fatalf("Mount: %v", err)
			}
			return
		}
		fuzzWalk(t, fs)
		if err := fs.Unmount(false); err != nil && !okErr(err) {
			t.Fatalf("Unmount: %v", err)
		}
	}
}

// TestFuzzBase checks that the base image mounts and walks cleanly, so
// the fuzz target starts from something meaningful.
func TestFuzzBase(t *testing.T) {
	base := fuzzBaseImage(t)
	fs, err := Mount(vnodeops.MountArgs{Name: "base", Dev: blkdev.NewMemDeviceFrom(base, true), ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Unmount(false)
	root, err := fs.VGet(fs.Root())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"small", "d", "fast", "slow"} {
		if _, err := root.Lookup(n); err != nil {
			t.Fatalf("lookup %s: %v", n, err)
		}
	}
	root.Inactive()
	root.Reclaim()
	fuzzWalk(t, fs)
}

// FuzzMountRW mounts a mutated image read-write and changes it: no panic,
// no hang, only errno errors.
func FuzzMountRW(f *testing.F) {
	base := fuzzBaseImage(f)
	f.Add([]byte{})
	f.Add([]byte{0x0c, 0x08, 0, 0, 0x05}) // group descriptor: free blocks count
	f.Fuzz(func(t *testing.T, data []byte) { runRW(t, base, data) })
}

func runRW(t *testing.T, base, data []byte) {
	{
		img := fuzzImage(base, data)
		dev := blkdev.NewMemDeviceFrom(img, false)
		fs, err := Mount(vnodeops.MountArgs{Name: "fuzz", Dev: dev, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			if !okErr(err) {
				t.Fatalf("Mount: %v", err)
			}
			return
		}
		defer func() {
			if err := fs.Unmount(true); err != nil && !okErr(err) {
				t.Fatalf("Unmount: %v", err)
			}
		}()
		check := func(what string, err error) {
			var en syscall.Errno
			if err != nil && !errors.As(err, &en) {
				t.Fatalf("%s: %v", what, err)
			}
		}
		root, err := fs.VGet(fs.Root())
		if err != nil {
			check("VGet root", err)
			return
		}
		var live []vnodeops.Vnode
		defer func() {
			for _, v := range live {
				check("Inactive", v.Inactive())
				check("Reclaim", v.Reclaim())
			}
			check("Inactive root", root.Inactive())
			root.Reclaim()
		}()
		get := func(ino uint64, err error) vnodeops.Vnode {
			if err != nil {
				check("op", err)
				return nil
			}
			v, err := fs.VGet(ino)
			if err != nil {
				check("VGet", err)
				return nil
			}
			live = append(live, v)
			return v
		}
		if f := get(root.Create("new", 0o644, 0, 0)); f != nil {
			_, err := f.Write(make([]byte, 20000), 100)
			check("Write", err)
			check("Setattr", f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 3000}))
			check("Link", root.Link(f, "new2"))
			check("Remove", root.Remove("new", f))
		}
		if d := get(root.Mkdir("nd", 0o755, 0, 0)); d != nil {
			check("Rename", root.Rename("nd", d, root, "nd2", nil))
		}
		if small := get(root.Lookup("small")); small != nil {
			_, err := small.Write([]byte("more"), 3)
			check("Write small", err)
			check("Remove small", root.Remove("small", small))
		}
		if d := get(root.Lookup("d")); d != nil {
			if e := get(d.Lookup("e")); e != nil {
				if x := get(e.Lookup("x")); x != nil {
					check("Remove x", e.Remove("x", x))
				}
				check("Rmdir e", d.Rmdir("e", e))
			}
			_, err := d.Symlink("sl", "target-that-is-long-enough-to-need-a-block-of-its-own-really", 0, 0)
			check("Symlink", err)
		}
		check("Sync", fs.Sync())
	}
}
