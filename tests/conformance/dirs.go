package conformance

import (
	"fmt"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

func dirCases() []testCase {
	return []testCase{
		{name: "MkdirRmdir", fn: testMkdirRmdir},
		{name: "MkdirNlink", need: needs("dirlinkcount"), fn: testMkdirNlink},
		{name: "UnlinkKinds", fn: testUnlinkKinds},
		{name: "ReaddirEmpty", fn: testReaddirEmpty},
		{name: "ReaddirMany", fn: testReaddirMany},
		{name: "ReaddirResumeWhileChanging", fn: testReaddirResume},
		{name: "ReaddirSeek", fn: testReaddirSeek},
		{name: "DirMtime", fn: testDirMtime},
	}
}

func testMkdirRmdir(e *env) {
	e.mkdir("d", 0o755)
	a := e.stat("d")
	if !a.IsDir() {
		e.fatalf("mkdir made mode %#o", a.Mode)
	}
	if e.caps.Permissions && a.Mode&vnodeops.PermMask != 0o755 {
		e.t.Errorf("mkdir 0755 made permissions %#o", a.Mode&vnodeops.PermMask)
	}
	e.want(e.p.Mkdir(e.path("d"), 0o755), "mkdir of an existing directory", syscall.EEXIST)
	e.writeFile("f", nil, 0o644)
	e.want(e.p.Mkdir(e.path("f"), 0o755), "mkdir over a file", syscall.EEXIST)
	e.want(e.p.Mkdir(e.path("nodir/d"), 0o755), "mkdir in a missing directory", syscall.ENOENT)
	e.want(e.p.Mkdir(e.path("f/d"), 0o755), "mkdir below a file", syscall.ENOTDIR)
	e.want(e.p.Mkdir(e.path("d/."), 0o755), "mkdir of \".\"", syscall.EEXIST)
	e.want(e.p.Mkdir(e.path("d/.."), 0o755), "mkdir of \"..\"", syscall.EEXIST)
	// mkdir with a trailing slash is fine.
	e.ok(e.p.Mkdir(e.path("d2/"), 0o755), "mkdir d2/")
	e.mkdir("d/sub", 0o700)
	e.writeFile("d/sub/f", []byte("x"), 0o644)
	e.want(e.p.Rmdir(e.path("d")), "rmdir of a non-empty directory", syscall.ENOTEMPTY, syscall.EEXIST)
	e.want(e.p.Rmdir(e.path("d/sub")), "rmdir of a directory holding a file", syscall.ENOTEMPTY, syscall.EEXIST)
	e.want(e.p.Rmdir(e.path("d/sub/.")), "rmdir of \".\"", syscall.EINVAL)
	e.want(e.p.Rmdir(e.path("d/sub/..")), "rmdir of \"..\"", syscall.ENOTEMPTY, syscall.EINVAL, syscall.EBUSY)
	e.want(e.p.Rmdir(e.path("f")), "rmdir of a file", syscall.ENOTDIR)
	e.want(e.p.Rmdir(e.path("missing")), "rmdir of a missing name", syscall.ENOENT)
	e.want(e.p.Rmdir(e.mnt), "rmdir of a mount point", syscall.EBUSY, syscall.EINVAL)
	e.ok(e.p.Unlink(e.path("d/sub/f")), "unlink d/sub/f")
	e.ok(e.p.Rmdir(e.path("d/sub")), "rmdir d/sub")
	e.ok(e.p.Rmdir(e.path("d/")), "rmdir d/ (trailing slash)")
	e.ok(e.p.Rmdir(e.path("d2")), "rmdir d2")
	if e.exists("d") || e.exists("d2") {
		e.fatalf("removed directories still exist")
	}
	if got := userNames(e.readdir("", 50)); !equalStrings(got, []string{"f"}) {
		e.fatalf("mount root after rmdir: %q, want [f]", got)
	}
	// A directory can be made again under the same name.
	e.mkdir("d", 0o755)
	if len(userNames(e.readdir("d", 10))) != 0 {
		e.fatalf("a directory made again under an old name is not empty")
	}
}

func testMkdirNlink(e *env) {
	root := e.stat("").Nlink
	e.mkdir("d", 0o755)
	if n := e.stat("d").Nlink; n != 2 {
		e.fatalf("new directory nlink %d, want 2", n)
	}
	if n := e.stat("").Nlink; n != root+1 {
		e.fatalf("parent nlink %d after mkdir, want %d", n, root+1)
	}
	for i := range 5 {
		e.mkdir(fmt.Sprintf("d/s%d", i), 0o755)
	}
	e.writeFile("d/file", nil, 0o644)
	if n := e.stat("d").Nlink; n != 7 {
		e.fatalf("nlink %d of a directory with 5 subdirectories and a file, want 7", n)
	}
	for i := range 5 {
		e.ok(e.p.Rmdir(e.path(fmt.Sprintf("d/s%d", i))), "rmdir")
	}
	if n := e.stat("d").Nlink; n != 2 {
		e.fatalf("nlink %d after removing every subdirectory, want 2", n)
	}
	e.ok(e.p.Unlink(e.path("d/file")), "unlink")
	e.ok(e.p.Rmdir(e.path("d")), "rmdir d")
	if n := e.stat("").Nlink; n != root {
		e.fatalf("parent nlink %d after rmdir, want %d", n, root)
	}
	// An open directory that is removed reports nlink 0 and no entries.
	e.mkdir("gone", 0o755)
	fd, err := e.p.Open(e.path("gone"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "open gone")
	e.ok(e.p.Rmdir(e.path("gone")), "rmdir of an open directory")
	a, err := e.p.Fstat(fd)
	e.ok(err, "fstat of a removed directory")
	if a.Nlink != 0 {
		e.t.Errorf("removed directory nlink %d, want 0", a.Nlink)
	}
	ents, err := e.p.Getdents(fd, 10)
	e.ok(err, "getdents of a removed directory")
	if len(names(ents)) != 0 {
		e.t.Errorf("removed directory lists %q", names(ents))
	}
	e.ok(e.p.Close(fd), "close")
}

func testUnlinkKinds(e *env) {
	e.mkdir("d", 0o755)
	e.writeFile("f", nil, 0o644)
	e.want(e.p.Unlink(e.path("d")), "unlink of a directory", syscall.EISDIR, syscall.EPERM)
	e.want(e.p.Unlink(e.path("missing")), "unlink of a missing name", syscall.ENOENT)
	e.want(e.p.Unlink(e.path("f/x")), "unlink below a file", syscall.ENOTDIR)
	e.want(e.p.Unlink(e.path("d/.")), "unlink of \".\"", syscall.EISDIR, syscall.EPERM, syscall.EINVAL)
	e.want(e.p.Unlink(e.mnt), "unlink of the mount point", syscall.EISDIR, syscall.EPERM, syscall.EBUSY)
	if !isDir(e.stat("d")) || !e.exists("f") {
		e.fatalf("failed unlinks removed something")
	}
	e.wantSoft(e.p.Unlink(e.path("f/")), "unlink of \"file/\"", syscall.ENOTDIR)
	if !e.exists("f") {
		e.fatalf("unlink of \"file/\" removed the file")
	}
	e.ok(e.p.Unlink(e.path("f")), "unlink f")
	e.want(e.p.Unlink(e.path("f")), "second unlink", syscall.ENOENT)
}

func testReaddirEmpty(e *env) {
	e.mkdir("d", 0o755)
	fd, err := e.p.Open(e.path("d"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "open")
	var all []vnodeops.Dirent
	for {
		ents, err := e.p.Getdents(fd, 1)
		e.ok(err, "getdents")
		if len(ents) == 0 {
			break
		}
		if len(ents) > 1 {
			e.fatalf("getdents with max 1 returned %d entries", len(ents))
		}
		all = append(all, ents...)
		if len(all) > 10 {
			e.fatalf("an empty directory lists more than 10 entries: %v", all)
		}
	}
	// End of directory stays at the end.
	ents, err := e.p.Getdents(fd, 10)
	e.ok(err, "getdents at end")
	if len(ents) != 0 {
		e.fatalf("getdents after the end returned %v", ents)
	}
	e.ok(e.p.Close(fd), "close")
	seen := map[string]vnodeops.Dirent{}
	for _, d := range all {
		seen[d.Name] = d
	}
	if len(all) != 2 || len(seen) != 2 {
		e.fatalf("empty directory lists %v, want . and ..", all)
	}
	dot, okd := seen["."]
	dotdot, okdd := seen[".."]
	if !okd || !okdd {
		e.fatalf("empty directory lists %v, want . and ..", all)
	}
	if e.caps.StableInodes {
		if dot.Ino != e.stat("d").Ino {
			e.t.Errorf("\".\" has inode %d, want %d", dot.Ino, e.stat("d").Ino)
		}
		if dotdot.Ino != e.stat("").Ino {
			e.t.Errorf("\"..\" has inode %d, want %d", dotdot.Ino, e.stat("").Ino)
		}
	}
	for _, d := range all {
		if d.Next == 0 {
			e.t.Errorf("entry %q has cookie 0", d.Name)
		}
	}
	// Getdents on a file fails.
	e.writeFile("f", []byte("x"), 0o644)
	fd, err = e.p.Open(e.path("f"), syscall.O_RDONLY, 0)
	e.ok(err, "open file")
	_, err = e.p.Getdents(fd, 10)
	e.want(err, "getdents on a regular file", syscall.ENOTDIR)
	e.ok(e.p.Close(fd), "close")
}

func testReaddirMany(e *env) {
	const n = 1000
	e.mkdir("d", 0o755)
	want := map[string]bool{}
	for i := range n {
		// Names of varied lengths, so that directory blocks pack unevenly.
		name := fmt.Sprintf("f%04d_%s", i, "abcdefghijklmnopqrstuvwxyz"[:i%27])
		want[name] = true
		if i%10 == 0 {
			e.mkdir("d/"+name, 0o755)
		} else {
			fd, err := e.p.Open(e.path("d/"+name), syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
			e.ok(err, "create %s", name)
			e.ok(e.p.Close(fd), "close")
		}
	}
	for _, batch := range []int{1000, 64, 7, 1} {
		ents := e.readdir("d", batch)
		seen := map[string]int{}
		for _, d := range ents {
			seen[d.Name]++
			if d.Next == 0 {
				e.fatalf("batch %d: entry %q has cookie 0", batch, d.Name)
			}
			if want[d.Name] {
				var num int
				fmt.Sscanf(d.Name, "f%04d", &num)
				wt := uint8(vnodeops.DT_REG)
				if num%10 == 0 {
					wt = vnodeops.DT_DIR
				}
				if d.Type != wt && d.Type != vnodeops.DT_UNKNOWN {
					e.fatalf("batch %d: %q has type %d, want %d", batch, d.Name, d.Type, wt)
				}
			}
		}
		for name, c := range seen {
			if c != 1 {
				e.fatalf("batch %d: %q listed %d times", batch, name, c)
			}
			if !want[name] && name != "." && name != ".." {
				e.fatalf("batch %d: unexpected entry %q", batch, name)
			}
		}
		for name := range want {
			if seen[name] != 1 {
				e.fatalf("batch %d: %q missing from the listing", batch, name)
			}
		}
		if seen["."] != 1 || seen[".."] != 1 {
			e.fatalf("batch %d: \".\" listed %d times, \"..\" %d times", batch, seen["."], seen[".."])
		}
	}
	// Inode numbers in the listing match stat.
	if e.caps.StableInodes {
		for i, d := range e.readdir("d", 100) {
			if i%97 != 0 || d.Name == "." || d.Name == ".." {
				continue
			}
			if a := e.stat("d/" + d.Name); a.Ino != d.Ino {
				e.fatalf("%q: readdir inode %d, stat inode %d", d.Name, d.Ino, a.Ino)
			}
		}
	}
	// Remove every other entry and list again.
	for name := range want {
		var num int
		fmt.Sscanf(name, "f%04d", &num)
		if num%2 == 1 {
			e.ok(e.p.Unlink(e.path("d/"+name)), "unlink %s", name)
			delete(want, name)
		}
	}
	got := names(e.readdir("d", 13))
	if len(got) != len(want) {
		e.fatalf("after removing half: %d entries, want %d", len(got), len(want))
	}
	for _, name := range got {
		if !want[name] {
			e.fatalf("after removing half: %q still listed", name)
		}
	}
}

// testReaddirResume reads a directory in batches of 7 while entries are
// added and removed between batches: every entry that exists throughout
// must be seen exactly once, and no entry twice.
func testReaddirResume(e *env) {
	e.mkdir("d", 0o755)
	const initial = 200
	exists := map[string]bool{}
	everRemoved := map[string]bool{}
	create := func(name string) {
		fd, err := e.p.Open(e.path("d/"+name), syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
		e.ok(err, "create %s", name)
		e.ok(e.p.Close(fd), "close")
		exists[name] = true
	}
	for i := range initial {
		create(fmt.Sprintf("init%03d", i))
	}
	stable := map[string]bool{}
	for n := range exists {
		stable[n] = true
	}
	fd, err := e.p.Open(e.path("d"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "open")
	defer e.p.Close(fd)
	seen := map[string]int{}
	added := 0
	for round := 0; ; round++ {
		ents, err := e.p.Getdents(fd, 7)
		e.ok(err, "getdents round %d", round)
		if len(ents) == 0 {
			break
		}
		if len(ents) > 7 {
			e.fatalf("getdents with max 7 returned %d", len(ents))
		}
		for _, d := range ents {
			seen[d.Name]++
			if seen[d.Name] > 1 {
				e.fatalf("round %d: %q seen twice", round, d.Name)
			}
			if d.Name != "." && d.Name != ".." && !exists[d.Name] && !everRemoved[d.Name] {
				e.fatalf("round %d: %q listed but never existed", round, d.Name)
			}
		}
		if round > 10*initial {
			e.fatalf("readdir does not end")
		}
		// Between batches of the first 40 rounds (later ones let the
		// reader catch up with the end): remove two initial entries (some
		// already seen, some not yet), add three new ones, and remove one
		// new one.
		if round >= 40 {
			continue
		}
		for k := 0; k < 2; k++ {
			victim := fmt.Sprintf("init%03d", (round*37+k*101)%initial)
			if exists[victim] {
				e.ok(e.p.Unlink(e.path("d/"+victim)), "unlink %s", victim)
				delete(exists, victim)
				delete(stable, victim)
				everRemoved[victim] = true
			}
		}
		for k := 0; k < 3; k++ {
			create(fmt.Sprintf("new%04d", added))
			added++
		}
		if added > 4 {
			victim := fmt.Sprintf("new%04d", added-4)
			if exists[victim] {
				e.ok(e.p.Unlink(e.path("d/"+victim)), "unlink %s", victim)
				delete(exists, victim)
				everRemoved[victim] = true
			}
		}
	}
	for name := range stable {
		if seen[name] != 1 {
			e.fatalf("%q existed throughout but was seen %d times", name, seen[name])
		}
	}
	if seen["."] != 1 || seen[".."] != 1 {
		e.fatalf("\".\" seen %d times, \"..\" %d times", seen["."], seen[".."])
	}
	if len(stable) < initial/3 {
		e.fatalf("test bug: only %d stable entries left", len(stable))
	}
	// A fresh listing shows exactly what exists now.
	got := names(e.readdir("d", 7))
	if len(got) != len(exists) {
		e.fatalf("final listing has %d entries, want %d", len(got), len(exists))
	}
	for _, n := range got {
		if !exists[n] {
			e.fatalf("final listing shows removed %q", n)
		}
	}
}

func testDirMtime(e *env) {
	e.mkdir("d", 0o755)
	check := func(what string, op func()) {
		e.t.Helper()
		before := e.stat("d")
		e.tick()
		op()
		after := e.stat("d")
		if after.Mtime <= before.Mtime {
			e.t.Errorf("%s did not advance the directory's mtime (%d -> %d)", what, before.Mtime, after.Mtime)
		}
		if e.caps.Ctime && after.Ctime <= before.Ctime {
			e.t.Errorf("%s did not advance the directory's ctime (%d -> %d)", what, before.Ctime, after.Ctime)
		}
	}
	check("create", func() { e.writeFile("d/f", nil, 0o644) })
	check("mkdir", func() { e.mkdir("d/s", 0o755) })
	check("rename within", func() { e.rename("d/f", "d/g") })
	check("unlink", func() { e.ok(e.p.Unlink(e.path("d/g")), "unlink") })
	check("rmdir", func() { e.ok(e.p.Rmdir(e.path("d/s")), "rmdir") })
	if e.caps.Symlinks {
		check("symlink", func() { e.ok(e.p.Symlink("x", e.path("d/l")), "symlink") })
	}
}

// testReaddirSeek: lseek to 0 rewinds a directory stream, and to a cookie
// (Dirent.Next) returned before resumes just after that entry.
func testReaddirSeek(e *env) {
	e.mkdir("d", 0o755)
	for i := range 30 {
		e.writeFile(fmt.Sprintf("d/e%02d", i), nil, 0o644)
	}
	fd, err := e.p.Open(e.path("d"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "open")
	defer e.p.Close(fd)
	readAll := func() []vnodeops.Dirent {
		var out []vnodeops.Dirent
		for {
			ents, err := e.p.Getdents(fd, 4)
			e.ok(err, "getdents")
			if len(ents) == 0 {
				return out
			}
			out = append(out, ents...)
		}
	}
	first := readAll()
	if len(first) != 32 {
		e.fatalf("listing has %d entries, want 32", len(first))
	}
	pos, err := e.p.Lseek(fd, 0, 0)
	e.ok(err, "lseek to 0 on a directory")
	if pos != 0 {
		e.fatalf("lseek to 0 returned %d", pos)
	}
	second := readAll()
	if len(second) != len(first) {
		e.fatalf("after rewinding: %d entries, first pass %d", len(second), len(first))
	}
	for i := range first {
		if first[i].Name != second[i].Name || first[i].Next != second[i].Next || first[i].Ino != second[i].Ino {
			e.fatalf("entry %d differs after rewinding: %+v vs %+v", i, first[i], second[i])
		}
	}
	// Resume after entry 10 by its cookie.
	_, err = e.p.Lseek(fd, int64(first[10].Next), 0)
	e.ok(err, "lseek to a cookie")
	rest := readAll()
	if len(rest) != len(first)-11 {
		e.fatalf("resuming at the cookie of entry 10: %d entries, want %d", len(rest), len(first)-11)
	}
	for i, d := range rest {
		if d.Name != first[11+i].Name {
			e.fatalf("resumed entry %d is %q, want %q", i, d.Name, first[11+i].Name)
		}
	}
}
