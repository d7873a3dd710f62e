package conformance

import (
	"strings"
	"syscall"
)

func argCases() []testCase {
	return []testCase{
		{name: "EmptyPath", mode: modeEither, fn: testEmptyPath},
		{name: "NameTooLong", mode: modeEither, fn: testNameTooLong},
		{name: "NegativeOffset", mode: modeEither, fn: testNegativeOffset},
		{name: "BadFd", mode: modeEither, fn: testBadFd},
		{name: "UnknownOpenFlags", mode: modeEither, fn: testUnknownOpenFlags},
		{name: "TrailingSlash", mode: modeEither, fn: testTrailingSlash},
		{name: "DotAndDotDot", mode: modeEither, fn: testDotDot},
		{name: "RelativePaths", fn: testRelativePaths},
	}
}

func testEmptyPath(e *env) {
	e.ensureSeed()
	p := e.p
	_, err := p.Open("", syscall.O_RDONLY, 0)
	e.wantSoft(err, "open \"\"", syscall.ENOENT)
	_, err = p.Open("", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	e.wantSoft(err, "open \"\" O_CREAT", syscall.ENOENT)
	_, err = p.Stat("")
	e.wantSoft(err, "stat \"\"", syscall.ENOENT)
	_, err = p.Lstat("")
	e.wantSoft(err, "lstat \"\"", syscall.ENOENT)
	e.wantSoft(p.Mkdir("", 0o755), "mkdir \"\"", syscall.ENOENT)
	e.wantSoft(p.Rmdir(""), "rmdir \"\"", syscall.ENOENT)
	e.wantSoft(p.Unlink(""), "unlink \"\"", syscall.ENOENT)
	e.wantSoft(p.Chmod("", 0o644), "chmod \"\"", syscall.ENOENT)
	e.wantSoft(p.Chown("", 0, 0), "chown \"\"", syscall.ENOENT)
	e.wantSoft(p.Utimes("", 0, 0), "utimes \"\"", syscall.ENOENT)
	e.wantSoft(p.Truncate("", 0), "truncate \"\"", syscall.ENOENT)
	e.wantSoft(p.Chdir(""), "chdir \"\"", syscall.ENOENT)
	_, err = p.Readlink("")
	e.wantSoft(err, "readlink \"\"", syscall.ENOENT)
	_, err = p.Statvfs("")
	e.wantSoft(err, "statvfs \"\"", syscall.ENOENT)
	e.wantSoft(p.Symlink("x", ""), "symlink to \"\"", syscall.ENOENT)
	e.wantSoft(p.Link(e.path(SeedFile), ""), "link to \"\"", syscall.ENOENT)
	e.wantSoft(p.Link("", e.path("x")), "link from \"\"", syscall.ENOENT)
	// NUL bytes are invalid in a path.
	_, err = p.Stat(e.path("fi\x00le"))
	e.wantSoft(err, "stat of a path with a NUL byte", syscall.EINVAL, syscall.ENOENT)
}

func testNameTooLong(e *env) {
	e.ensureSeed()
	p := e.p
	long := strings.Repeat("a", 256)
	for _, path := range []string{e.path(long), e.path(long + "/x"), e.path(SeedDir + "/" + long)} {
		_, err := p.Stat(path)
		e.wantSoft(err, "stat of a 256-byte name", syscall.ENAMETOOLONG)
		_, err = p.Open(path, syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		e.wantSoft(err, "create of a 256-byte name", syscall.ENAMETOOLONG, syscall.EROFS)
	}
	e.wantSoft(p.Mkdir(e.path(long), 0o755), "mkdir of a 256-byte name", syscall.ENAMETOOLONG, syscall.EROFS)
	e.wantSoft(p.Rename(e.path(SeedFile), e.path(long)), "rename to a 256-byte name", syscall.ENAMETOOLONG, syscall.EROFS)
	e.wantSoft(p.Symlink("x", e.path(long)), "symlink named with 256 bytes", syscall.ENAMETOOLONG, syscall.EROFS)
	// A path longer than PATH_MAX (4096) in short components.
	deep := e.mnt + strings.Repeat("/.", 2100)
	_, err := p.Stat(deep)
	e.wantSoft(err, "stat of a 4200-byte path", syscall.ENAMETOOLONG)
	if e.ro {
		return
	}
	// The longest name the format allows works; one more byte does not.
	max := e.nameMax()
	name := strings.Repeat("m", max)
	e.writeFile(name, []byte("longest"), 0o644)
	e.checkContent(name, []byte("longest"))
	if got := userNames(e.readdir("", 20)); !containsString(got, name) {
		e.fatalf("the %d-byte name is not listed", max)
	}
	e.ok(p.Mkdir(e.path(SeedDir+"/"+name), 0o755), "mkdir of a %d-byte name", max)
	if max < 255 {
		_, err = p.Open(e.path(name+"m"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		e.want(err, "create of a name one byte past NameMax", syscall.ENAMETOOLONG)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func testNegativeOffset(e *env) {
	e.ensureSeed()
	fl := syscall.O_RDWR
	if e.ro {
		fl = syscall.O_RDONLY
	}
	fd, err := e.p.Open(e.path(SeedFile), fl, 0)
	e.ok(err, "open")
	defer e.p.Close(fd)
	_, err = e.p.Pread(fd, make([]byte, 4), -1)
	e.want(err, "pread at -1", syscall.EINVAL)
	_, err = e.p.Pread(fd, make([]byte, 4), -1<<62)
	e.want(err, "pread at -2^62", syscall.EINVAL)
	if !e.ro {
		_, err = e.p.Pwrite(fd, []byte("x"), -1)
		e.want(err, "pwrite at -1", syscall.EINVAL)
		e.want(e.p.Ftruncate(fd, -1), "ftruncate to -1", syscall.EINVAL)
	}
	_, err = e.p.Lseek(fd, -1, 0)
	e.want(err, "lseek to -1", syscall.EINVAL)
	_, err = e.p.Lseek(fd, -int64(len(SeedData()))-1, 2)
	e.want(err, "lseek to before the start from the end", syscall.EINVAL)
	e.checkContent(SeedFile, SeedData())
}

func testBadFd(e *env) {
	e.ensureSeed()
	p := e.p
	fd, err := p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open")
	e.ok(p.Close(fd), "close")
	buf := make([]byte, 4)
	for _, bad := range []int{-1, fd, 9999, 1 << 30} {
		_, err = p.Read(bad, buf)
		e.wantSoft(err, "read of fd "+itoa(bad), syscall.EBADF)
		_, err = p.Write(bad, buf)
		e.wantSoft(err, "write of fd "+itoa(bad), syscall.EBADF)
		_, err = p.Pread(bad, buf, 0)
		e.wantSoft(err, "pread of fd "+itoa(bad), syscall.EBADF)
		_, err = p.Pwrite(bad, buf, 0)
		e.wantSoft(err, "pwrite of fd "+itoa(bad), syscall.EBADF)
		_, err = p.Lseek(bad, 0, 0)
		e.wantSoft(err, "lseek of fd "+itoa(bad), syscall.EBADF)
		_, err = p.Fstat(bad)
		e.wantSoft(err, "fstat of fd "+itoa(bad), syscall.EBADF)
		e.wantSoft(p.Ftruncate(bad, 0), "ftruncate of fd "+itoa(bad), syscall.EBADF)
		e.wantSoft(p.Fsync(bad), "fsync of fd "+itoa(bad), syscall.EBADF)
		_, err = p.Getdents(bad, 10)
		e.wantSoft(err, "getdents of fd "+itoa(bad), syscall.EBADF)
		e.wantSoft(p.Close(bad), "close of fd "+itoa(bad), syscall.EBADF)
	}
	// A descriptor of another process is not ours.
	q := e.user(0, 0)
	fd, err = q.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open in another process")
	if _, err := p.Fstat(fd); err == nil {
		// The number may be valid here by chance only if p has it open.
		e.t.Errorf("fstat of another process's descriptor %d succeeded", fd)
	}
	e.ok(q.Close(fd), "close in the other process")
	// Descriptor numbers are reused from the lowest free one.
	a, err := p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open a")
	b, err := p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open b")
	if a == b || a < 0 || b < 0 {
		e.fatalf("descriptors %d and %d", a, b)
	}
	e.ok(p.Close(a), "close a")
	c, err := p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open c")
	if c != a {
		e.t.Logf("note: descriptor %d reused as %d (POSIX wants the lowest free)", a, c)
	}
	e.ok(p.Close(b), "close b")
	e.ok(p.Close(c), "close c")
}

// testUnknownOpenFlags: rumpcore.Proc.Open documents EINVAL for flags it
// does not know (Linux would ignore them).
func testUnknownOpenFlags(e *env) {
	e.ensureSeed()
	for _, fl := range []int{1 << 29, 1 << 30, syscall.O_RDONLY | 1<<29} {
		fd, err := e.p.Open(e.path(SeedFile), fl, 0)
		if err == nil {
			e.p.Close(fd)
		}
		e.wantSoft(err, "open with unknown flag bits "+itoa(fl), syscall.EINVAL)
	}
	// O_ACCMODE with both bits set is invalid everywhere.
	_, err := e.p.Open(e.path(SeedFile), syscall.O_ACCMODE, 0)
	e.want(err, "open with O_ACCMODE (3)", syscall.EINVAL)
	if !e.ro {
		// A refused O_CREAT makes nothing.
		_, err = e.p.Open(e.path("new"), syscall.O_CREAT|syscall.O_WRONLY|1<<29, 0o644)
		e.want(err, "O_CREAT with an unknown flag", syscall.EINVAL)
		if e.exists("new") {
			e.fatalf("an open refused for its flags created the file")
		}
	}
}

func testTrailingSlash(e *env) {
	e.ensureSeed()
	p := e.p
	_, err := p.Stat(e.path(SeedFile + "/"))
	e.wantSoft(err, "stat of \"file/\"", syscall.ENOTDIR)
	_, err = p.Lstat(e.path(SeedFile + "/"))
	e.wantSoft(err, "lstat of \"file/\"", syscall.ENOTDIR)
	_, err = p.Open(e.path(SeedFile+"/"), syscall.O_RDONLY, 0)
	e.wantSoft(err, "open of \"file/\"", syscall.ENOTDIR)
	_, err = p.Stat(e.path(SeedFile + "/."))
	e.wantSoft(err, "stat of \"file/.\"", syscall.ENOTDIR)
	_, err = p.Stat(e.path(SeedFile + "/x"))
	e.wantSoft(err, "stat of \"file/x\"", syscall.ENOTDIR)
	if a, err := p.Stat(e.path(SeedDir + "/")); err != nil || !a.IsDir() {
		e.t.Errorf("stat of \"dir/\": %v", errName(err))
	}
	if a, err := p.Stat(e.path(SeedDir + "//")); err != nil || !a.IsDir() {
		e.t.Errorf("stat of \"dir//\": %v", errName(err))
	}
	if _, err := p.Stat(e.mnt + "//" + SeedDir + "///inner"); err != nil {
		e.t.Errorf("stat with doubled slashes: %v", errName(err))
	}
	if e.caps.Symlinks {
		_, err = p.Stat(e.path(SeedLink + "/"))
		e.wantSoft(err, "stat of \"link-to-file/\"", syscall.ENOTDIR)
	}
	if !e.ro {
		_, err = p.Open(e.path("new/"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		e.wantSoft(err, "O_CREAT of \"new/\"", syscall.EISDIR, syscall.ENOTDIR, syscall.ENOENT)
		if e.exists("new") {
			e.t.Errorf("O_CREAT of \"new/\" made a file")
		}
		e.wantSoft(p.Symlink("x", e.path("sl/")), "symlink named \"sl/\"", syscall.ENOENT, syscall.ENOTDIR, syscall.EEXIST)
		if e.exists("sl") {
			e.t.Errorf("symlink named \"sl/\" made a link")
		}
		if e.caps.HardLinks {
			e.wantSoft(p.Link(e.path(SeedFile), e.path("hl/")), "link named \"hl/\"", syscall.ENOENT, syscall.ENOTDIR, syscall.EEXIST)
		}
		e.wantSoft(p.Rmdir(e.path(SeedFile+"/")), "rmdir of \"file/\"", syscall.ENOTDIR)
		e.wantSoft(p.Truncate(e.path(SeedFile+"/"), 0), "truncate of \"file/\"", syscall.ENOTDIR)
		e.wantSoft(p.Chmod(e.path(SeedFile+"/"), 0o600), "chmod of \"file/\"", syscall.ENOTDIR)
		e.checkContent(SeedFile, SeedData())
	}
}

func testDotDot(e *env) {
	e.ensureSeed()
	p := e.p
	rootA, err := p.Stat("/")
	e.ok(err, "stat /")
	for _, path := range []string{"/..", "/../..", "/./..", "/" + e.mnt[1:] + "/../.."} {
		a, err := p.Stat(path)
		e.ok(err, "stat %s", path)
		if a.Ino != rootA.Ino {
			e.t.Errorf("%s has inode %d, want / (%d): \"..\" left the root", path, a.Ino, rootA.Ino)
		}
	}
	// "..", "." inside the mount.
	e.checkContent(SeedDir+"/../"+SeedFile, SeedData())
	e.checkContent("./"+SeedDir+"/./inner", []byte(SeedInnerData))
	e.checkContent(SeedDir+"/../"+SeedDir+"/../"+SeedFile, SeedData())
	if a, b := e.stat(SeedDir+"/.."), e.stat(""); a.Ino != b.Ino {
		e.t.Errorf("dir/.. has inode %d, the mount root %d", a.Ino, b.Ino)
	}
	if a, b := e.stat(SeedDir+"/."), e.stat(SeedDir); a.Ino != b.Ino {
		e.t.Errorf("dir/. has inode %d, dir %d", a.Ino, b.Ino)
	}
	// ".." out of the mount root leads to the directory above the mount.
	if _, err := p.Stat(e.mnt + "/../" + e.mnt[1:] + "/" + SeedFile); err != nil {
		e.t.Errorf("stat through the mount root's \"..\": %v", errName(err))
	}
	// Names of one or two dots plus more are ordinary names; trailing dots
	// and spaces only where any byte may end a name (FAT drops them).
	if !e.ro {
		names := []string{"..a", ".a"}
		if e.caps.PosixNames {
			names = append(names, "...", ".. ")
		}
		for _, n := range names {
			e.writeFile(n, []byte(n), 0o644)
			e.checkContent(n, []byte(n))
		}
	}
	// A path through a file's ".." is not resolved lexically.
	_, err = p.Stat(e.path(SeedFile + "/../" + SeedFile))
	e.wantSoft(err, "stat of \"file/../file\"", syscall.ENOTDIR)
}

func testRelativePaths(e *env) {
	e.mkdir("a", 0o755)
	e.mkdir("a/b", 0o755)
	e.writeFile("a/b/f", []byte("rel"), 0o644)
	p := e.user(0, 0)
	e.ok(p.Chdir(e.path("a")), "chdir")
	fd, err := p.Open("b/f", syscall.O_RDONLY, 0)
	e.ok(err, "open relative")
	e.ok(p.Close(fd), "close")
	e.ok(p.Mkdir("c", 0o755), "mkdir relative")
	e.ok(p.Rename("b/f", "c/g"), "rename relative")
	e.checkContent("a/c/g", []byte("rel"))
	e.ok(p.Chdir("c"), "chdir relative")
	e.ok(p.Chdir(".."), "chdir ..")
	e.ok(p.Chdir("b/../c/."), "chdir b/../c/.")
	_, err = p.Stat("g")
	e.ok(err, "stat after chdirs")
	e.want(p.Chdir("g"), "chdir to a file", syscall.ENOTDIR)
	e.want(p.Chdir("missing"), "chdir to a missing directory", syscall.ENOENT)
	// The working directory survives its removal: lookups fail, "." too.
	e.ok(p.Chdir(e.path("a/b")), "chdir a/b")
	e.ok(e.p.Rmdir(e.path("a/b")), "rmdir of the working directory")
	_, err = p.Open("x", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	e.want(err, "create in a removed working directory", syscall.ENOENT)
	e.ok(p.Chdir("/"), "chdir /")
}
