package vm

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
	_ "github.com/rump9p/rump9p/vnodeops/cd9660"
	_ "github.com/rump9p/rump9p/vnodeops/ffs"
)

// crossImage is one image both Linux (in the guest) and rump9p (on the
// host) read.
type crossImage struct {
	name   string // manifest prefix and check suffix
	file   string
	fstype string // Linux's file system type
	opts   string // Linux's mount options
	driver string // rump9p's driver
}

// TestLinuxReadsImages: images are read twice, by Linux's own driver in
// the guest (attached as read-only virtio disks) and by rump9p's driver on
// the host; every name, type, mode, size, owner, mtime and content digest
// must agree. The guest is an independent reader: the same tree through a
// second implementation of the format. The images: ISO 9660 with Rock
// Ridge and Joliet from xorriso, and FFS (UFS1, little and big endian)
// from makefs to which rump9p's ffs driver then wrote a tree of its own,
// so that Linux's ufs checks what rump9p wrote.
func TestLinuxReadsImages(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(sharedDir(t), "crossread")
	src := filepath.Join(dir, "src")
	if err := makeCrossTree(src); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "rr.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	images := []crossImage{
		{name: "iso", file: iso, fstype: "iso9660", opts: "ro", driver: "cd9660"},
	}
	for _, v := range []struct {
		name, version, order, ufstype string
	}{
		// Only UFS1: Debian's makefs writes a UFS2 superblock at 8 KiB,
		// where NetBSD looks, and Linux's ufstype=ufs2 looks only at
		// 64 KiB (FreeBSD's place), so Linux cannot mount makefs's UFS2.
		{"ufs1le", "1", "le", "44bsd"}, {"ufs1be", "1", "be", "44bsd"},
	} {
		img := filepath.Join(dir, v.name+".img")
		out, err := exec.Command("makefs", "-t", "ffs", "-B", v.order, "-s", "24m",
			"-o", "version="+v.version+",bsize=16384,fsize=2048", img, src).CombinedOutput()
		if err != nil {
			t.Fatalf("makefs: %v\n%s", err, out)
		}
		if err := writeWithRump9p("ffs", img); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		images = append(images, crossImage{name: v.name, file: img, fstype: "ufs", opts: "ro,ufstype=" + v.ufstype, driver: "ffs"})
	}
	var specs, disks, want []string
	for _, im := range images {
		specs = append(specs, im.name+":"+im.fstype+":"+im.opts)
		disks = append(disks, im.file)
		want = append(want, "mount_"+im.name, "umount_"+im.name)
	}
	res := bootGuest(t, vmConfig{
		name:   "crossread",
		script: "guest/crossread.sh",
		env:    map[string]string{"IMAGES": strings.Join(specs, " ")},
		disks:  disks,
	})
	res.assertChecks(t, want)
	for _, im := range images {
		t.Run("manifest_"+im.name, func(t *testing.T) {
			mstat, msum, err := kernelView(im.driver, im.file)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rump9p's %s read %d entries and %d files", im.name, im.driver, len(mstat), len(msum))
			compareManifest(t, im.name+" stat", prefixed(res.mstat, im.name), mstat)
			compareManifest(t, im.name+" md5", prefixed(res.msum, im.name), msum)
		})
	}
}

// prefixed returns the lines of lines that start with name+":", without it.
func prefixed(lines []string, name string) []string {
	var out []string
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, name+":"); ok {
			out = append(out, rest)
		}
	}
	return out
}

// makeCrossTree writes a tree with what readers of a format get wrong:
// sizes around the 2 KiB sector, long names, a directory deeper than ISO
// 9660's eight levels (Rock Ridge relocates it), symbolic links of every
// kind, a hard link, odd modes and owners, and old and recent mtimes.
func makeCrossTree(src string) error {
	deep := filepath.Join(src, "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10")
	for _, d := range []string{deep, filepath.Join(src, "empty"), filepath.Join(src, "modes")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + i/251)
		}
		return b
	}
	files := map[string]int{
		"empty.txt": 0, "one": 1, "s2047": 2047, "s2048": 2048, "s2049": 2049,
		"big.bin": 3<<20 + 123, "d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt": 5000,
		strings.Repeat("long-name-", 20) + "end.txt": 77,
		"UPPER.lower.Mixed":                          10, "plus+minus-equal=hash#": 11, "many.dots.in.a.name.tar.gz": 12,
	}
	for name, size := range files {
		if err := os.WriteFile(filepath.Join(src, name), pattern(size), 0o644); err != nil {
			return err
		}
	}
	for name, mode := range map[string]os.FileMode{"0600": 0o600, "0755": 0o755, "4755": 0o4755 | os.ModeSetuid, "0444": 0o444} {
		p := filepath.Join(src, "modes", name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	if err := os.Chown(filepath.Join(src, "modes", "0600"), 1000, 1000); err != nil {
		return err
	}
	if err := os.Chown(filepath.Join(src, "modes", "0755"), 65534, 100); err != nil {
		return err
	}
	for link, target := range map[string]string{
		"rel": "one", "up": "../s2048", "abs": "/etc/passwd", "dangling": "no/such/file",
		"dirlink": "d1/d2", "longtarget": strings.Repeat("x/", 120) + "end",
	} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			return err
		}
	}
	if err := os.Link(filepath.Join(src, "s2049"), filepath.Join(src, "hardlink")); err != nil {
		return err
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "one"), old, old); err != nil {
		return err
	}
	return os.Chtimes(filepath.Join(src, "d1"), old, old)
}

// writeWithRump9p mounts image read-write with rump9p's driver and adds a
// tree: files across fragment and block sizes (one sparse, one past the
// direct blocks), a symbolic link, a hard link, a renamed directory and a
// removed file; then it unmounts (the image is marked clean).
func writeWithRump9p(driver, image string) error {
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		return err
	}
	if err := k.Mount("/img", rumpcore.MountSpec{Type: driver, Image: image}); err != nil {
		k.Shutdown()
		return fmt.Errorf("mount %s read-write: %w", image, err)
	}
	p := k.NewProc(vnodeops.Root)
	err = func() error {
		for _, d := range []string{"/img/w", "/img/w/sub", "/img/w/gone"} {
			if err := p.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		for name, size := range map[string]int{"frag": 1500, "block": 16384, "blockplus": 16385, "twelve": 12*16384 + 1, "big": 300 << 10} {
			fd, err := p.Open("/img/w/sub/"+name, syscall.O_CREAT|syscall.O_WRONLY, 0o640)
			if err != nil {
				return err
			}
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(i*13 + len(name))
			}
			_, werr := p.Write(fd, b)
			if cerr := p.Close(fd); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return fmt.Errorf("write %s: %w", name, werr)
			}
		}
		fd, err := p.Open("/img/w/sparse", syscall.O_CREAT|syscall.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := p.Pwrite(fd, []byte("end of a sparse file"), 5<<20); err != nil {
			return err
		}
		p.Close(fd)
		if err := p.Symlink("sub/frag", "/img/w/link"); err != nil {
			return err
		}
		if err := p.Link("/img/w/sub/block", "/img/w/hard"); err != nil {
			return err
		}
		if err := p.Rename("/img/w/sub", "/img/w/moved"); err != nil {
			return err
		}
		if err := p.Rmdir("/img/w/gone"); err != nil {
			return err
		}
		return p.Unlink("/img/s2048")
	}()
	p.Exit()
	if serr := k.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// kernelView mounts image read-only with rump9p's driver in a kernel of
// its own and returns the manifest the guest prints for the same tree
// (busybox "stat -c" and md5sum lines, see crossread.sh).
func kernelView(driver, image string) (mstat, msum []string, err error) {
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer k.Shutdown()
	if err := k.Mount("/img", rumpcore.MountSpec{Type: driver, Image: image, ReadOnly: true}); err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", image, err)
	}
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	var walk func(rel string) error
	walk = func(rel string) error {
		full := path.Join("/img", rel)
		a, err := p.Lstat(full)
		if err != nil {
			return fmt.Errorf("lstat %s: %w", rel, err)
		}
		mstat = append(mstat, statLine(rel, a.Mode, a.Size, a.UID, a.GID, uint64(a.Mtime/1e9)))
		switch a.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			fd, err := p.Open(full, syscall.O_RDONLY, 0)
			if err != nil {
				return err
			}
			defer p.Close(fd)
			h := md5.New()
			buf := make([]byte, 256<<10)
			for {
				n, err := p.Read(fd, buf)
				h.Write(buf[:n])
				if err != nil {
					return err
				}
				if n == 0 {
					break
				}
			}
			msum = append(msum, hex.EncodeToString(h.Sum(nil))+"  "+rel)
		case syscall.S_IFDIR:
			fd, err := p.Open(full, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
			if err != nil {
				return err
			}
			var names []string
			for {
				ents, err := p.Getdents(fd, 256)
				if err != nil {
					p.Close(fd)
					return err
				}
				if len(ents) == 0 {
					break
				}
				for _, e := range ents {
					if e.Name != "." && e.Name != ".." {
						names = append(names, e.Name)
					}
				}
			}
			p.Close(fd)
			sort.Strings(names)
			for _, n := range names {
				if err := walk(rel + "/" + n); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return mstat, msum, walk(".")
}
