package ffs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// emptyImage makes an image of v from a directory holding one file.
func emptyImage(t *testing.T, v variant, size, freeFiles string) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "seed"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	// makefs sizes the inode tables for the tree it copies: ask for
	// room.
	makefs(t, img, src, v, size, "-f", freeFiles)
	return img
}

// model is what the test expects the file system to hold: file contents
// by path (symbolic links as "->target").
type model map[string][]byte

// wfs drives writes through the vnode operations.
type wfs struct {
	*client
	m model
}

func (w *wfs) dir(path string) vnodeops.ReadWriteVnode {
	w.t.Helper()
	return w.must(path).(vnodeops.ReadWriteVnode)
}

func split(path string) (string, string) {
	d, f := filepath.Split(path)
	return filepath.Clean("/" + d)[1:], f
}

func (w *wfs) ok(what string, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
}

func (w *wfs) create(path string) vnodeops.ReadWriteVnode {
	w.t.Helper()
	d, f := split(path)
	ino, err := w.dir(d).Create(f, 0o644, 0, 0)
	w.ok("create "+path, err)
	v, err := w.get(ino)
	w.ok("vget "+path, err)
	w.m[path] = []byte{}
	return v.(vnodeops.ReadWriteVnode)
}

func (w *wfs) write(path string, off int64, data []byte) {
	w.t.Helper()
	v := w.must(path).(vnodeops.ReadWriteVnode)
	n, err := v.Write(data, off)
	if err != nil || n != len(data) {
		w.t.Fatalf("write %s at %d: %d, %v", path, off, n, err)
	}
	cur := w.m[path]
	if end := off + int64(len(data)); end > int64(len(cur)) {
		cur = append(cur, make([]byte, end-int64(len(cur)))...)
	}
	copy(cur[off:], data)
	w.m[path] = cur
}

func (w *wfs) truncate(path string, size int64) {
	w.t.Helper()
	v := w.must(path).(vnodeops.ReadWriteVnode)
	w.ok("truncate "+path, v.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: uint64(size)}))
	cur := w.m[path]
	if size <= int64(len(cur)) {
		cur = cur[:size]
	} else {
		cur = append(cur, make([]byte, size-int64(len(cur)))...)
	}
	w.m[path] = cur
}

func (w *wfs) mkdir(path string) {
	w.t.Helper()
	d, f := split(path)
	_, err := w.dir(d).Mkdir(f, 0o755, 0, 0)
	w.ok("mkdir "+path, err)
}

func (w *wfs) remove(path string) {
	w.t.Helper()
	d, f := split(path)
	v, ino, err := w.walk(path)
	w.ok("walk "+path, err)
	w.ok("remove "+path, w.dir(d).Remove(f, v))
	delete(w.m, path)
	w.drop(ino)
}

func (w *wfs) rename(from, to string) {
	w.t.Helper()
	fd, ff := split(from)
	td, tf := split(to)
	fv := w.must(from)
	var tv vnodeops.Vnode
	if v, _, err := w.walk(to); err == nil {
		tv = v
	}
	w.ok("rename "+from+" "+to, w.dir(fd).Rename(ff, fv, w.dir(td), tf, tv))
	for p, d := range w.m {
		if p == from || len(p) > len(from) && p[:len(from)+1] == from+"/" {
			delete(w.m, p)
			w.m[to+p[len(from):]] = d
		}
	}
}

// verify checks the model against the image through a fresh mount and
// through grub-fstest where it can read them (grubReads), and checks the
// image's consistency.
func verify(t *testing.T, img string, m model, v variant) {
	t.Helper()
	mustCheck(t, img)
	fs := mountImage(t, img, true, nil, nil)
	c := newClient(t, fs)
	for p, want := range m {
		f := c.must(p)
		var got []byte
		var err error
		if bytes.HasPrefix(want, []byte("->")) {
			var s string
			s, err = f.Readlink()
			got = []byte("->" + s)
		} else {
			got, err = readAll(f)
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want %d", p, len(got), err, len(want))
		}
		// grub-fstest reads every file but one in ten of the many small
		// ones.
		sample := !strings.HasPrefix(p, "many/") || len(want)%10 == 0
		if grubReads(v, int64(len(want))) && sample && !bytes.HasPrefix(want, []byte("->")) {
			if g := grubCat(t, img, "/"+p, 0, 0); !bytes.Equal(g, want) {
				t.Errorf("grub-fstest cat %s: %d bytes, want %d", p, len(g), len(want))
			}
		}
	}
	c.release()
	fs.Unmount(false)
}

// TestWrite writes through the driver on every variant: files growing
// through fragment tails into full and indirect blocks, a sparse file
// past the double indirect range, truncation, hard links, symbolic
// links of both kinds, device nodes, renames of files and directories,
// a directory of many entries, unlink of an open file. Then it checks
// the image (checkImage), reads everything back through a new mount,
// and through grub-fstest, an independent reader. Block sizes from 4 to
// 64 KiB.
func TestWrite(t *testing.T) {
	// Beyond the eight variants, the smallest and the largest block
	// sizes FFS allows, with eight fragments a block.
	extremes := []variant{{"ufs1-le-4k", 1, "le", 4096, 512}, {"ufs2-be-64k", 2, "be", 65536, 8192}}
	for _, v := range append(slices.Clone(variants), extremes...) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			img := emptyImage(t, v, "24m", "3000")
			fs := mountImage(t, img, false, nil, nil)
			w := &wfs{client: newClient(t, fs), m: model{"seed": []byte("seed\n")}}
			sb := fs.(*fsys).sb

			// Growth through every kind of block.
			w.create("grow")
			for i, n := range []int{100, 3000, v.fsize, v.bsize + 5, 13 * v.bsize, 7} {
				w.write("grow", int64(len(w.m["grow"])), pattern(n, byte(i)))
			}
			w.write("grow", 50, pattern(v.bsize*2, 9))
			// Tail fragments of several small files share blocks.
			for i := range 6 {
				p := fmt.Sprintf("small%d", i)
				w.create(p)
				w.write(p, 0, pattern(1+i*700, byte(20+i)))
			}
			// Sparse, past the double indirect range (triple indirect).
			n := sb.nindir
			far := (nDAddr+n+n*n)*sb.bsize + 123
			w.create("sparse")
			w.write("sparse", 0, []byte("head"))
			sp := w.must("sparse").(vnodeops.ReadWriteVnode)
			if _, err := sp.Write([]byte("tail"), far); err != nil {
				t.Fatalf("write at %d: %v", far, err)
			}
			delete(w.m, "sparse") // checked below, at its ends
			// Truncation: into a fragment, to zero, and growing.
			w.create("trunc")
			w.write("trunc", 0, pattern(20*v.bsize+99, 40))
			w.truncate("trunc", int64(v.bsize+v.fsize/2))
			w.truncate("trunc", int64(3*v.bsize))
			w.write("trunc", int64(3*v.bsize), []byte("x"))
			w.create("zero")
			w.write("zero", 0, pattern(v.bsize*14, 41))
			w.truncate("zero", 0)
			// Directories, renames, links.
			w.mkdir("a")
			w.mkdir("a/b")
			w.mkdir("c")
			w.create("a/b/f")
			w.write("a/b/f", 0, []byte("in b"))
			w.rename("a/b", "c/b2")
			w.rename("grow", "c/b2/grown")
			root := w.dir("")
			w.ok("link", root.Link(w.must("c/b2/f"), "hard"))
			w.m["hard"] = w.m["c/b2/f"]
			_, err := root.Symlink("short", "seed", 0, 0)
			w.ok("symlink", err)
			w.m["short"] = []byte("->seed")
			long := string(bytes.Repeat([]byte("abcdefgh/"), 30))
			_, err = root.Symlink("long", long, 0, 0)
			w.ok("symlink", err)
			w.m["long"] = []byte("->" + long)
			_, err = root.Mknod("tty", vnodeops.S_IFCHR|0o620, 0, 0, 4<<8|1)
			w.ok("mknod", err)
			_, err = root.Mknod("pipe", vnodeops.S_IFIFO|0o600, 0, 0, 0)
			w.ok("mknod", err)
			// Many entries, some removed, some re-added.
			w.mkdir("many")
			for i := range 400 {
				p := fmt.Sprintf("many/entry-%03d-%s", i, string(bytes.Repeat([]byte("n"), i%50)))
				w.create(p)
				if i%3 == 0 {
					w.write(p, 0, []byte(p))
				}
			}
			for p := range w.m {
				if len(p) > 5 && p[:5] == "many/" && p[11]%2 == 0 {
					w.remove(p)
				}
			}
			for i := range 50 {
				w.create(fmt.Sprintf("many/again-%02d", i))
			}
			// Unlink of an open file: its storage goes at Inactive.
			w.create("open")
			w.write("open", 0, pattern(5*v.bsize, 50))
			ov, oino, _ := w.walk("open")
			w.ok("remove open", root.Remove("open", ov))
			delete(w.m, "open")
			if got, err := readAll(ov); err != nil || len(got) != 5*v.bsize {
				t.Errorf("open unlinked file: %d bytes, %v", len(got), err)
			}
			w.drop(oino)
			// Rename over an existing file and an empty directory.
			w.create("victim")
			w.rename("small0", "victim")
			w.mkdir("emptydir")
			w.mkdir("c/sub")
			w.rename("c/sub", "emptydir")
			w.release()
			if err := fs.Unmount(false); err != nil {
				t.Fatal(err)
			}
			verify(t, img, w.m, v)
			if v.order == "le" {
				// The far end of the sparse file, through grub.
				if got := grubCat(t, img, "/sparse", far, 4); string(got) != "tail" {
					t.Errorf("grub-fstest: sparse file end %q", got)
				}
				if ents := grubLs(t, img, "/c/b2"); !slices.Contains(ents, "grown") {
					t.Errorf("grub-fstest ls /c/b2: %v", ents)
				}
			}
			fs = mountImage(t, img, true, nil, nil)
			c := newClient(t, fs)
			buf := make([]byte, 4)
			if n, err := c.must("sparse").Read(buf, far); n != 4 || err != nil || string(buf) != "tail" {
				t.Errorf("sparse end: %q %d %v", buf, n, err)
			}
			if a, _ := c.must("c/b2").Getattr(); a.Nlink != 2 {
				t.Errorf("moved directory: nlink %d", a.Nlink)
			}
			if a, _ := c.must("tty").Getattr(); a.Rdev != 4<<8|1 {
				t.Errorf("tty rdev %#x", a.Rdev)
			}
			// UFS2 keeps a birth time; makefs on Linux leaves it 0, the
			// driver sets it at creation.
			if a, _ := c.must("victim").Getattr(); (a.Btime != 0) != (v.version == 2) {
				t.Errorf("birth time %d on UFS%d", a.Btime, v.version)
			}
		})
	}
}

// TestWriteFlags: an immutable file refuses writes, removal and renames;
// an append-only one takes writes at its end only.
func TestWriteFlags(t *testing.T) {
	img := emptyImage(t, variants[2], "8m", "100")
	fs := mountImage(t, img, false, nil, nil)
	w := &wfs{client: newClient(t, fs), m: model{}}
	root := w.dir("")
	w.create("imm")
	w.create("app")
	w.write("app", 0, []byte("abc"))
	imm, app := w.must("imm").(vnodeops.ReadWriteVnode), w.must("app").(vnodeops.ReadWriteVnode)
	w.ok("chflags", imm.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetFlags, Flags: sfImmutable}))
	w.ok("chflags", app.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetFlags, Flags: ufAppend}))
	if _, err := imm.Write([]byte("x"), 0); err != syscall.EPERM {
		t.Errorf("write immutable: %v", err)
	}
	if err := root.Remove("imm", imm); err != syscall.EPERM {
		t.Errorf("remove immutable: %v", err)
	}
	if err := imm.Open(vnodeops.OWronly); err != syscall.EPERM {
		t.Errorf("open immutable for writing: %v", err)
	}
	if _, err := app.Write([]byte("x"), 0); err != syscall.EPERM {
		t.Errorf("overwrite append-only: %v", err)
	}
	if _, err := app.Write([]byte("d"), 3); err != nil {
		t.Errorf("append to append-only: %v", err)
	}
	if err := app.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize}); err != syscall.EPERM {
		t.Errorf("truncate append-only: %v", err)
	}
	if a, _ := imm.Getattr(); a.Flags != sfImmutable {
		t.Errorf("flags %#x", a.Flags)
	}
	w.ok("chflags", imm.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetFlags}))
	w.ok("chflags", app.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetFlags}))
	w.release()
	if err := fs.Unmount(false); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, img)
}

// TestFill: writing until ENOSPC leaves a consistent image whose free
// counts are exact, and freeing it all returns every block.
func TestFill(t *testing.T) {
	for _, v := range []variant{variants[0], variants[7]} {
		t.Run(v.name, func(t *testing.T) {
			img := emptyImage(t, v, "4m", "100")
			fs := mountImage(t, img, false, nil, nil)
			w := &wfs{client: newClient(t, fs), m: model{}}
			before, _ := fs.Statvfs()
			f := w.create("fill")
			chunk := pattern(100000, 3)
			var off int64
			for {
				n, err := f.Write(chunk, off)
				off += int64(n)
				if err == syscall.ENOSPC {
					break
				}
				if err != nil {
					t.Fatalf("write at %d: %v", off, err)
				}
			}
			mid, _ := fs.Statvfs()
			if mid.Bfree > uint64(v.bsize/v.fsize) {
				t.Errorf("ENOSPC with %d fragments free", mid.Bfree)
			}
			w.remove("fill")
			after, _ := fs.Statvfs()
			if after.Bfree != before.Bfree || after.Ffree != before.Ffree {
				t.Errorf("free %d/%d after, %d/%d before", after.Bfree, after.Ffree, before.Bfree, before.Ffree)
			}
			w.release()
			if err := fs.Unmount(false); err != nil {
				t.Fatal(err)
			}
			mustCheck(t, img)
		})
	}
}

// TestSpread: a big file moves to another cylinder group every
// fs_maxbpg blocks past the single indirect range (ffs_blkpref), and
// stays contiguous inside each run.
func TestSpread(t *testing.T) {
	v := variant{"ufs1-le-4k", 1, "le", 4096, 512}
	img := emptyImage(t, v, "48m", "100")
	fs := mountImage(t, img, false, nil, nil)
	w := &wfs{client: newClient(t, fs), m: model{}}
	sb := fs.(*fsys).sb
	if sb.ncg < 2 || sb.maxbpg <= 0 {
		t.Fatalf("%d groups, maxbpg %d", sb.ncg, sb.maxbpg)
	}
	first := nDAddr + sb.nindir // the first block that may move
	n := first + 2*sb.maxbpg + 1
	f := w.create("big")
	buf := pattern(int(sb.bsize)*64, 5)
	for off := int64(0); off < n*sb.bsize; off += int64(len(buf)) {
		if _, err := f.Write(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	node := f.(*vnode)
	fs.(*fsys).mu.RLock()
	groups := map[uint32]bool{}
	for _, lbn := range []int64{first - 1, first + sb.maxbpg - 1, first + sb.maxbpg, n - 1} {
		a, err := node.bmap(lbn)
		if err != nil || a == 0 {
			t.Fatalf("bmap %d: %d %v", lbn, a, err)
		}
		groups[sb.dtog(a)] = true
	}
	a1, _ := node.bmap(first + 1)
	a0, _ := node.bmap(first)
	fs.(*fsys).mu.RUnlock()
	if len(groups) < 2 {
		t.Errorf("a file of %d blocks stays in groups %v", n, groups)
	}
	if a1 != a0+sb.frag {
		t.Errorf("blocks %d and %d at %d and %d: not contiguous", first, first+1, a0, a1)
	}
	w.release()
	if err := fs.Unmount(false); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, img)
}
