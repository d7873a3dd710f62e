package p9srv

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// getlock sends a Tgetlock and returns the Rgetlock's fields.
func (s *rawSession) getlock(fid uint32, typ p9.LockType, start, length uint64, pid uint32) getlockResult {
	s.T.Helper()
	rt, body := s.Try(msgTgetlock, le32(fid), []byte{byte(typ)}, le64(start), le64(length), le32(pid), str9("client"))
	if rt != msgRgetlock || len(body) < 23 {
		s.T.Fatalf("Tgetlock: reply type %d, %x", rt, body)
	}
	n := int(binary.LittleEndian.Uint16(body[21:]))
	return getlockResult{
		typ:    p9.LockType(body[0]),
		start:  binary.LittleEndian.Uint64(body[1:]),
		length: binary.LittleEndian.Uint64(body[9:]),
		pid:    int32(binary.LittleEndian.Uint32(body[17:])),
		client: string(body[23 : 23+n]),
	}
}

// liveFiles sums the Files live on the server's connections.
func liveFiles(s *Server) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for c := range s.conns {
		n += c.files.Load()
	}
	return n
}

func TestTversionResetsSession(t *testing.T) {
	k := newKernel(t)
	srv, addr := startServer(t, k, Options{}, true)
	cl, _ := dial(t, addr, 0, testMsize)
	createFile(t, attach(t, cl, "tmp2"), "lockf", []byte("data"))
	cl.Close()
	goroutines := runtime.NumGoroutine()

	a := newRawSession(t, addr, "tmp2")
	other := newRawSession(t, addr, "tmp2")
	other.open(2, "lockf")
	for round := 0; round < 3; round++ {
		a.open(2, "lockf")
		if st := a.lock(2, p9.WriteLock, 0, 0, 7); st != p9.LockStatusOK {
			t.Fatalf("round %d: lock: %v", round, st)
		}
		if st := other.lock(2, p9.WriteLock, 0, 1, 9); st != p9.LockStatusBlocked {
			t.Fatalf("round %d: other's lock while held: %v", round, st)
		}
		// A request in flight when the Tversion arrives: answered before
		// the Rversion or not at all.
		a.Tag++
		if _, err := a.Nc.Write(rawFrame(msgTread, a.Tag, le32(2), le64(0), le32(4))); err != nil {
			t.Fatal(err)
		}
		if m := a.Version(8192); m != 8192 {
			t.Fatalf("round %d: msize %d after reset, want 8192", round, m)
		}
		// The old fids are gone.
		if rt, body := a.Try(msgTwalk, le32(1), le32(3), []byte{0, 0}); rt != msgRerror {
			t.Fatalf("round %d: walk from an old fid: reply %d %x", round, rt, body)
		}
		// The lock went with them.
		if st := other.lock(2, p9.WriteLock, 0, 1, 9); st != p9.LockStatusOK {
			t.Fatalf("round %d: other's lock after the reset: %v", round, st)
		}
		other.lock(2, p9.Unlock, 0, 0, 9)
		// The connection goes on: attach again, within the new msize.
		a.Call(msgTattach, le32(1), le32(noUID), str9(""), str9("tmp2"), le32(0))
		if rt, _ := a.Try(msgTread, le32(1), le64(0), le32(1<<20)); rt != msgRerror {
			t.Fatalf("round %d: read of an unopened fid: reply %d", round, rt)
		}
	}
	a.Call(msgTclunk, le32(1))
	other.Call(msgTclunk, le32(2))
	other.Call(msgTclunk, le32(1))
	// Nothing of the old sessions is left: no File, no vnode reference
	// (the mount is not busy), no goroutine.
	if n := liveFiles(srv); n != 0 {
		t.Errorf("%d Files live after every fid was clunked", n)
	}
	if err := k.Unmount("/tmp2", false); err != nil {
		t.Errorf("unmount after the resets: %v (a vnode reference leaked)", err)
	}
	a.Nc.Close()
	other.Nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		sleepMs(10)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("goroutines: %d after, %d before", n, goroutines)
	}
}

func TestTversionResetBadMsize(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	a := newRawSession(t, addr, "tmp1")
	// An msize below the minimum is answered "unknown"; the session is
	// over, and the connection waits for an acceptable Tversion.
	if m := a.Version(512); m != 0 {
		t.Fatalf("msize 512 negotiated as %d", m)
	}
	if m := a.Version(16384); m != 16384 {
		t.Fatalf("msize 16384 negotiated as %d", m)
	}
	a.Call(msgTattach, le32(1), le32(noUID), str9(""), str9("tmp1"), le32(0))
	// Anything but Tversion after a refused one ends the connection.
	if m := a.Version(100); m != 0 {
		t.Fatalf("msize 100 negotiated as %d", m)
	}
	a.Tag++
	a.Nc.Write(rawFrame(msgTwalk, a.Tag, le32(1), le32(3), []byte{0, 0}))
	expectClosed(t, a.Nc)
}

func TestTgetlock(t *testing.T) {
	a, b := lockfPair(t)
	if got := b.getlock(2, p9.WriteLock, 0, 0, 5); got.typ != p9.Unlock {
		t.Errorf("getlock on an unlocked file: %+v", got)
	}
	if st := a.lock(2, p9.WriteLock, 10, 20, 42); st != p9.LockStatusOK {
		t.Fatalf("lock: %v", st)
	}
	want := getlockResult{typ: p9.WriteLock, start: 10, length: 20, pid: 42, client: "client"}
	if got := b.getlock(2, p9.ReadLock, 0, 0, 5); got != want {
		t.Errorf("getlock under a write lock: %+v, want %+v", got, want)
	}
	if got := b.getlock(2, p9.WriteLock, 30, 5, 5); got.typ != p9.Unlock {
		t.Errorf("getlock past the lock: %+v", got)
	}
	// The owner itself sees no conflict, and the test took no lock.
	if got := a.getlock(2, p9.WriteLock, 0, 0, 42); got.typ != p9.Unlock {
		t.Errorf("getlock by the owner: %+v", got)
	}
	a.lock(2, p9.Unlock, 0, 0, 42)
	a.lock(2, p9.ReadLock, 0, 0, 43)
	want = getlockResult{typ: p9.ReadLock, pid: 43, client: "client"}
	if got := b.getlock(2, p9.WriteLock, 100, 1, 5); got != want {
		t.Errorf("getlock under a read lock to EOF: %+v, want %+v", got, want)
	}
	if got := b.getlock(2, p9.ReadLock, 100, 1, 5); got.typ != p9.Unlock {
		t.Errorf("read getlock under a read lock: %+v", got)
	}
	// Errors come back as Rlerror; a short Tgetlock too; the session goes on.
	if rt, _ := b.Try(msgTgetlock, le32(99), []byte{1}, le64(0), le64(0), le32(1), str9("x")); rt != msgRerror {
		t.Errorf("getlock on a bad fid: reply %d", rt)
	}
	if rt, _ := b.Try(msgTgetlock, le32(2), []byte{1}); rt != msgRerror {
		t.Errorf("short getlock: reply %d", rt)
	}
	if got := b.getlock(2, p9.WriteLock, 0, 0, 5); got.typ != p9.ReadLock {
		t.Errorf("getlock after errors: %+v", got)
	}
}
