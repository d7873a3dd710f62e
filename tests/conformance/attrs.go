package conformance

import (
	"syscall"
	"time"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

func attrCases() []testCase {
	return []testCase{
		{name: "Chmod", need: needs("permissions"), fn: testChmod},
		{name: "Chown", need: needs("ownership"), fn: testChown},
		{name: "Utimes", fn: testUtimes},
		{name: "UtimesNowOmit", fn: testUtimesNowOmit},
		{name: "WriteUpdatesTimes", fn: testWriteTimes},
		{name: "StatFields", mode: modeEither, fn: testStatFields},
	}
}

func testChmod(e *env) {
	e.writeFile("f", []byte("x"), 0o644)
	e.mkdir("d", 0o755)
	for _, m := range []uint32{0o600, 0o000, 0o777, 0o4755, 0o2711, 0o1644, 0o644} {
		before := e.stat("f")
		if e.caps.Ctime {
			e.tick()
		}
		e.ok(e.p.Chmod(e.path("f"), m), "chmod %#o", m)
		a := e.stat("f")
		if a.Mode != vnodeops.S_IFREG|m {
			e.fatalf("chmod %#o: mode %#o, want %#o", m, a.Mode, vnodeops.S_IFREG|m)
		}
		if e.caps.Ctime && a.Ctime <= before.Ctime {
			e.t.Errorf("chmod %#o did not advance ctime (%d -> %d)", m, before.Ctime, a.Ctime)
		}
		if a.Mtime != before.Mtime {
			e.t.Errorf("chmod changed mtime")
		}
	}
	e.ok(e.p.Chmod(e.path("d"), 0o1777), "chmod dir")
	if a := e.stat("d"); a.Mode != vnodeops.S_IFDIR|0o1777 && e.caps.Sticky {
		e.fatalf("chmod 01777 of a directory: mode %#o", a.Mode)
	}
	// Bits beyond 07777 are ignored or refused, never stored as a type.
	if err := e.p.Chmod(e.path("f"), vnodeops.S_IFDIR|0o600); err == nil {
		if a := e.stat("f"); a.Mode&vnodeops.S_IFMT != vnodeops.S_IFREG {
			e.fatalf("chmod with type bits changed the file type: %#o", a.Mode)
		}
	}
	if e.caps.Symlinks {
		e.ok(e.p.Symlink("f", e.path("l")), "symlink")
		e.ok(e.p.Chmod(e.path("l"), 0o640), "chmod through a link")
		if m := e.stat("f").Mode & vnodeops.PermMask; m != 0o640 {
			e.fatalf("chmod through a link: target mode %#o, want 0640", m)
		}
	}
	e.want(e.p.Chmod(e.path("missing"), 0o644), "chmod of a missing file", syscall.ENOENT)
	// A file opened for writing keeps working after chmod 0.
	fd, err := e.p.Open(e.path("f"), syscall.O_WRONLY, 0)
	e.ok(err, "open")
	e.ok(e.p.Chmod(e.path("f"), 0), "chmod 0 of an open file")
	_, err = e.p.Write(fd, []byte("y"))
	e.ok(err, "write after chmod 0")
	e.ok(e.p.Close(fd), "close")
}

func testChown(e *env) {
	e.writeFile("f", []byte("x"), 0o644)
	before := e.stat("f")
	if before.UID != 0 || before.GID != 0 {
		e.fatalf("file made by root has owner %d:%d", before.UID, before.GID)
	}
	if e.caps.Ctime {
		e.tick()
	}
	e.ok(e.p.Chown(e.path("f"), 1000, 2000), "chown 1000:2000")
	a := e.stat("f")
	if a.UID != 1000 || a.GID != 2000 {
		e.fatalf("owner %d:%d after chown, want 1000:2000", a.UID, a.GID)
	}
	if e.caps.Ctime && a.Ctime <= before.Ctime {
		e.t.Errorf("chown did not advance ctime")
	}
	e.ok(e.p.Chown(e.path("f"), -1, 3000), "chown -1:3000")
	if a := e.stat("f"); a.UID != 1000 || a.GID != 3000 {
		e.fatalf("owner %d:%d after chown -1:3000, want 1000:3000", a.UID, a.GID)
	}
	e.ok(e.p.Chown(e.path("f"), 4000, -1), "chown 4000:-1")
	if a := e.stat("f"); a.UID != 4000 || a.GID != 3000 {
		e.fatalf("owner %d:%d after chown 4000:-1, want 4000:3000", a.UID, a.GID)
	}
	e.ok(e.p.Chown(e.path("f"), -1, -1), "chown -1:-1")
	if a := e.stat("f"); a.UID != 4000 || a.GID != 3000 {
		e.fatalf("chown -1:-1 changed the owner to %d:%d", a.UID, a.GID)
	}
	// Large ids survive (formats with 16-bit ids set Ownership only if
	// they keep 32 bits, or this fails and says so).
	e.ok(e.p.Chown(e.path("f"), 70000, 70001), "chown 70000:70001")
	if a := e.stat("f"); a.UID != 70000 || a.GID != 70001 {
		e.t.Errorf("owner %d:%d after chown 70000:70001 (32-bit ids)", a.UID, a.GID)
	}
	// chown of a set-user-ID executable by root clears S_ISUID.
	if e.caps.Permissions {
		e.ok(e.p.Chmod(e.path("f"), 0o4755), "chmod 04755")
		e.ok(e.p.Chown(e.path("f"), 1000, 1000), "chown")
		if m := e.stat("f").Mode & vnodeops.PermMask; m&vnodeops.S_ISUID != 0 {
			e.t.Errorf("chown left S_ISUID set: mode %#o", m)
		}
	}
	// A directory and a symbolic link (chown follows it).
	e.mkdir("d", 0o755)
	e.ok(e.p.Chown(e.path("d"), 5, 6), "chown dir")
	if a := e.stat("d"); a.UID != 5 || a.GID != 6 {
		e.fatalf("directory owner %d:%d, want 5:6", a.UID, a.GID)
	}
	if e.caps.Symlinks {
		e.ok(e.p.Symlink("d", e.path("l")), "symlink")
		e.ok(e.p.Chown(e.path("l"), 7, 8), "chown through a link")
		if a := e.stat("d"); a.UID != 7 || a.GID != 8 {
			e.fatalf("chown through a link: target owner %d:%d, want 7:8", a.UID, a.GID)
		}
	}
	// Files made in a set-group-ID directory take its group.
	if e.caps.Permissions {
		e.ok(e.p.Chmod(e.path("d"), 0o2777), "chmod g+s")
		u := e.user(1000, 1000)
		gid := e.stat("d").GID
		writeFileAs(e, u, "d/byuser", nil, 0o644)
		if a := e.stat("d/byuser"); a.UID != 1000 || a.GID != gid {
			e.t.Errorf("file made in a set-group-ID directory of group %d: owner %d:%d, want 1000:%d", gid, a.UID, a.GID, gid)
		}
		e.ok(u.Mkdir(e.path("d/subdir"), 0o755), "mkdir in a set-group-ID directory")
		if a := e.stat("d/subdir"); a.GID != gid || a.Mode&vnodeops.S_ISGID == 0 {
			e.t.Errorf("directory made in a set-group-ID directory: gid %d mode %#o, want gid %d and S_ISGID", a.GID, a.Mode, gid)
		}
	}
}

// ns returns sec seconds since the epoch in nanoseconds.
func ns(sec int64) int64 { return sec * int64(time.Second) }

func (e *env) timeClose(what string, got, want int64) {
	e.t.Helper()
	e.timeCloseG(what, got, want, e.caps.TimeGranularity)
}

// timeCloseG is timeClose for a time stored with granularity g.
func (e *env) timeCloseG(what string, got, want int64, g time.Duration) {
	e.t.Helper()
	if g <= 0 {
		g = 1
	}
	d := got - want
	if d < 0 {
		d = -d
	}
	if d >= int64(g) {
		e.t.Errorf("%s: got %v, want %v (granularity %v)", what, time.Unix(0, got).UTC(), time.Unix(0, want).UTC(), g)
	}
}

func testUtimes(e *env) {
	e.writeFile("f", []byte("x"), 0o644)
	// Whole days at midnight UTC, so that coarse formats store them exactly.
	at, mt := ns(946684800), ns(978307200) // 2000-01-01, 2001-01-01
	before := e.stat("f")
	if e.caps.Ctime {
		e.tick()
	}
	e.ok(e.p.Utimes(e.path("f"), at, mt), "utimes")
	a := e.stat("f")
	e.timeCloseG("atime", a.Atime, at, e.atimeGranularity())
	e.timeClose("mtime", a.Mtime, mt)
	if e.caps.Ctime && a.Ctime <= before.Ctime {
		e.t.Errorf("utimes did not advance ctime (%d -> %d)", before.Ctime, a.Ctime)
	}
	// Sub-second precision where the format keeps it.
	if e.caps.TimeGranularity <= time.Microsecond {
		mt2 := ns(1234567890) + 123456789
		e.ok(e.p.Utimes(e.path("f"), at, mt2), "utimes with nanoseconds")
		e.timeClose("mtime with nanoseconds", e.stat("f").Mtime, mt2)
	}
	// Times before 1970 and after 2038 where the format allows: the result
	// is either exact or refused, never silently wrong by more than a day.
	if e.caps.TimeGranularity < 24*time.Hour {
		late := ns(4102444800) // 2100-01-01
		if err := e.p.Utimes(e.path("f"), late, late); err == nil {
			got := e.stat("f").Mtime
			if d := got - late; d > int64(24*time.Hour) || d < -int64(24*time.Hour) {
				e.t.Logf("note: mtime 2100-01-01 is stored as %v (format range)", time.Unix(0, got).UTC())
			}
		}
	}
	// A directory.
	e.mkdir("d", 0o755)
	e.ok(e.p.Utimes(e.path("d"), at, mt), "utimes of a directory")
	e.timeClose("directory mtime", e.stat("d").Mtime, mt)
	e.want(e.p.Utimes(e.path("missing"), at, mt), "utimes of a missing file", syscall.ENOENT)
}

func testUtimesNowOmit(e *env) {
	e.writeFile("f", []byte("x"), 0o644)
	at, mt := ns(946684800), ns(978307200)
	e.ok(e.p.Utimes(e.path("f"), at, mt), "utimes")
	// Omit both: nothing changes.
	base := e.stat("f")
	e.ok(e.p.Utimes(e.path("f"), rumpcore.UtimeOmit, rumpcore.UtimeOmit), "utimes omit omit")
	if a := e.stat("f"); a.Atime != base.Atime || a.Mtime != base.Mtime {
		e.fatalf("UtimeOmit changed the times: atime %d mtime %d, was %d %d", a.Atime, a.Mtime, base.Atime, base.Mtime)
	}
	// Now for mtime, omit atime.
	t0 := e.now().Add(-2 * max(e.caps.TimeGranularity, time.Millisecond)).UnixNano()
	e.ok(e.p.Utimes(e.path("f"), rumpcore.UtimeOmit, rumpcore.UtimeNow), "utimes omit now")
	t1 := e.now().Add(2 * max(e.caps.TimeGranularity, time.Millisecond)).UnixNano()
	a := e.stat("f")
	e.timeCloseG("atime after UtimeOmit", a.Atime, at, e.atimeGranularity())
	if a.Mtime < t0 || a.Mtime > t1 {
		e.fatalf("mtime after UtimeNow: %v, want between %v and %v", time.Unix(0, a.Mtime), time.Unix(0, t0), time.Unix(0, t1))
	}
	// Now for atime, set mtime.
	t0 = e.now().Add(-2 * max(e.caps.TimeGranularity, time.Millisecond)).UnixNano()
	e.ok(e.p.Utimes(e.path("f"), rumpcore.UtimeNow, mt), "utimes now mt")
	t1 = e.now().Add(2 * max(e.caps.TimeGranularity, time.Millisecond)).UnixNano()
	a = e.stat("f")
	e.timeClose("mtime set explicitly", a.Mtime, mt)
	if e.atimeGranularity() < 24*time.Hour && (a.Atime < t0 || a.Atime > t1) {
		e.fatalf("atime after UtimeNow: %v, want between %v and %v", time.Unix(0, a.Atime), time.Unix(0, t0), time.Unix(0, t1))
	}
	// Both now.
	e.ok(e.p.Utimes(e.path("f"), rumpcore.UtimeNow, rumpcore.UtimeNow), "utimes now now")
	a = e.stat("f")
	if a.Mtime < t0 {
		e.fatalf("mtime after UtimeNow, UtimeNow is in the past: %v", time.Unix(0, a.Mtime))
	}
	// Permission rules: a non-owner with write access may set "now" but
	// not explicit times; without write access neither.
	if e.caps.Permissions && e.caps.Ownership {
		e.ok(e.p.Chmod(e.path("f"), 0o666), "chmod 0666")
		u := e.user(1000, 1000)
		e.ok(u.Utimes(e.path("f"), rumpcore.UtimeNow, rumpcore.UtimeNow), "utimes now by a non-owner with write access")
		e.want(u.Utimes(e.path("f"), at, mt), "explicit utimes by a non-owner", syscall.EPERM)
		e.ok(e.p.Chmod(e.path("f"), 0o644), "chmod 0644")
		e.want(u.Utimes(e.path("f"), rumpcore.UtimeNow, rumpcore.UtimeNow), "utimes now by a non-owner without write access", syscall.EACCES)
		e.ok(e.p.Chown(e.path("f"), 1000, 1000), "chown")
		e.ok(u.Utimes(e.path("f"), at, mt), "explicit utimes by the owner")
		e.timeClose("mtime set by the owner", e.stat("f").Mtime, mt)
	}
}

func testWriteTimes(e *env) {
	e.writeFile("f", []byte("x"), 0o644)
	at, mt := ns(946684800), ns(978307200)
	e.ok(e.p.Utimes(e.path("f"), at, mt), "utimes")
	before := e.stat("f")
	e.tick()
	fd, err := e.p.Open(e.path("f"), syscall.O_WRONLY, 0)
	e.ok(err, "open")
	e.pwrite(e.p, fd, []byte("y"), 0)
	e.ok(e.p.Close(fd), "close")
	a := e.stat("f")
	if a.Mtime <= before.Mtime {
		e.fatalf("write did not advance mtime (%d -> %d)", before.Mtime, a.Mtime)
	}
	if e.caps.Ctime && a.Ctime <= before.Ctime {
		e.t.Errorf("write did not advance ctime (%d -> %d)", before.Ctime, a.Ctime)
	}
	// Truncate does too.
	e.ok(e.p.Utimes(e.path("f"), at, mt), "utimes")
	before = e.stat("f")
	e.tick()
	e.ok(e.p.Truncate(e.path("f"), 1000), "truncate")
	a = e.stat("f")
	if a.Mtime <= before.Mtime {
		e.fatalf("truncate did not advance mtime (%d -> %d)", before.Mtime, a.Mtime)
	}
	// Reading does not change mtime.
	e.ok(e.p.Utimes(e.path("f"), at, mt), "utimes")
	want := e.stat("f").Mtime
	e.readFile("f")
	if got := e.stat("f").Mtime; got != want {
		e.fatalf("read changed mtime from %v to %v", time.Unix(0, want), time.Unix(0, got))
	}
	// A new file has all its times close to now.
	now := e.now().UnixNano()
	e.writeFile("g", nil, 0o644)
	g := e.stat("g")
	for _, tm := range []struct {
		n string
		v int64
		g time.Duration
	}{{"atime", g.Atime, e.atimeGranularity()}, {"mtime", g.Mtime, e.caps.TimeGranularity}} {
		slack := int64(10*time.Second) + int64(tm.g)
		if tm.v < now-slack || tm.v > now+slack {
			e.t.Errorf("new file %s %v is not close to now %v", tm.n, time.Unix(0, tm.v), time.Unix(0, now))
		}
	}
	if slack := int64(10*time.Second) + int64(e.caps.TimeGranularity); e.caps.Ctime && (g.Ctime < now-slack || g.Ctime > now+slack) {
		e.t.Errorf("new file ctime %v is not close to now", time.Unix(0, g.Ctime))
	}
}

func testStatFields(e *env) {
	e.ensureSeed()
	f := e.stat(SeedFile)
	if f.Mode&vnodeops.S_IFMT != vnodeops.S_IFREG {
		e.fatalf("seed file mode %#o", f.Mode)
	}
	if e.caps.Permissions && f.Mode&vnodeops.PermMask != 0o644 {
		e.t.Errorf("seed file permissions %#o, want 0644", f.Mode&vnodeops.PermMask)
	}
	if f.Size != uint64(len(SeedData())) {
		e.fatalf("seed file size %d, want %d", f.Size, len(SeedData()))
	}
	if f.Nlink != 1 {
		e.t.Errorf("seed file nlink %d, want 1", f.Nlink)
	}
	if f.Blocks*512 < f.Size {
		e.t.Errorf("seed file Blocks %d (%d bytes) < size %d", f.Blocks, f.Blocks*512, f.Size)
	}
	if f.BlkSize == 0 {
		e.t.Errorf("BlkSize is 0")
	}
	if f.Ino == 0 {
		e.t.Errorf("inode number 0")
	}
	d := e.stat(SeedDir)
	if !d.IsDir() || d.Ino == f.Ino {
		e.fatalf("seed dir: mode %#o ino %d (file ino %d)", d.Mode, d.Ino, f.Ino)
	}
	if e.caps.DirLinkCount && d.Nlink != 2 {
		e.t.Errorf("seed dir nlink %d, want 2", d.Nlink)
	}
	root := e.stat("")
	if !root.IsDir() {
		e.fatalf("mount root is not a directory")
	}
	// Fstat agrees with stat.
	fd, err := e.p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
	e.ok(err, "open")
	fa, err := e.p.Fstat(fd)
	e.ok(err, "fstat")
	e.ok(e.p.Close(fd), "close")
	if fa.Ino != f.Ino || fa.Size != f.Size || fa.Mode != f.Mode {
		e.fatalf("fstat %+v differs from stat %+v", fa, f)
	}
	// Statvfs is sane.
	st := e.statvfs()
	if st.Blocks == 0 || st.Bfree > st.Blocks || st.Bavail > st.Bfree {
		e.t.Errorf("statvfs blocks %d bfree %d bavail %d", st.Blocks, st.Bfree, st.Bavail)
	}
	if st.Frsize == 0 || st.Bsize == 0 {
		e.t.Errorf("statvfs bsize %d frsize %d", st.Bsize, st.Frsize)
	}
	if st.Namemax < uint32(e.nameMax()) {
		e.t.Errorf("statvfs namemax %d, want at least %d", st.Namemax, e.nameMax())
	}
	if e.ro != (st.Flags&vnodeops.StRdonly != 0) {
		e.t.Errorf("statvfs flags %#x on a mount with read-only %v", st.Flags, e.ro)
	}
}
