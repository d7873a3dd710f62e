package conformance

import (
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

func renameCases() []testCase {
	return []testCase{
		{name: "RenameFile", fn: testRenameFile},
		{name: "RenameOverFile", fn: testRenameOverFile},
		{name: "RenameDirOverEmptyDir", fn: testRenameDirOverEmptyDir},
		{name: "RenameDirOverNonEmptyDir", fn: testRenameDirOverNonEmptyDir},
		{name: "RenameFileOverDir", fn: testRenameFileOverDir},
		{name: "RenameDirOverFile", fn: testRenameDirOverFile},
		{name: "RenameIntoOwnSubtree", fn: testRenameIntoSubtree},
		{name: "RenameToItself", fn: testRenameToItself},
		{name: "RenameHardLinksOfOneFile", need: needs("hardlinks"), fn: testRenameHardLinks},
		{name: "RenameAcrossDirs", fn: testRenameAcrossDirs},
		{name: "RenameErrors", fn: testRenameErrors},
		{name: "RenameSymlink", need: needs("symlinks"), fn: testRenameSymlink},
	}
}

func (e *env) rename(from, to string) {
	e.t.Helper()
	e.ok(e.p.Rename(e.path(from), e.path(to)), "rename %s to %s", from, to)
}

func (e *env) renameErr(from, to string) error {
	return e.p.Rename(e.path(from), e.path(to))
}

func testRenameFile(e *env) {
	data := pattern(5000, 10)
	e.writeFile("a", data, 0o644)
	ino := e.stat("a").Ino
	e.rename("a", "b")
	if e.exists("a") {
		e.fatalf("old name still exists after rename")
	}
	a := e.stat("b")
	if e.caps.StableInodes && a.Ino != ino {
		e.t.Errorf("rename changed the inode number from %d to %d", ino, a.Ino)
	}
	if a.Nlink != 1 {
		e.t.Errorf("nlink %d after rename, want 1", a.Nlink)
	}
	e.checkContent("b", data)
	if got := userNames(e.readdir("", 50)); !equalStrings(got, []string{"b"}) {
		e.fatalf("directory after rename: %q, want [b]", got)
	}
	// A long new name, and back.
	long := make([]byte, e.nameMax())
	for i := range long {
		long[i] = 'n'
	}
	e.rename("b", string(long))
	e.checkContent(string(long), data)
	e.rename(string(long), "c")
	e.checkContent("c", data)
}

func testRenameOverFile(e *env) {
	e.writeFile("src", []byte("source"), 0o644)
	e.writeFile("dst", pattern(3*e.blockSize(), 11), 0o644)
	srcIno := e.stat("src").Ino
	if e.caps.HardLinks {
		// A second name of the target shows that its link count drops and
		// its data survives.
		e.ok(e.p.Link(e.path("dst"), e.path("dst2")), "link dst dst2")
	}
	before := e.statvfs()
	e.rename("src", "dst")
	if e.exists("src") {
		e.fatalf("source name still exists")
	}
	e.checkContent("dst", []byte("source"))
	if e.caps.StableInodes && e.stat("dst").Ino != srcIno {
		e.t.Errorf("target has inode %d, want the source's %d", e.stat("dst").Ino, srcIno)
	}
	if e.caps.HardLinks {
		a := e.stat("dst2")
		if a.Nlink != 1 {
			e.t.Errorf("the replaced file's other name has nlink %d, want 1", a.Nlink)
		}
		e.checkContent("dst2", pattern(3*e.blockSize(), 11))
		e.ok(e.p.Unlink(e.path("dst2")), "unlink dst2")
		after := e.statvfs()
		if after.Bfree <= before.Bfree && before.Blocks > 0 {
			e.t.Errorf("free blocks %d after the replaced file lost its last name, %d before: its space was not freed", after.Bfree, before.Bfree)
		}
	} else {
		after := e.statvfs()
		if after.Bfree <= before.Bfree {
			e.t.Errorf("free blocks %d after rename over a file, %d before: the replaced file's space was not freed", after.Bfree, before.Bfree)
		}
	}
	if got := userNames(e.readdir("", 50)); !equalStrings(got, []string{"dst"}) {
		e.fatalf("directory after rename: %q, want [dst]", got)
	}
}

func testRenameDirOverEmptyDir(e *env) {
	e.mkdir("a", 0o755)
	e.writeFile("a/f", []byte("in a"), 0o644)
	e.mkdir("a/sub", 0o755)
	e.mkdir("b", 0o755)
	rootLinks := e.stat("").Nlink
	e.rename("a", "b")
	if e.exists("a") {
		e.fatalf("source directory still exists")
	}
	e.checkContent("b/f", []byte("in a"))
	if !isDir(e.stat("b/sub")) {
		e.fatalf("b/sub is not a directory")
	}
	if e.caps.DirLinkCount {
		if got := e.stat("").Nlink; got != rootLinks-1 {
			e.t.Errorf("parent nlink %d after a directory replaced another, want %d", got, rootLinks-1)
		}
		if got := e.stat("b").Nlink; got != 3 {
			e.t.Errorf("moved directory nlink %d, want 3 (., .. of sub, entry)", got)
		}
	}
	if got := userNames(e.readdir("", 50)); !equalStrings(got, []string{"b"}) {
		e.fatalf("directory after rename: %q, want [b]", got)
	}
	if e.stat("b/..").Ino != e.stat("").Ino {
		e.fatalf("b/.. is not the parent")
	}
}

func testRenameDirOverNonEmptyDir(e *env) {
	e.mkdir("a", 0o755)
	e.mkdir("b", 0o755)
	e.writeFile("b/keep", []byte("keep"), 0o644)
	e.want(e.renameErr("a", "b"), "rename of a directory over a non-empty directory", syscall.ENOTEMPTY, syscall.EEXIST)
	e.checkContent("b/keep", []byte("keep"))
	if !isDir(e.stat("a")) {
		e.fatalf("source vanished after a failed rename")
	}
	// A target holding only a subdirectory is not empty either.
	e.ok(e.p.Unlink(e.path("b/keep")), "unlink")
	e.mkdir("b/sub", 0o755)
	e.want(e.renameErr("a", "b"), "rename of a directory over a directory holding a subdirectory", syscall.ENOTEMPTY, syscall.EEXIST)
	// Once emptied, the rename works.
	e.ok(e.p.Rmdir(e.path("b/sub")), "rmdir b/sub")
	e.rename("a", "b")
}

func testRenameFileOverDir(e *env) {
	e.writeFile("f", []byte("f"), 0o644)
	e.mkdir("d", 0o755)
	e.want(e.renameErr("f", "d"), "rename of a file over an empty directory", syscall.EISDIR)
	if !isDir(e.stat("d")) {
		e.fatalf("target directory changed after a failed rename")
	}
	e.checkContent("f", []byte("f"))
}

func testRenameDirOverFile(e *env) {
	e.writeFile("f", []byte("f"), 0o644)
	e.mkdir("d", 0o755)
	e.want(e.renameErr("d", "f"), "rename of a directory over a file", syscall.ENOTDIR)
	e.checkContent("f", []byte("f"))
	if !isDir(e.stat("d")) {
		e.fatalf("source directory changed after a failed rename")
	}
	// A trailing slash on a file target also refuses.
	e.want(e.renameErr("d", "f/"), "rename of a directory to \"file/\"", syscall.ENOTDIR, syscall.EEXIST)
	e.checkContent("f", []byte("f"))
}

func testRenameIntoSubtree(e *env) {
	e.mkdir("a", 0o755)
	e.mkdir("a/b", 0o755)
	e.mkdir("a/b/c", 0o755)
	e.want(e.renameErr("a", "a/x"), "rename of a directory into itself", syscall.EINVAL)
	e.want(e.renameErr("a", "a/b/c/x"), "rename of a directory into its own subtree", syscall.EINVAL)
	e.want(e.renameErr("a", "a/b/c"), "rename of a directory over its own empty descendant", syscall.EINVAL, syscall.ENOTEMPTY)
	e.want(e.renameErr("a/b", "a/b/c/x"), "rename of a subdirectory into its own subtree", syscall.EINVAL)
	// Nothing moved.
	for _, d := range []string{"a", "a/b", "a/b/c"} {
		if !isDir(e.stat(d)) {
			e.fatalf("%s is gone after failed renames", d)
		}
	}
	if e.stat("a/b/c/..").Ino != e.stat("a/b").Ino {
		e.fatalf("a/b/c/.. changed after failed renames")
	}
	// Moving a descendant up is fine.
	e.rename("a/b/c", "c")
	if e.stat("c/..").Ino != e.stat("").Ino {
		e.fatalf("c/.. is not the mount root after moving it up")
	}
}

func testRenameToItself(e *env) {
	e.writeFile("f", []byte("same"), 0o644)
	e.mkdir("d", 0o755)
	fa := e.stat("f")
	e.rename("f", "f")
	e.rename("d", "d")
	e.checkContent("f", []byte("same"))
	if got := e.stat("f"); got.Ino != fa.Ino || got.Nlink != fa.Nlink {
		e.fatalf("rename to itself changed the file: ino %d nlink %d, was %d %d", got.Ino, got.Nlink, fa.Ino, fa.Nlink)
	}
	if !isDir(e.stat("d")) {
		e.fatalf("directory gone after rename to itself")
	}
	e.rename("./f", "f")
	e.checkContent("f", []byte("same"))
}

func testRenameHardLinks(e *env) {
	// rename(a, b) where both name the same file does nothing (POSIX).
	e.writeFile("a", []byte("shared"), 0o644)
	e.ok(e.p.Link(e.path("a"), e.path("b")), "link")
	e.rename("a", "b")
	if !e.exists("a") || !e.exists("b") {
		e.fatalf("rename between two links of one file removed a name: a %v b %v", e.exists("a"), e.exists("b"))
	}
	if n := e.stat("a").Nlink; n != 2 {
		e.fatalf("nlink %d after rename between links, want 2", n)
	}
	e.checkContent("b", []byte("shared"))
}

func testRenameAcrossDirs(e *env) {
	e.mkdir("d1", 0o755)
	e.mkdir("d2", 0o755)
	e.mkdir("d1/sub", 0o755)
	e.writeFile("d1/sub/f", []byte("deep"), 0o644)
	e.writeFile("d1/file", []byte("file"), 0o644)
	d1, d2 := e.stat("d1"), e.stat("d2")
	subIno := e.stat("d1/sub").Ino
	if e.stat("d1/sub/..").Ino != d1.Ino {
		e.fatalf("d1/sub/.. is not d1 before the rename")
	}
	// A file across directories.
	e.rename("d1/file", "d2/moved")
	e.checkContent("d2/moved", []byte("file"))
	if e.exists("d1/file") {
		e.fatalf("d1/file still exists")
	}
	// A directory across directories: ".." must follow.
	e.rename("d1/sub", "d2/sub")
	if e.exists("d1/sub") {
		e.fatalf("d1/sub still exists")
	}
	if got := e.stat("d2/sub/..").Ino; got != d2.Ino {
		e.fatalf("d2/sub/.. has inode %d, want d2's %d: \"..\" was not updated", got, d2.Ino)
	}
	if e.caps.StableInodes {
		if got := e.stat("d2/sub").Ino; got != subIno {
			e.t.Errorf("moved directory has inode %d, was %d", got, subIno)
		}
		for _, d := range e.readdir("d2/sub", 10) {
			if d.Name == ".." && d.Ino != d2.Ino {
				e.t.Errorf("readdir of d2/sub: \"..\" has inode %d, want %d", d.Ino, d2.Ino)
			}
		}
	}
	e.checkContent("d2/sub/f", []byte("deep"))
	e.checkContent("d2/sub/../moved", []byte("file"))
	if e.caps.DirLinkCount {
		if got := e.stat("d1").Nlink; got != d1.Nlink-1 {
			e.t.Errorf("old parent nlink %d after moving a subdirectory out, want %d", got, d1.Nlink-1)
		}
		if got := e.stat("d2").Nlink; got != d2.Nlink+1 {
			e.t.Errorf("new parent nlink %d after moving a subdirectory in, want %d", got, d2.Nlink+1)
		}
		if got := e.stat("d2/sub").Nlink; got != 2 {
			e.t.Errorf("moved directory nlink %d, want 2", got)
		}
	}
	// And back up to the root, over an empty directory there.
	e.mkdir("top", 0o755)
	rootLinks := e.stat("").Nlink
	e.rename("d2/sub", "top")
	if got := e.stat("top/..").Ino; got != e.stat("").Ino {
		e.fatalf("top/.. has inode %d, want the mount root's", got)
	}
	if e.caps.DirLinkCount {
		if got := e.stat("").Nlink; got != rootLinks {
			e.t.Errorf("root nlink %d after replacing top by a directory from below, want %d", got, rootLinks)
		}
		if got := e.stat("d2").Nlink; got != d2.Nlink {
			e.t.Errorf("d2 nlink %d after moving its subdirectory away, want %d", got, d2.Nlink)
		}
	}
	e.checkContent("top/f", []byte("deep"))
}

func testRenameErrors(e *env) {
	e.writeFile("f", []byte("f"), 0o644)
	e.mkdir("d", 0o755)
	e.want(e.renameErr("missing", "x"), "rename of a missing file", syscall.ENOENT)
	e.want(e.renameErr("f", "nodir/x"), "rename into a missing directory", syscall.ENOENT)
	e.want(e.renameErr("f", "f/x"), "rename below a file", syscall.ENOTDIR)
	e.want(e.renameErr("d/.", "e"), "rename of \".\"", syscall.EINVAL, syscall.EBUSY)
	e.want(e.renameErr("d/..", "e"), "rename of \"..\"", syscall.EINVAL, syscall.EBUSY, syscall.ENOTEMPTY)
	e.want(e.renameErr("f", "d/."), "rename onto \".\"", syscall.EINVAL, syscall.EBUSY, syscall.EISDIR, syscall.EEXIST)
	e.want(e.p.Rename("", e.path("g")), "rename of \"\"", syscall.ENOENT)
	e.want(e.p.Rename(e.path("f"), ""), "rename to \"\"", syscall.ENOENT)
	e.checkContent("f", []byte("f"))
	// A trailing slash on a directory is fine.
	e.rename("d/", "e/")
	if !isDir(e.stat("e")) {
		e.fatalf("e is not a directory")
	}
	// A trailing slash on a file is not.
	e.wantSoft(e.renameErr("f/", "g"), "rename of \"file/\"", syscall.ENOTDIR)
}

func testRenameSymlink(e *env) {
	e.mkdir("d", 0o755)
	e.writeFile("d/target", []byte("t"), 0o644)
	e.ok(e.p.Symlink("target", e.path("d/l")), "symlink")
	e.ok(e.p.Symlink("d", e.path("dl")), "symlink to dir")
	// rename does not follow a symbolic link in the last component.
	e.rename("d/l", "d/l2")
	if a := e.lstat("d/l2"); a.Mode&vnodeops.S_IFMT != vnodeops.S_IFLNK {
		e.fatalf("renamed link is no longer a link: mode %#o", a.Mode)
	}
	e.checkContent("d/target", []byte("t"))
	// A link to a directory renamed over a file replaces the file (it is
	// not a directory itself).
	e.writeFile("plain", nil, 0o644)
	e.rename("dl", "plain")
	if a := e.lstat("plain"); a.Mode&vnodeops.S_IFMT != vnodeops.S_IFLNK {
		e.fatalf("plain is not the moved link: mode %#o", a.Mode)
	}
	e.checkContent("plain/target", []byte("t"))
}
