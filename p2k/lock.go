package p2k

import (
	"math"
	"slices"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// lockFile names the lock space of one file: POSIX byte-range locks and
// flock(2) locks are independent, as on Linux.
type lockFile struct {
	key   vkey
	flock bool
}

// held is one lock: bytes first..last (inclusive, as FUSE carries them)
// held by owner, the host kernel's lock owner (a process's file table for
// POSIX locks, an open file description for flock).
type held struct {
	owner       uint64
	pid         uint32
	first, last uint64
	excl        bool
}

// lockTable is p2k's lock table. Setting never blocks; SETLKW waits for a
// change of the table and tries again.
type lockTable struct {
	mu      sync.Mutex
	files   map[lockFile][]held
	changed chan struct{} // closed and replaced whenever a lock goes
}

func (t *lockTable) init() {
	t.files = map[lockFile][]held{}
	t.changed = make(chan struct{})
}

// conflict returns a lock another owner holds that keeps want from being
// granted.
func (t *lockTable) conflict(f lockFile, want held) (held, bool) {
	for _, h := range t.files[f] {
		if h.owner != want.owner && h.first <= want.last && want.first <= h.last && (h.excl || want.excl) {
			return h, true
		}
	}
	return held{}, false
}

// remove takes [first, last] out of owner's locks on f, splitting what
// sticks out, and wakes waiters when anything went.
func (t *lockTable) remove(f lockFile, owner uint64, first, last uint64) {
	old := t.files[f]
	var kept []held
	for _, h := range old {
		if h.owner != owner || h.last < first || last < h.first {
			kept = append(kept, h)
			continue
		}
		if h.first < first {
			l := h
			l.last = first - 1
			kept = append(kept, l)
		}
		if h.last > last {
			r := h
			r.first = last + 1
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		delete(t.files, f)
	} else {
		t.files[f] = kept
	}
	if !slices.Equal(old, kept) {
		close(t.changed)
		t.changed = make(chan struct{})
	}
}

// set applies a lock request (F_RDLCK, F_WRLCK or F_UNLCK); false when
// another owner's lock conflicts.
func (t *lockTable) set(f lockFile, owner uint64, lk fuse.FileLock) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	first, last := lk.Start, lk.End
	if lk.Typ == syscall.F_UNLCK {
		t.remove(f, owner, first, last)
		return true
	}
	want := held{owner: owner, pid: lk.Pid, first: first, last: last, excl: lk.Typ == syscall.F_WRLCK}
	if _, busy := t.conflict(f, want); busy {
		return false
	}
	// Replace what owner held there (an upgrade or downgrade), then merge
	// with owner's adjacent locks of the same kind.
	t.remove(f, owner, first, last)
	hs := t.files[f]
	out := hs[:0]
	for _, h := range hs {
		touches := h.owner == owner && h.excl == want.excl &&
			(h.last == math.MaxUint64 || h.last+1 >= want.first) &&
			(want.last == math.MaxUint64 || want.last+1 >= h.first)
		if touches {
			want.first, want.last = min(want.first, h.first), max(want.last, h.last)
			continue
		}
		out = append(out, h)
	}
	t.files[f] = append(out, want)
	return true
}

// get answers F_GETLK: a conflicting lock, or Typ F_UNLCK.
func (t *lockTable) get(f lockFile, owner uint64, lk fuse.FileLock) fuse.FileLock {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := held{owner: owner, first: lk.Start, last: lk.End, excl: lk.Typ == syscall.F_WRLCK}
	h, busy := t.conflict(f, want)
	if !busy {
		return fuse.FileLock{Typ: syscall.F_UNLCK}
	}
	typ := uint32(syscall.F_RDLCK)
	if h.excl {
		typ = syscall.F_WRLCK
	}
	return fuse.FileLock{Start: h.first, End: h.last, Typ: typ, Pid: h.pid}
}

// wait returns a channel closed at the next change of the table.
func (t *lockTable) wait() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// releaseOwner drops every lock owner holds on f.
func (t *lockTable) releaseOwner(f lockFile, owner uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remove(f, owner, 0, math.MaxUint64)
}

func (s *Server) lockFileOf(in *fuse.LkIn) (lockFile, fuse.Status) {
	v, st := s.vnode(in.NodeId)
	if !st.Ok() {
		return lockFile{}, st
	}
	defer v.Release()
	return lockFile{keyOf(v), in.LkFlags&fuse.LK_FLOCK != 0}, fuse.OK
}

// GetLk implements fuse.RawFileSystem (F_GETLK).
func (s *Server) GetLk(_ <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	f, st := s.lockFileOf(in)
	if st.Ok() {
		out.Lk = s.locks.get(f, in.Owner, in.Lk)
	}
	return st
}

// SetLk implements fuse.RawFileSystem (F_SETLK, flock with LOCK_NB).
func (s *Server) SetLk(_ <-chan struct{}, in *fuse.LkIn) fuse.Status {
	f, st := s.lockFileOf(in)
	if !st.Ok() {
		return st
	}
	if !s.locks.set(f, in.Owner, in.Lk) {
		return fuse.EAGAIN
	}
	return fuse.OK
}

// SetLkw implements fuse.RawFileSystem (F_SETLKW, flock): it waits until
// the lock is granted or the host kernel interrupts the request (EINTR).
func (s *Server) SetLkw(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	f, st := s.lockFileOf(in)
	if !st.Ok() {
		return st
	}
	for {
		ch := s.locks.wait()
		if s.locks.set(f, in.Owner, in.Lk) {
			return fuse.OK
		}
		select {
		case <-ch:
		case <-cancel:
			return fuse.EINTR
		case <-s.done:
			return fuse.EINTR
		}
	}
}
