package conformance

import (
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

func permCases() []testCase {
	return []testCase{
		{name: "PermOpenForWrite", need: needs("permissions", "ownership"), fn: testPermOpenWrite},
		{name: "PermCreateInDir", need: needs("permissions", "ownership"), fn: testPermCreate},
		{name: "PermSearch", need: needs("permissions", "ownership"), fn: testPermSearch},
		{name: "PermGroupClass", need: needs("permissions", "ownership"), fn: testPermGroup},
		{name: "PermChmodOthersFile", need: needs("permissions", "ownership"), fn: testPermChmod},
		{name: "PermChownNonRoot", need: needs("permissions", "ownership"), fn: testPermChown},
		{name: "StickyDir", need: needs("permissions", "ownership", "sticky"), fn: testSticky},
	}
}

// openRoot makes the mount root 0755 and root-owned, so that a non-root
// process may walk it but not write it.
func (e *env) openRoot() {
	e.t.Helper()
	e.ok(e.p.Chown(e.mnt, 0, 0), "chown mount root")
	e.ok(e.p.Chmod(e.mnt, 0o755), "chmod mount root")
}

func testPermOpenWrite(e *env) {
	e.openRoot()
	e.writeFile("f", []byte("root's"), 0o644)
	u := e.user(1000, 1000)
	_, err := u.Open(e.path("f"), syscall.O_WRONLY, 0)
	e.want(err, "open of a root 0644 file for writing by uid 1000", syscall.EACCES)
	_, err = u.Open(e.path("f"), syscall.O_RDWR, 0)
	e.want(err, "open O_RDWR of a root 0644 file by uid 1000", syscall.EACCES)
	_, err = u.Open(e.path("f"), syscall.O_RDONLY|syscall.O_TRUNC, 0)
	e.want(err, "open O_TRUNC of a root 0644 file by uid 1000", syscall.EACCES)
	e.want(u.Truncate(e.path("f"), 0), "truncate of a root 0644 file by uid 1000", syscall.EACCES)
	fd, err := u.Open(e.path("f"), syscall.O_RDONLY, 0)
	e.ok(err, "open for reading by uid 1000")
	e.ok(u.Close(fd), "close")
	e.checkContent("f", []byte("root's"))
	// 0600: no reading either; root is not bound by permissions.
	e.ok(e.p.Chmod(e.path("f"), 0o600), "chmod 0600")
	_, err = u.Open(e.path("f"), syscall.O_RDONLY, 0)
	e.want(err, "open of a root 0600 file for reading by uid 1000", syscall.EACCES)
	e.ok(e.p.Chmod(e.path("f"), 0), "chmod 0")
	e.checkContent("f", []byte("root's"))
	fd, err = e.p.Open(e.path("f"), syscall.O_WRONLY, 0)
	e.ok(err, "root opens a mode 0 file for writing")
	e.ok(e.p.Close(fd), "close")
	// The owner is bound by the owner bits even when others may.
	e.ok(e.p.Chown(e.path("f"), 1000, 1000), "chown")
	e.ok(e.p.Chmod(e.path("f"), 0o466), "chmod 0466")
	_, err = u.Open(e.path("f"), syscall.O_WRONLY, 0)
	e.want(err, "open for writing by the owner of a 0466 file", syscall.EACCES)
}

func testPermCreate(e *env) {
	e.openRoot()
	e.mkdir("d", 0o755)
	e.writeFile("d/f", nil, 0o666)
	e.mkdir("d/sub", 0o777)
	u := e.user(1000, 1000)
	_, err := u.Open(e.path("d/new"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	e.want(err, "create in a root 0755 directory by uid 1000", syscall.EACCES)
	e.want(u.Mkdir(e.path("d/newdir"), 0o755), "mkdir in a root 0755 directory", syscall.EACCES)
	e.want(u.Unlink(e.path("d/f")), "unlink in a root 0755 directory", syscall.EACCES)
	e.want(u.Rename(e.path("d/f"), e.path("d/g")), "rename in a root 0755 directory", syscall.EACCES)
	e.want(u.Rmdir(e.path("d/sub")), "rmdir in a root 0755 directory", syscall.EACCES)
	e.want(u.Symlink("x", e.path("d/l")), "symlink in a root 0755 directory", syscall.EACCES)
	if e.caps.HardLinks {
		e.want(u.Link(e.path("d/f"), e.path("d/h")), "link in a root 0755 directory", syscall.EACCES)
	}
	// Moving out of a writable directory into a read-only one is denied.
	writeFileAs(e, u, "d/sub/mine", []byte("m"), 0o644)
	e.want(u.Rename(e.path("d/sub/mine"), e.path("d/mine")), "rename into a root 0755 directory", syscall.EACCES)
	if e.exists("d/new") || e.exists("d/newdir") || !e.exists("d/f") || !e.exists("d/sub") {
		e.fatalf("denied operations changed the directory")
	}
	// A subdirectory of mode 0777 is writable, even owned by root.
	writeFileAs(e, u, "d/sub/ok", []byte("ok"), 0o644)
	if a := e.stat("d/sub/ok"); a.UID != 1000 || a.GID != 1000 {
		e.t.Errorf("file made by uid 1000 gid 1000 has owner %d:%d", a.UID, a.GID)
	}
	e.ok(u.Unlink(e.path("d/sub/ok")), "unlink own file in a 0777 directory")
	// Moving a directory to a new parent needs write access to it (its
	// ".." changes).
	e.mkdir("d/sub/rootdir", 0o755)
	e.ok(u.Mkdir(e.path("d/sub/other"), 0o777), "mkdir other")
	e.want(u.Rename(e.path("d/sub/rootdir"), e.path("d/sub/other/rootdir")), "moving a root 0755 directory to a new parent by uid 1000", syscall.EACCES, syscall.EPERM)
}

func testPermSearch(e *env) {
	e.openRoot()
	e.mkdir("private", 0o700)
	e.mkdir("private/sub", 0o777)
	e.writeFile("private/sub/f", []byte("secret"), 0o666)
	u := e.user(1000, 1000)
	_, err := u.Stat(e.path("private/sub/f"))
	e.want(err, "stat through a 0700 root directory", syscall.EACCES)
	_, err = u.Open(e.path("private/sub/f"), syscall.O_RDONLY, 0)
	e.want(err, "open through a 0700 root directory", syscall.EACCES)
	_, err = u.Open(e.path("private/sub/new"), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	e.want(err, "create through a 0700 root directory", syscall.EACCES)
	_, err = u.Open(e.path("private"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.want(err, "open of a 0700 root directory for listing", syscall.EACCES)
	e.want(u.Chdir(e.path("private")), "chdir into a 0700 root directory", syscall.EACCES)
	// The directory itself can be stat'ed (needs search on its parent only).
	_, err = u.Stat(e.path("private"))
	e.ok(err, "stat of the 0700 directory itself")
	// Read without search: names can be listed but not reached.
	e.ok(e.p.Chmod(e.path("private"), 0o744), "chmod 0744")
	got := names(readdirAs(e, u, "private", 10))
	if !equalStrings(got, []string{"sub"}) {
		e.fatalf("listing of a 0744 directory: %q", got)
	}
	_, err = u.Stat(e.path("private/sub"))
	e.want(err, "stat through a 0744 directory (no search)", syscall.EACCES)
	// Search without read: names can be reached but not listed.
	e.ok(e.p.Chmod(e.path("private"), 0o711), "chmod 0711")
	_, err = u.Open(e.path("private"), syscall.O_RDONLY, 0)
	e.want(err, "open of a 0711 directory for listing", syscall.EACCES)
	if got := readFileAs(e, u, "private/sub/f"); string(got) != "secret" {
		e.fatalf("read through a 0711 directory: %q", got)
	}
	// Symbolic links need search on the directories of their target too.
	if e.caps.Symlinks {
		e.ok(e.p.Chmod(e.path("private"), 0o700), "chmod 0700")
		e.ok(e.p.Symlink("private/sub/f", e.path("l")), "symlink")
		_, err = u.Stat(e.path("l"))
		e.want(err, "stat through a link into a 0700 directory", syscall.EACCES)
		// Root is not bound.
		e.checkContent("l", []byte("secret"))
	}
}

func testPermGroup(e *env) {
	e.openRoot()
	e.writeFile("g", []byte("group"), 0o640)
	e.ok(e.p.Chown(e.path("g"), 0, 500), "chown 0:500")
	member := e.k.NewProc(credWith(1000, 1000, 500))
	member.Umask(0)
	outsider := e.user(1001, 1001)
	fd, err := member.Open(e.path("g"), syscall.O_RDONLY, 0)
	e.ok(err, "open by a supplementary group member")
	e.ok(member.Close(fd), "close")
	_, err = member.Open(e.path("g"), syscall.O_WRONLY, 0)
	e.want(err, "open for writing of a 0640 file by a group member", syscall.EACCES)
	_, err = outsider.Open(e.path("g"), syscall.O_RDONLY, 0)
	e.want(err, "open of a 0640 file by a non-member", syscall.EACCES)
	// The group class applies even when "other" has more.
	e.ok(e.p.Chmod(e.path("g"), 0o606), "chmod 0606")
	_, err = member.Open(e.path("g"), syscall.O_RDONLY, 0)
	e.want(err, "open of a 0606 file by a group member", syscall.EACCES)
	fd, err = outsider.Open(e.path("g"), syscall.O_RDWR, 0)
	e.ok(err, "open of a 0606 file by another user")
	e.ok(outsider.Close(fd), "close")
}

func testPermChmod(e *env) {
	e.openRoot()
	e.mkdir("d", 0o777)
	e.writeFile("d/rootfile", nil, 0o666)
	u := e.user(1000, 1000)
	e.want(u.Chmod(e.path("d/rootfile"), 0o777), "chmod of root's file by uid 1000", syscall.EPERM)
	if m := e.stat("d/rootfile").Mode & 0o7777; m != 0o666 {
		e.fatalf("denied chmod changed the mode to %#o", m)
	}
	// The owner may chmod, also a file it cannot read or write.
	writeFileAs(e, u, "d/mine", nil, 0o644)
	e.ok(u.Chmod(e.path("d/mine"), 0), "chmod 0 of own file")
	e.ok(u.Chmod(e.path("d/mine"), 0o640), "chmod of own mode-0 file")
	if m := e.stat("d/mine").Mode & 0o7777; m != 0o640 {
		e.fatalf("owner's chmod: mode %#o, want 0640", m)
	}
	// A non-member cannot set S_ISGID for a group it is not in: the bit is
	// dropped (or the call refused).
	e.ok(e.p.Chown(e.path("d/mine"), 1000, 77), "chown to group 77")
	if err := u.Chmod(e.path("d/mine"), 0o2755); err == nil {
		if m := e.stat("d/mine").Mode & 0o7777; m&0o2000 != 0 {
			e.t.Errorf("chmod g+s by a non-member of the file's group kept S_ISGID: %#o", m)
		}
	} else {
		e.wantSoft(err, "chmod g+s by a non-member", syscall.EPERM)
	}
	e.want(u.Utimes(e.path("d/rootfile"), ns(1), ns(1)), "explicit utimes of root's file by uid 1000", syscall.EPERM)
}

func testPermChown(e *env) {
	e.openRoot()
	e.mkdir("d", 0o777)
	u := e.user(1000, 1000)
	writeFileAs(e, u, "d/mine", nil, 0o644)
	e.want(u.Chown(e.path("d/mine"), 1001, -1), "chown of own file to another uid by non-root", syscall.EPERM)
	e.want(u.Chown(e.path("d/mine"), 0, 0), "chown of own file to root by non-root", syscall.EPERM)
	e.want(u.Chown(e.path("d/mine"), -1, 5), "chgrp to a group the owner is not in", syscall.EPERM)
	if a := e.stat("d/mine"); a.UID != 1000 || a.GID != 1000 {
		e.fatalf("denied chowns changed the owner to %d:%d", a.UID, a.GID)
	}
	// Allowed: chown to itself, chgrp to a group it belongs to.
	e.ok(u.Chown(e.path("d/mine"), 1000, 1000), "chown to the same owner")
	member := e.k.NewProc(credWith(1000, 1000, 600))
	e.ok(member.Chown(e.path("d/mine"), -1, 600), "chgrp to a supplementary group")
	if a := e.stat("d/mine"); a.GID != 600 {
		e.fatalf("chgrp to 600: gid %d", a.GID)
	}
	e.writeFile("d/rootfile", nil, 0o666)
	e.want(u.Chown(e.path("d/rootfile"), 1000, 1000), "chown of root's file by non-root", syscall.EPERM)
	e.want(u.Chown(e.path("d/rootfile"), -1, 1000), "chgrp of root's file by non-root", syscall.EPERM)
}

// testSticky: in a 01777 directory, user B cannot remove or rename user
// A's file; A, the directory's owner and root can.
func testSticky(e *env) {
	e.openRoot()
	const owner, a, b = 1002, 1000, 1001
	e.mkdir("tmp", 0o777)
	e.ok(e.p.Chown(e.path("tmp"), owner, owner), "chown tmp")
	e.ok(e.p.Chmod(e.path("tmp"), 0o1777), "chmod 01777")
	pa, pb, po := e.user(a, a), e.user(b, b), e.user(owner, owner)
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5"} {
		writeFileAs(e, pa, "tmp/"+n, []byte(n), 0o666)
	}
	writeFileAs(e, pb, "tmp/b1", []byte("b1"), 0o666)
	e.ok(pa.Mkdir(e.path("tmp/adir"), 0o777), "mkdir adir")

	e.want(pb.Unlink(e.path("tmp/a1")), "unlink of A's file by B in a sticky directory", syscall.EPERM, syscall.EACCES)
	e.want(pb.Rename(e.path("tmp/a1"), e.path("tmp/stolen")), "rename of A's file by B", syscall.EPERM, syscall.EACCES)
	e.want(pb.Rename(e.path("tmp/b1"), e.path("tmp/a1")), "rename of B's file over A's file", syscall.EPERM, syscall.EACCES)
	e.want(pb.Rmdir(e.path("tmp/adir")), "rmdir of A's directory by B", syscall.EPERM, syscall.EACCES)
	e.checkContent("tmp/a1", []byte("a1"))
	e.checkContent("tmp/b1", []byte("b1"))
	// B may still write A's file, which is 0666: stickiness is about names.
	fd, err := pb.Open(e.path("tmp/a5"), syscall.O_WRONLY|syscall.O_APPEND, 0)
	e.ok(err, "B opens A's 0666 file for writing")
	e.ok(pb.Close(fd), "close")

	e.ok(pa.Unlink(e.path("tmp/a1")), "A unlinks its own file")
	e.ok(pa.Rename(e.path("tmp/a2"), e.path("tmp/a2moved")), "A renames its own file")
	e.ok(po.Unlink(e.path("tmp/a3")), "the directory owner unlinks A's file")
	e.ok(po.Rename(e.path("tmp/a2moved"), e.path("tmp/byowner")), "the directory owner renames A's file")
	e.ok(e.p.Unlink(e.path("tmp/a4")), "root unlinks A's file")
	e.ok(pb.Unlink(e.path("tmp/b1")), "B unlinks its own file")
	e.ok(e.p.Rmdir(e.path("tmp/adir")), "root removes A's directory")
	if got := names(e.readdir("tmp", 20)); !equalStrings(got, []string{"a5", "byowner"}) {
		e.fatalf("sticky directory holds %q, want [a5 byowner]", got)
	}
	// Without the sticky bit B may remove A's file.
	e.ok(e.p.Chmod(e.path("tmp"), 0o777), "chmod 0777")
	e.ok(pb.Unlink(e.path("tmp/a5")), "B unlinks A's file once the sticky bit is off")
}

// credWith returns a credential with supplementary groups.
func credWith(uid, gid uint32, groups ...uint32) vnodeops.Cred {
	return vnodeops.Cred{UID: uid, GID: gid, Groups: groups}
}
