package p9srv

import (
	"encoding/binary"
	"github.com/rump9p/rump9p/tests/p9raw"
	"math"
	"net"
	"syscall"
	"testing"

	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/vnodeops"
)

// rawSession speaks 9P by hand (the hugelgupf client sends Tlock on fid
// 0), with the requests these tests repeat.
type rawSession struct{ *p9raw.Session }

const (
	msgTlopen = p9raw.Tlopen
	msgTwalk  = p9raw.Twalk
	msgTclunk = p9raw.Tclunk
	msgRerror = p9raw.Rlerror
)

func newRawSession(t *testing.T, addr net.Addr, aname string) *rawSession {
	nc, _ := rawVersion(t, addr, testMsize)
	s := &rawSession{&p9raw.Session{T: t, Nc: nc}}
	s.Call(msgTattach, le32(1), le32(noUID), str9(""), str9(aname), le32(0))
	return s
}

// open walks fid 1 to name as fid and opens it read-write.
func (s *rawSession) open(fid uint32, name string) {
	s.T.Helper()
	s.Call(msgTwalk, le32(1), le32(fid), []byte{1, 0}, str9(name))
	s.Call(msgTlopen, le32(fid), le32(2))
}

func (s *rawSession) lock(fid uint32, typ p9.LockType, start, length uint64, pid uint32) p9.LockStatus {
	s.T.Helper()
	body := s.Call(msgTlock, le32(fid), []byte{byte(typ)}, le32(0), le64(start), le64(length), le32(pid), str9("client"))
	return p9.LockStatus(body[0])
}

// lockfPair serves a new kernel and returns two raw sessions on separate
// connections, each with fid 2 open read-write on tmp1/lockf.
func lockfPair(t *testing.T) (a, b *rawSession) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 0, testMsize)
	createFile(t, attach(t, cl, "tmp1"), "lockf", []byte("data"))
	a = newRawSession(t, addr, "tmp1")
	b = newRawSession(t, addr, "tmp1")
	a.open(2, "lockf")
	b.open(2, "lockf")
	return a, b
}

func TestLocksBetweenConnections(t *testing.T) {
	a, b := lockfPair(t)

	if st := a.lock(2, p9.WriteLock, 0, 100, 1); st != p9.LockStatusOK {
		t.Fatalf("A write lock: %v", st)
	}
	if st := b.lock(2, p9.WriteLock, 50, 10, 1); st != p9.LockStatusBlocked {
		t.Errorf("B overlapping write lock: %v, want blocked", st)
	}
	if st := b.lock(2, p9.ReadLock, 99, 1, 1); st != p9.LockStatusBlocked {
		t.Errorf("B read lock under A's write lock: %v, want blocked", st)
	}
	if st := b.lock(2, p9.WriteLock, 100, 0, 1); st != p9.LockStatusOK {
		t.Errorf("B lock from 100 to EOF: %v", st)
	}
	// A unlocks the middle: B can take it, not the rest.
	if st := a.lock(2, p9.Unlock, 40, 20, 1); st != p9.LockStatusOK {
		t.Fatalf("A unlock: %v", st)
	}
	if st := b.lock(2, p9.WriteLock, 45, 10, 1); st != p9.LockStatusOK {
		t.Errorf("B in the unlocked middle: %v", st)
	}
	if st := b.lock(2, p9.WriteLock, 30, 1, 1); st != p9.LockStatusBlocked {
		t.Errorf("B in A's remaining lock: %v", st)
	}
	// Read locks share.
	if st := a.lock(2, p9.ReadLock, 1000, 10, 2); st != p9.LockStatusBlocked {
		t.Errorf("A read lock inside B's write lock to EOF: %v", st)
	}
	// Clunking A's fid releases A's locks.
	a.Call(msgTclunk, le32(2))
	if st := b.lock(2, p9.WriteLock, 0, 40, 1); st != p9.LockStatusOK {
		t.Errorf("B after A's clunk: %v", st)
	}
	// Closing B's connection releases B's locks.
	b.Nc.Close()
	a.open(3, "lockf")
	var st p9.LockStatus
	for i := 0; i < 200; i++ { // the server notices the close asynchronously
		if st = a.lock(3, p9.WriteLock, 0, 0, 1); st == p9.LockStatusOK {
			break
		}
		sleepMs(10)
	}
	if st != p9.LockStatusOK {
		t.Errorf("A after B's connection closed: %v", st)
	}
	// A bad lock type is an error.
	if rt, _ := a.Try(msgTlock, le32(3), []byte{9}, le32(0), le64(0), le64(0), le32(1), str9("c")); rt != msgRerror {
		t.Errorf("lock type 9: reply %d", rt)
	}
}

func TestLockTable(t *testing.T) {
	var lt lockTable
	lt.m = make(map[lockKey][]lockRange)
	key := lockKey{1, 2}
	o1 := lockOwner{conn: 1, pid: 1}
	o2 := lockOwner{conn: 2, pid: 1}
	o3 := lockOwner{conn: 1, pid: 2, client: "other"}
	if !lt.lock(key, o1, false, 0, 100) || !lt.lock(key, o2, false, 50, 150) {
		t.Fatal("read locks do not share")
	}
	if lt.lock(key, o3, true, 99, 100) {
		t.Error("write lock over read locks granted")
	}
	// o1 upgrades part of its range: blocked by o2's read lock at 50..
	if lt.lock(key, o1, true, 40, 60) {
		t.Error("upgrade over another reader granted")
	}
	if !lt.lock(key, o1, true, 0, 50) {
		t.Error("upgrade of own range refused")
	}
	conflicts := func(o lockOwner, write bool, start, end uint64) bool {
		return lt.testLock(key, o, write, start, end).typ != p9.Unlock
	}
	if !conflicts(o2, true, 10, 11) || conflicts(o2, false, 60, 70) {
		t.Error("conflicts wrong after upgrade")
	}
	// Split: o1 unlocks 10..20 of its write lock.
	lt.unlock(key, o1, 10, 20)
	if conflicts(o3, true, 10, 20) || !conflicts(o3, true, 5, 6) || !conflicts(o3, true, 25, 26) {
		t.Error("split unlock wrong")
	}
	// Coalescing keeps the table small.
	for i := uint64(0); i < 100; i++ {
		lt.lock(key, o3, true, 1000+i, 1001+i)
	}
	n := 0
	for _, r := range lt.m[key] {
		if r.owner == o3 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d ranges for adjacent locks", n)
	}
	if lockEnd(5, 0) != math.MaxUint64 || lockEnd(math.MaxUint64-1, 5) != math.MaxUint64 || lockEnd(5, 5) != 10 {
		t.Error("lockEnd")
	}
	lt.releaseConn(1)
	for _, r := range lt.m[key] {
		if r.owner.conn == 1 {
			t.Errorf("conn 1 range survived: %+v", r)
		}
	}
	lt.releaseOwner(key, o2)
	if len(lt.m) != 0 {
		t.Errorf("table not empty: %v", lt.m)
	}
}

func TestXattrsRefused(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	s := newRawSession(t, addr, "tmp1")
	errOf := func(rt byte, body []byte) uint32 {
		if rt != msgRerror {
			t.Fatalf("reply %d, want Rlerror", rt)
		}
		return binary.LittleEndian.Uint32(body)
	}
	// getxattr and listxattr: the library flattens our errors to EINVAL.
	if e := errOf(s.Try(30, le32(1), le32(5), str9("user.x"))); e != 22 {
		t.Errorf("getxattr errno %d", e)
	}
	if e := errOf(s.Try(30, le32(1), le32(5), str9(""))); e != 22 {
		t.Errorf("listxattr errno %d", e)
	}
	// The failed walks made no fid.
	if e := errOf(s.Try(msgTclunk, le32(5))); e != 9 {
		t.Errorf("clunk of the xattr fid: errno %d, want EBADF", e)
	}
	// setxattr in a namespace no one stores: Txattrcreate on a clone, the
	// value, then Tclunk fails with EOPNOTSUPP.
	s.Call(msgTwalk, le32(1), le32(6), []byte{0, 0})
	s.Call(32, le32(6), str9("os2.x"), le64(3), le32(0))
	s.Call(118, le32(6), le64(0), le32(3), []byte("abc"))
	if e := errOf(s.Try(msgTclunk, le32(6))); e != 95 {
		t.Errorf("setxattr errno %d, want EOPNOTSUPP", e)
	}
}

// TestSetIDBitsSurviveSetattr: the library masks modes to 01777, so the
// frame reader carries S_ISUID/S_ISGID past it (chmod 4755 over v9fs).
func TestSetIDBitsSurviveSetattr(t *testing.T) {
	k := newKernel(t)
	p := k.NewProc(vnodeops.Root)
	defer p.Exit()
	fd, err := p.Open("/tmp1/suid", syscall.O_CREAT|syscall.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	p.Close(fd)
	if err := p.Chown("/tmp1/suid", 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, k, Options{}, false)
	s := newRawSession(t, addr, "tmp1") // attaches as nobody, the owner
	s.Call(msgTwalk, le32(1), le32(2), []byte{1, 0}, str9("suid"))
	const msgTsetattr = 26
	setattr := func(mode uint32, atimeNsec uint64) {
		valid := uint32(1) // P9_SETATTR_MODE
		if atimeNsec != 0 {
			valid |= 0x10 | 0x80 // ATIME | ATIME_SET
		}
		s.Call(msgTsetattr, le32(2), le32(valid), le32(mode), le32(0), le32(0), le64(0),
			le64(1000), le64(atimeNsec), le64(0), le64(0))
	}
	for _, c := range []struct {
		mode uint32
		nsec uint64
	}{{0o4755, 0}, {0o2711, 0}, {0o6750, 123456789}, {0o0644, 0}} {
		setattr(c.mode, c.nsec)
		a, err := p.Stat("/tmp1/suid")
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Mode & 0o7777; got != c.mode {
			t.Errorf("chmod %#o over 9P: mode %#o", c.mode, got)
		}
		if c.nsec != 0 && a.Atime != 1000*1e9+int64(c.nsec) {
			t.Errorf("atime %d, want %d: the carried bits leaked into the time", a.Atime, 1000*1e9+int64(c.nsec))
		}
	}
}
