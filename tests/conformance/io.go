package conformance

import (
	"bytes"
	"io"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

func ioCases() []testCase {
	return []testCase{
		{name: "CreateReadWrite", fn: testCreateReadWrite},
		{name: "CreateUmask", need: needs("permissions"), fn: testCreateUmask},
		{name: "WriteManyBlocks", fn: testWriteManyBlocks},
		{name: "Append", fn: testAppend},
		{name: "OpenExcl", fn: testOpenExcl},
		{name: "OpenTrunc", fn: testOpenTrunc},
		{name: "OpenDirectoryOnFile", mode: modeEither, fn: testOpenDirectoryOnFile},
		{name: "OpenNoFollow", mode: modeEither, need: needs("symlinks"), fn: testOpenNoFollow},
		{name: "OpenKinds", mode: modeEither, fn: testOpenKinds},
		{name: "FdAccessMode", fn: testFdAccessMode},
		{name: "Lseek", mode: modeEither, fn: testLseek},
		{name: "Fsync", fn: testFsync},
	}
}

func testCreateReadWrite(e *env) {
	p := e.p
	msg := []byte("hello, world\n")
	fd, err := p.Open(e.path("a"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create a")
	a, err := p.Fstat(fd)
	e.ok(err, "fstat new file")
	if a.Mode&vnodeops.S_IFMT != vnodeops.S_IFREG || a.Size != 0 {
		e.fatalf("new file: mode %#o size %d, want a regular file of size 0", a.Mode, a.Size)
	}
	if e.caps.Permissions && a.Mode&vnodeops.PermMask != 0o644 {
		e.t.Errorf("new file: permissions %#o, want 0644", a.Mode&vnodeops.PermMask)
	}
	if a.Nlink != 1 {
		e.t.Errorf("new file: nlink %d, want 1", a.Nlink)
	}
	n, err := p.Write(fd, msg)
	e.ok(err, "write")
	if n != len(msg) {
		e.fatalf("write returned %d, want %d", n, len(msg))
	}
	// The offset is now at the end: a read returns end of file.
	buf := make([]byte, 100)
	n, err = p.Read(fd, buf)
	e.ok(err, "read at end of file")
	if n != 0 {
		e.fatalf("read at end of file returned %d bytes, want 0", n)
	}
	n, err = p.Pread(fd, buf, 0)
	e.ok(err, "pread")
	if !bytes.Equal(buf[:n], msg) {
		e.fatalf("pread got %q, want %q", buf[:n], msg)
	}
	n, err = p.Pread(fd, buf[:5], 7)
	e.ok(err, "pread middle")
	if string(buf[:n]) != "world" {
		e.fatalf("pread at 7 got %q, want %q", buf[:n], "world")
	}
	// Pread past the end.
	n, err = p.Pread(fd, buf, 1000)
	e.ok(err, "pread past end")
	if n != 0 {
		e.fatalf("pread past end returned %d bytes", n)
	}
	// Zero-length reads and writes do nothing, not even past the end.
	if n, err := p.Pwrite(fd, nil, 1000); err != nil || n != 0 {
		e.fatalf("zero-length pwrite past the end: %d, %v", n, errName(err))
	}
	if n, err := p.Write(fd, []byte{}); err != nil || n != 0 {
		e.fatalf("zero-length write: %d, %v", n, errName(err))
	}
	if n, err := p.Pread(fd, nil, 0); err != nil || n != 0 {
		e.fatalf("zero-length pread: %d, %v", n, errName(err))
	}
	if a, err := p.Fstat(fd); err != nil || a.Size != uint64(len(msg)) {
		e.fatalf("size after zero-length writes: %d, %v; want %d", a.Size, errName(err), len(msg))
	}
	// Overwrite in the middle.
	e.pwrite(p, fd, []byte("WORLD"), 7)
	a, err = p.Fstat(fd)
	e.ok(err, "fstat")
	if a.Size != uint64(len(msg)) {
		e.fatalf("size %d after overwrite, want %d", a.Size, len(msg))
	}
	e.ok(p.Close(fd), "close")
	e.checkContent("a", []byte("hello, WORLD\n"))
	if a := e.stat("a"); a.Size != uint64(len(msg)) {
		e.fatalf("stat size %d, want %d", a.Size, len(msg))
	}
	// The name appears in its directory.
	if got := userNames(e.readdir("", 100)); !equalStrings(got, []string{"a"}) {
		e.fatalf("readdir of the mount: %q, want [a]", got)
	}
}

func testCreateUmask(e *env) {
	old := e.p.Umask(0o027)
	if old != 0 {
		e.t.Errorf("Umask returned %#o, want the previous mask 0", old)
	}
	fd, err := e.p.Open(e.path("f"), syscall.O_CREAT|syscall.O_WRONLY, 0o666)
	e.ok(err, "create f")
	e.ok(e.p.Close(fd), "close")
	e.ok(e.p.Mkdir(e.path("d"), 0o777), "mkdir d")
	if m := e.stat("f").Mode & vnodeops.PermMask; m != 0o640 {
		e.t.Errorf("file made with 0666 under umask 027: mode %#o, want 0640", m)
	}
	if m := e.stat("d").Mode & vnodeops.PermMask; m != 0o750 {
		e.t.Errorf("directory made with 0777 under umask 027: mode %#o, want 0750", m)
	}
	// O_CREAT of an existing file keeps its mode.
	fd, err = e.p.Open(e.path("f"), syscall.O_CREAT|syscall.O_WRONLY, 0o600)
	e.ok(err, "reopen f with O_CREAT")
	e.ok(e.p.Close(fd), "close")
	if m := e.stat("f").Mode & vnodeops.PermMask; m != 0o640 {
		e.t.Errorf("O_CREAT of an existing file changed its mode to %#o", m)
	}
}

func testWriteManyBlocks(e *env) {
	bs := e.blockSize()
	data := pattern(37*bs+123, 1)
	fd, err := e.p.Open(e.path("big"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create")
	// Write in odd-sized pieces so that writes straddle block boundaries.
	for off := 0; off < len(data); {
		n := min(len(data)-off, bs/3+17)
		w, err := e.p.Write(fd, data[off:off+n])
		e.ok(err, "write at %d", off)
		if w != n {
			e.fatalf("write at %d: %d of %d bytes", off, w, n)
		}
		off += n
	}
	// Overwrite a range across two blocks.
	patch := pattern(bs, 2)
	e.pwrite(e.p, fd, patch, int64(5*bs+bs/2))
	copy(data[5*bs+bs/2:], patch)
	got := e.pread(e.p, fd, len(data), 0)
	if !bytes.Equal(got, data) {
		e.fatalf("read back: %s", diffBytes(got, data))
	}
	e.ok(e.p.Close(fd), "close")
	e.checkContent("big", data)
	a := e.stat("big")
	if a.Blocks*512 < uint64(len(data)) {
		e.t.Errorf("Blocks %d (×512 = %d) is less than the %d bytes written", a.Blocks, a.Blocks*512, len(data))
	}
}

func testAppend(e *env) {
	e.writeFile("log", []byte("one\n"), 0o644)
	fd, err := e.p.Open(e.path("log"), syscall.O_WRONLY|syscall.O_APPEND, 0)
	e.ok(err, "open O_APPEND")
	_, err = e.p.Lseek(fd, 0, io.SeekStart)
	e.ok(err, "lseek")
	_, err = e.p.Write(fd, []byte("two\n"))
	e.ok(err, "append write")
	// Another descriptor extends the file meanwhile.
	fd2, err := e.p.Open(e.path("log"), syscall.O_WRONLY, 0)
	e.ok(err, "open second fd")
	e.pwrite(e.p, fd2, []byte("three\n"), 8)
	e.ok(e.p.Close(fd2), "close second fd")
	_, err = e.p.Write(fd, []byte("four\n"))
	e.ok(err, "append write after another writer")
	pos, err := e.p.Lseek(fd, 0, io.SeekCurrent)
	e.ok(err, "lseek current")
	if pos != 19 {
		e.t.Errorf("offset after append %d, want the end of file 19", pos)
	}
	// Pwrite ignores O_APPEND (rumpcore documents POSIX behaviour here;
	// Linux would append).
	e.pwrite(e.p, fd, []byte("O"), 0)
	e.ok(e.p.Close(fd), "close")
	e.checkContent("log", []byte("One\ntwo\nthree\nfour\n"))
	// O_APPEND|O_CREAT makes the file.
	fd, err = e.p.Open(e.path("new"), syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT, 0o644)
	e.ok(err, "open O_APPEND|O_CREAT")
	for _, s := range []string{"a", "b", "c"} {
		_, err = e.p.Write(fd, []byte(s))
		e.ok(err, "append %s", s)
	}
	e.ok(e.p.Close(fd), "close")
	e.checkContent("new", []byte("abc"))
}

func testOpenExcl(e *env) {
	fd, err := e.p.Open(e.path("x"), syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
	e.ok(err, "O_EXCL create of a new name")
	e.ok(e.p.Close(fd), "close")
	_, err = e.p.Open(e.path("x"), syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
	e.want(err, "O_CREAT|O_EXCL of an existing file", syscall.EEXIST)
	e.mkdir("d", 0o755)
	_, err = e.p.Open(e.path("d"), syscall.O_CREAT|syscall.O_EXCL|syscall.O_RDONLY, 0o644)
	e.want(err, "O_CREAT|O_EXCL of an existing directory", syscall.EEXIST)
	if e.caps.Symlinks {
		// O_EXCL never follows a symbolic link, even a dangling one.
		e.ok(e.p.Symlink("nowhere", e.path("dangling")), "symlink")
		_, err = e.p.Open(e.path("dangling"), syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
		e.want(err, "O_CREAT|O_EXCL of a dangling symbolic link", syscall.EEXIST)
		if e.exists("nowhere") {
			e.t.Errorf("O_CREAT|O_EXCL through a dangling symlink created its target")
		}
	}
}

func testOpenTrunc(e *env) {
	e.writeFile("t", pattern(3*e.blockSize()+5, 3), 0o644)
	fd, err := e.p.Open(e.path("t"), syscall.O_WRONLY|syscall.O_TRUNC, 0)
	e.ok(err, "open O_TRUNC")
	a, err := e.p.Fstat(fd)
	e.ok(err, "fstat")
	if a.Size != 0 {
		e.fatalf("size after O_TRUNC %d, want 0", a.Size)
	}
	_, err = e.p.Write(fd, []byte("xy"))
	e.ok(err, "write")
	e.ok(e.p.Close(fd), "close")
	e.checkContent("t", []byte("xy"))
	// O_TRUNC|O_CREAT of an existing file truncates it, keeping the inode.
	ino := e.stat("t").Ino
	fd, err = e.p.Open(e.path("t"), syscall.O_WRONLY|syscall.O_TRUNC|syscall.O_CREAT, 0o600)
	e.ok(err, "open O_CREAT|O_TRUNC")
	e.ok(e.p.Close(fd), "close")
	a = e.stat("t")
	if a.Size != 0 {
		e.fatalf("size after O_CREAT|O_TRUNC %d, want 0", a.Size)
	}
	if a.Ino != ino {
		e.t.Errorf("O_CREAT|O_TRUNC made a new inode %d (was %d)", a.Ino, ino)
	}
	// O_TRUNC on a directory fails.
	e.mkdir("d", 0o755)
	_, err = e.p.Open(e.path("d"), syscall.O_RDWR|syscall.O_TRUNC, 0)
	e.want(err, "open a directory O_RDWR|O_TRUNC", syscall.EISDIR)
}

func testOpenDirectoryOnFile(e *env) {
	e.ensureSeed()
	_, err := e.p.Open(e.path(SeedFile), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.want(err, "O_DIRECTORY on a regular file", syscall.ENOTDIR)
	fd, err := e.p.Open(e.path(SeedDir), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "O_DIRECTORY on a directory")
	e.ok(e.p.Close(fd), "close")
	if e.caps.Symlinks {
		_, err = e.p.Open(e.path(SeedLink), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		e.want(err, "O_DIRECTORY on a symbolic link to a file", syscall.ENOTDIR)
	}
}

func testOpenNoFollow(e *env) {
	e.ensureSeed()
	_, err := e.p.Open(e.path(SeedLink), syscall.O_RDONLY|syscall.O_NOFOLLOW, 0)
	e.want(err, "O_NOFOLLOW on a symbolic link", syscall.ELOOP)
	fd, err := e.p.Open(e.path(SeedFile), syscall.O_RDONLY|syscall.O_NOFOLLOW, 0)
	e.ok(err, "O_NOFOLLOW on a regular file")
	e.ok(e.p.Close(fd), "close")
	if !e.ro {
		// Only the last component is not followed.
		e.ok(e.p.Symlink(SeedDir, e.path("dirlink")), "symlink to dir")
		fd, err = e.p.Open(e.path("dirlink/inner"), syscall.O_RDONLY|syscall.O_NOFOLLOW, 0)
		e.ok(err, "O_NOFOLLOW with a symbolic link in a middle component")
		e.ok(e.p.Close(fd), "close")
		_, err = e.p.Open(e.path("dirlink"), syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_DIRECTORY, 0)
		e.want(err, "O_NOFOLLOW|O_DIRECTORY on a symbolic link to a directory", syscall.ELOOP, syscall.ENOTDIR)
		// O_CREAT|O_NOFOLLOW on an existing link.
		_, err = e.p.Open(e.path(SeedLink), syscall.O_RDWR|syscall.O_CREAT|syscall.O_NOFOLLOW, 0o644)
		e.want(err, "O_CREAT|O_NOFOLLOW on a symbolic link", syscall.ELOOP)
	}
}

func testOpenKinds(e *env) {
	e.ensureSeed()
	_, err := e.p.Open(e.path("missing"), syscall.O_RDONLY, 0)
	e.want(err, "open of a missing file without O_CREAT", syscall.ENOENT)
	_, err = e.p.Open(e.path("nodir/x"), syscall.O_RDONLY, 0)
	e.want(err, "open below a missing directory", syscall.ENOENT)
	_, err = e.p.Open(e.path(SeedDir), syscall.O_WRONLY, 0)
	e.want(err, "open of a directory for writing", syscall.EISDIR, syscall.EROFS)
	_, err = e.p.Open(e.path(SeedDir), syscall.O_RDWR, 0)
	e.want(err, "open of a directory O_RDWR", syscall.EISDIR, syscall.EROFS)
	fd, err := e.p.Open(e.path(SeedDir), syscall.O_RDONLY, 0)
	e.ok(err, "open of a directory read-only")
	buf := make([]byte, 10)
	_, err = e.p.Read(fd, buf)
	e.want(err, "read(2) of a directory", syscall.EISDIR)
	e.ok(e.p.Close(fd), "close")
	if !e.ro {
		_, err = e.p.Open(e.path(SeedDir), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		e.want(err, "O_CREAT|O_WRONLY on an existing directory", syscall.EISDIR)
		_, err = e.p.Open(e.path("nodir/x"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		e.want(err, "O_CREAT below a missing directory", syscall.ENOENT)
		_, err = e.p.Open(e.path(SeedFile+"/x"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		e.want(err, "O_CREAT below a regular file", syscall.ENOTDIR)
		_, err = e.p.Open(e.path(SeedDir+"/."), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		e.want(err, "O_CREAT of \"dir/.\"", syscall.EISDIR)
		// Linux refuses O_CREAT of an existing directory even read-only.
		fd, err = e.p.Open(e.path(SeedDir), syscall.O_CREAT|syscall.O_RDONLY, 0o644)
		if err == nil {
			e.p.Close(fd)
		}
		e.wantSoft(err, "O_CREAT|O_RDONLY of an existing directory", syscall.EISDIR)
	}
}

func testFdAccessMode(e *env) {
	e.writeFile("f", []byte("data"), 0o644)
	fd, err := e.p.Open(e.path("f"), syscall.O_RDONLY, 0)
	e.ok(err, "open read-only")
	_, err = e.p.Write(fd, []byte("x"))
	e.want(err, "write on a read-only descriptor", syscall.EBADF)
	_, err = e.p.Pwrite(fd, []byte("x"), 0)
	e.want(err, "pwrite on a read-only descriptor", syscall.EBADF)
	err = e.p.Ftruncate(fd, 0)
	e.want(err, "ftruncate on a read-only descriptor", syscall.EBADF, syscall.EINVAL)
	e.ok(e.p.Close(fd), "close")
	fd, err = e.p.Open(e.path("f"), syscall.O_WRONLY, 0)
	e.ok(err, "open write-only")
	_, err = e.p.Read(fd, make([]byte, 4))
	e.want(err, "read on a write-only descriptor", syscall.EBADF)
	_, err = e.p.Pread(fd, make([]byte, 4), 0)
	e.want(err, "pread on a write-only descriptor", syscall.EBADF)
	e.ok(e.p.Close(fd), "close")
	e.checkContent("f", []byte("data"))
}

func testLseek(e *env) {
	e.ensureSeed()
	size := int64(len(SeedData()))
	fd, err := e.p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open")
	defer e.p.Close(fd)
	pos, err := e.p.Lseek(fd, 100, io.SeekStart)
	e.ok(err, "lseek SEEK_SET")
	if pos != 100 {
		e.fatalf("SEEK_SET 100 returned %d", pos)
	}
	buf := make([]byte, 10)
	n, err := e.p.Read(fd, buf)
	e.ok(err, "read")
	if n != 10 || !bytes.Equal(buf, SeedData()[100:110]) {
		e.fatalf("read after seek: %d bytes %x, want %x", n, buf[:n], SeedData()[100:110])
	}
	pos, err = e.p.Lseek(fd, -5, io.SeekCurrent)
	e.ok(err, "lseek SEEK_CUR")
	if pos != 105 {
		e.fatalf("SEEK_CUR -5 at 110 returned %d, want 105", pos)
	}
	pos, err = e.p.Lseek(fd, -1, io.SeekEnd)
	e.ok(err, "lseek SEEK_END")
	if pos != size-1 {
		e.fatalf("SEEK_END -1 returned %d, want %d", pos, size-1)
	}
	n, err = e.p.Read(fd, buf)
	e.ok(err, "read last byte")
	if n != 1 || buf[0] != SeedData()[size-1] {
		e.fatalf("read at end-1: %d bytes", n)
	}
	// Seeking past the end is allowed; reading there gives end of file.
	pos, err = e.p.Lseek(fd, size+1000, io.SeekStart)
	e.ok(err, "lseek past end")
	if pos != size+1000 {
		e.fatalf("lseek past end returned %d", pos)
	}
	n, err = e.p.Read(fd, buf)
	e.ok(err, "read past end")
	if n != 0 {
		e.fatalf("read past end returned %d bytes", n)
	}
	_, err = e.p.Lseek(fd, -1, io.SeekStart)
	e.want(err, "lseek to a negative offset", syscall.EINVAL)
	_, err = e.p.Lseek(fd, 0, 42)
	e.want(err, "lseek with whence 42", syscall.EINVAL)
	pos, err = e.p.Lseek(fd, 0, io.SeekCurrent)
	e.ok(err, "lseek after failed lseeks")
	if pos != size+1000 {
		e.t.Errorf("a failed lseek moved the offset to %d", pos)
	}
}

func testFsync(e *env) {
	fd, err := e.p.Open(e.path("f"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create")
	data := pattern(3*e.blockSize(), 9)
	e.pwrite(e.p, fd, data, 0)
	e.ok(e.p.Fsync(fd), "fsync")
	e.ok(e.p.Sync(), "sync")
	e.ok(e.p.Close(fd), "close")
	// A directory can be fsynced too.
	fd, err = e.p.Open(e.mnt, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "open mount root")
	e.ok(e.p.Fsync(fd), "fsync of a directory")
	e.ok(e.p.Close(fd), "close")
	e.checkContent("f", data)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
