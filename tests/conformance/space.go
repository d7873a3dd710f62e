package conformance

import (
	"bytes"
	"syscall"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

func spaceCases() []testCase {
	return []testCase{
		{name: "OpenUnlinked", fn: testOpenUnlinked},
		{name: "StatvfsAccounting", fn: testStatvfsAccounting},
		{name: "FillENOSPC", fn: testFill},
		{name: "ReadOnlyMount", mode: modeRO, fn: testReadOnly},
	}
}

func testOpenUnlinked(e *env) {
	sv0 := e.statvfs()
	fd, err := e.p.Open(e.path("f"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create")
	data := pattern(256<<10, 12)
	e.pwrite(e.p, fd, data, 0)
	e.ok(e.p.Fsync(fd), "fsync")
	sv1 := e.statvfs()
	if sv1.Bfree >= sv0.Bfree {
		e.fatalf("free blocks %d after writing 256 KiB, %d before", sv1.Bfree, sv0.Bfree)
	}
	ino := e.stat("f").Ino
	e.ok(e.p.Unlink(e.path("f")), "unlink of an open file")
	_, err = e.p.Stat(e.path("f"))
	e.want(err, "stat of the unlinked name", syscall.ENOENT)
	if got := userNames(e.readdir("", 10)); len(got) != 0 {
		e.fatalf("the unlinked name is still listed: %q", got)
	}
	a, err := e.p.Fstat(fd)
	e.ok(err, "fstat of an unlinked file")
	if a.Nlink != 0 {
		e.t.Errorf("fstat of an unlinked open file: nlink %d, want 0", a.Nlink)
	}
	if a.Size != uint64(len(data)) {
		e.fatalf("fstat of an unlinked file: size %d", a.Size)
	}
	// Still readable and writable.
	if got := e.pread(e.p, fd, len(data), 0); !bytes.Equal(got, data) {
		e.fatalf("read of an unlinked file: %s", diffBytes(got, data))
	}
	more := pattern(8192, 13)
	e.pwrite(e.p, fd, more, int64(len(data)))
	if got := e.pread(e.p, fd, len(more), int64(len(data))); !bytes.Equal(got, more) {
		e.fatalf("read back of a write to an unlinked file differs")
	}
	e.ok(e.p.Ftruncate(fd, int64(len(data))), "ftruncate of an unlinked file")
	// Its space is still in use.
	sv2 := e.statvfs()
	if sv2.Bfree >= sv0.Bfree {
		e.t.Errorf("free blocks %d while an unlinked file of 256 KiB is open, %d before it existed: its space was freed early", sv2.Bfree, sv0.Bfree)
	}
	// A new file under the same name is another file.
	e.writeFile("f", []byte("new"), 0o644)
	if e.caps.StableInodes && e.stat("f").Ino == ino {
		e.t.Errorf("a new file got the inode %d of an unlinked file that is still open", ino)
	}
	if got := e.pread(e.p, fd, 16, 0); !bytes.Equal(got, data[:16]) {
		e.fatalf("the open unlinked file changed when its name was reused")
	}
	e.checkContent("f", []byte("new"))
	e.ok(e.p.Unlink(e.path("f")), "unlink new f")
	e.ok(e.p.Close(fd), "close of the unlinked file")
	sv3 := e.statvfs()
	if sv3.Bfree != sv0.Bfree {
		e.t.Errorf("free blocks %d after the last close of an unlinked file, want %d as before it was made", sv3.Bfree, sv0.Bfree)
	}
	if sv0.Files > 0 && sv3.Ffree != sv0.Ffree {
		e.t.Errorf("free inodes %d after the last close of an unlinked file, want %d", sv3.Ffree, sv0.Ffree)
	}
}

func testStatvfsAccounting(e *env) {
	sv0 := e.statvfs()
	if sv0.Frsize == 0 {
		e.fatalf("statvfs Frsize is 0")
	}
	const size = 1 << 20
	e.writeFile("f", pattern(size, 14), 0o644)
	fd, err := e.p.Open(e.path("f"), syscall.O_RDONLY, 0)
	e.ok(err, "open")
	e.ok(e.p.Fsync(fd), "fsync")
	e.ok(e.p.Close(fd), "close")
	sv1 := e.statvfs()
	need := uint64(size) / uint64(sv0.Frsize)
	if sv0.Bfree < sv1.Bfree || sv0.Bfree-sv1.Bfree < need {
		e.fatalf("free blocks went from %d to %d after writing 1 MiB, want a drop of at least %d blocks of %d bytes", sv0.Bfree, sv1.Bfree, need, sv0.Frsize)
	}
	if sv0.Bavail < sv1.Bavail || sv0.Bavail-sv1.Bavail < need {
		e.t.Errorf("available blocks went from %d to %d after writing 1 MiB", sv0.Bavail, sv1.Bavail)
	}
	if sv0.Files > 0 && sv1.Ffree >= sv0.Ffree {
		e.t.Errorf("free inodes %d after creating a file, %d before", sv1.Ffree, sv0.Ffree)
	}
	if a := e.stat("f"); a.Blocks*512 < size {
		e.t.Errorf("Blocks %d for a 1 MiB file", a.Blocks)
	}
	// Shrinking gives back part, unlinking the rest.
	e.ok(e.p.Truncate(e.path("f"), size/2), "truncate to 512 KiB")
	sv2 := e.statvfs()
	if sv2.Bfree <= sv1.Bfree || sv2.Bfree-sv1.Bfree < need/2-1 {
		e.t.Errorf("free blocks went from %d to %d after truncating 1 MiB to 512 KiB", sv1.Bfree, sv2.Bfree)
	}
	e.ok(e.p.Unlink(e.path("f")), "unlink")
	sv3 := e.statvfs()
	if sv3.Bfree != sv0.Bfree {
		e.fatalf("free blocks %d after unlink, want %d as before the write", sv3.Bfree, sv0.Bfree)
	}
	if sv3.Ffree != sv0.Ffree {
		e.t.Errorf("free inodes %d after unlink, want %d", sv3.Ffree, sv0.Ffree)
	}
	if sv3.Blocks != sv0.Blocks || sv3.Files != sv0.Files {
		e.t.Errorf("total blocks/inodes changed: %d/%d -> %d/%d", sv0.Blocks, sv0.Files, sv3.Blocks, sv3.Files)
	}
	// A directory tree is accounted for too.
	e.mkdir("d", 0o755)
	for i := range 50 {
		e.writeFile("d/f"+itoa(i), pattern(3000, byte(i)), 0o644)
	}
	for i := range 50 {
		e.ok(e.p.Unlink(e.path("d/f"+itoa(i))), "unlink")
	}
	e.ok(e.p.Rmdir(e.path("d")), "rmdir")
	if sv4 := e.statvfs(); sv4.Bfree != sv0.Bfree || sv4.Ffree != sv0.Ffree {
		e.t.Errorf("after making and removing a directory of 50 files: bfree %d ffree %d, want %d %d", sv4.Bfree, sv4.Ffree, sv0.Bfree, sv0.Ffree)
	}
}

// fill writes into rel in 64 KiB pieces until ENOSPC and returns how many
// bytes were written; it fails the test if limit bytes go in without
// ENOSPC or if another error comes.
func (e *env) fill(rel string, limit int64) int64 {
	e.t.Helper()
	fd, err := e.p.Open(e.path(rel), syscall.O_CREAT|syscall.O_WRONLY|syscall.O_EXCL, 0o644)
	e.ok(err, "create %s", rel)
	defer e.p.Close(fd)
	chunk := pattern(64<<10, 15)
	var total int64
	for {
		n, err := e.p.Write(fd, chunk)
		if n < 0 || n > len(chunk) {
			e.fatalf("write returned %d", n)
		}
		total += int64(n)
		if err != nil {
			e.want(err, "writing until the file system is full", syscall.ENOSPC)
			if n == len(chunk) {
				e.t.Errorf("write reported ENOSPC with a full count")
			}
			break
		}
		if n != len(chunk) {
			// A short count without error: the next write must fail.
			continue
		}
		if total > limit {
			e.fatalf("wrote %d bytes, more than FillLimit %d, without ENOSPC", total, limit)
		}
	}
	a, err := e.p.Fstat(fd)
	e.ok(err, "fstat")
	if a.Size != uint64(total) {
		e.fatalf("size %d after filling, but writes reported %d bytes", a.Size, total)
	}
	return total
}

func testFill(e *env) {
	if e.s.FillLimit <= 0 {
		e.fatalf("Setup %s has no FillLimit", e.s.Name)
	}
	e.writeFile("keep", []byte("keep me"), 0o644)
	e.mkdir("d", 0o755)
	total1 := e.fill("fill1", e.s.FillLimit)
	if total1 == 0 {
		e.fatalf("not a byte could be written to a fresh file system")
	}
	// A full file system is still usable.
	e.checkContent("keep", []byte("keep me"))
	e.readdir("", 10)
	sv := e.statvfs()
	if sv.Bavail > uint64(64<<10)/uint64(max(sv.Frsize, 1))+2 {
		e.t.Errorf("statvfs reports %d blocks available after ENOSPC", sv.Bavail)
	}
	// The data that was accepted is all there.
	fd, err := e.p.Open(e.path("fill1"), syscall.O_RDONLY, 0)
	e.ok(err, "open fill1")
	chunk := pattern(64<<10, 15)
	for off := int64(0); off < total1; off += int64(len(chunk)) {
		n := min(int64(len(chunk)), total1-off)
		if got := e.pread(e.p, fd, int(n), off); !bytes.Equal(got, chunk[:n]) {
			e.fatalf("fill1 at %d: data written before ENOSPC is wrong", off)
		}
	}
	e.ok(e.p.Close(fd), "close")
	// Making a directory or a file may fail with ENOSPC, nothing else.
	if err := e.p.Mkdir(e.path("d/sub"), 0o755); err != nil {
		e.want(err, "mkdir on a full file system", syscall.ENOSPC)
	}
	if fd, err := e.p.Open(e.path("d/small"), syscall.O_CREAT|syscall.O_WRONLY, 0o644); err != nil {
		e.want(err, "create on a full file system", syscall.ENOSPC)
	} else {
		_, err := e.p.Write(fd, pattern(100000, 16))
		e.want(err, "write on a full file system", syscall.ENOSPC)
		e.ok(e.p.Close(fd), "close")
	}
	// Deleting makes room.
	e.ok(e.p.Unlink(e.path("fill1")), "unlink fill1")
	e.writeFile("after", pattern(256<<10, 17), 0o644)
	e.checkContent("after", pattern(256<<10, 17))
	e.ok(e.p.Unlink(e.path("after")), "unlink after")
	// All the space came back: a second fill takes about as much.
	total2 := e.fill("fill2", e.s.FillLimit)
	if total2 < total1-total1/20 {
		e.t.Errorf("second fill took %d bytes, the first %d: space leaked", total2, total1)
	}
	e.ok(e.p.Unlink(e.path("fill2")), "unlink fill2")
	e.checkContent("keep", []byte("keep me"))
}

func testReadOnly(e *env) {
	e.ensureSeed()
	p := e.p
	erofs := func(err error, op string) {
		e.t.Helper()
		e.wantSoft(err, op+" on a read-only mount", syscall.EROFS)
	}
	for _, fl := range []int{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC, syscall.O_WRONLY | syscall.O_APPEND} {
		_, err := p.Open(e.path(SeedFile), fl, 0)
		erofs(err, "open of a file with flags "+itoa(fl))
	}
	_, err := p.Open(e.path("new"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	erofs(err, "create")
	_, err = p.Open(e.path(SeedFile), syscall.O_CREAT|syscall.O_RDONLY, 0o644)
	if err != nil {
		e.t.Errorf("O_CREAT|O_RDONLY of an existing file on a read-only mount: %v (Linux and NetBSD open it)", errName(err))
	}
	erofs(p.Mkdir(e.path("newdir"), 0o755), "mkdir")
	erofs(p.Rmdir(e.path(SeedDir)), "rmdir")
	erofs(p.Unlink(e.path(SeedFile)), "unlink")
	erofs(p.Unlink(e.path(SeedInner)), "unlink in a subdirectory")
	erofs(p.Rename(e.path(SeedFile), e.path("renamed")), "rename")
	erofs(p.Rename(e.path(SeedFile), e.path(SeedDir+"/x")), "rename across directories")
	erofs(p.Link(e.path(SeedFile), e.path("hard")), "link")
	erofs(p.Symlink("file", e.path("sym")), "symlink")
	erofs(p.Chmod(e.path(SeedFile), 0o600), "chmod")
	erofs(p.Chmod(e.mnt, 0o700), "chmod of the mount root")
	erofs(p.Chown(e.path(SeedFile), 1, 1), "chown")
	erofs(p.Utimes(e.path(SeedFile), ns(1), ns(1)), "utimes")
	erofs(p.Utimes(e.path(SeedFile), rumpcore.UtimeNow, rumpcore.UtimeNow), "utimes to now")
	erofs(p.Truncate(e.path(SeedFile), 0), "truncate")
	erofs(p.Truncate(e.path(SeedFile), 1<<20), "truncate up")
	// Through the vnode API too.
	root := e.k.Root()
	mv, err := root.Lookup(vnodeops.Root, e.mnt[1:])
	root.Release()
	e.ok(err, "lookup mount")
	_, err = mv.Mknod(vnodeops.Root, "fifo", vnodeops.S_IFIFO|0o644, 0)
	erofs(err, "mknod")
	fv, err := mv.Lookup(vnodeops.Root, SeedFile)
	e.ok(err, "lookup seed file")
	_, err = fv.Write([]byte("x"), 0)
	erofs(err, "Vnode.Write")
	erofs(fv.Setattr(vnodeops.Root, vnodeops.SetAttr{Mask: vnodeops.SetSize}), "Vnode.Setattr size")
	fv.Release()
	mv.Release()
	// Reading works, and nothing changed.
	fd, err := p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open for reading")
	_, err = p.Write(fd, []byte("x"))
	e.wantSoft(err, "write on a read-only descriptor", syscall.EBADF, syscall.EROFS)
	e.ok(p.Fsync(fd), "fsync of a file on a read-only mount")
	e.ok(p.Close(fd), "close")
	e.checkContent(SeedFile, SeedData())
	e.checkContent(SeedInner, []byte(SeedInnerData))
	want := []string{"dir", "file"}
	if e.caps.Symlinks {
		want = []string{"dir", "file", "link"}
	}
	if got := userNames(e.readdir("", 10)); !equalStrings(got, want) {
		e.t.Errorf("read-only mount root lists %q, want %q", got, want)
	}
	if st := e.statvfs(); st.Flags&vnodeops.StRdonly == 0 {
		e.t.Errorf("statvfs of a read-only mount: flags %#x lack StRdonly", st.Flags)
	}
	for _, mi := range e.k.Mounts() {
		if mi.Path == e.mnt && !mi.ReadOnly {
			e.t.Errorf("Mounts() shows %s read-write", e.mnt)
		}
	}
	e.ok(p.Sync(), "sync with a read-only mount")
}
