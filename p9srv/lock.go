package p9srv

import (
	"math"
	"sync"
)

// lockKey names a file across the server.
type lockKey struct {
	mount uint32
	ino   uint64
}

// lockOwner is a POSIX lock owner: a process (pid) of a client (the client
// name Linux sends, its node name) on one connection.
type lockOwner struct {
	conn   uint64
	pid    int32
	client string
}

// lockRange is a lock held on bytes [start, end) of a file; end is
// math.MaxUint64 for "to the end of the file, however it grows".
type lockRange struct {
	owner      lockOwner
	start, end uint64
	write      bool
}

// lockTable is the server's in-memory POSIX byte-range lock table, shared
// by every connection. Locking never blocks: a conflicting request is
// refused and the client retries (Linux does so for F_SETLKW).
type lockTable struct {
	mu sync.Mutex
	m  map[lockKey][]lockRange
}

// lockEnd turns Tlock's (start, length) into an exclusive end; length 0
// means to the end of the file.
func lockEnd(start, length uint64) uint64 {
	end := start + length
	if length == 0 || end < start {
		return math.MaxUint64
	}
	return end
}

func overlaps(r lockRange, start, end uint64) bool {
	return r.start < end && start < r.end
}

// lock grants owner a read or write lock on [start, end) of key, replacing
// what owner held there, unless another owner holds a conflicting lock
// (a write lock against anything, or anything against a write lock). It
// reports whether the lock was granted.
func (t *lockTable) lock(key lockKey, owner lockOwner, write bool, start, end uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.m[key]
	for _, r := range rs {
		if r.owner != owner && overlaps(r, start, end) && (r.write || write) {
			return false
		}
	}
	rs = cut(rs, owner, start, end)
	// Coalesce with owner's touching ranges of the same kind.
	for i := 0; i < len(rs); {
		r := rs[i]
		if r.owner == owner && r.write == write && r.start <= end && start <= r.end {
			start, end = min(start, r.start), max(end, r.end)
			rs = append(rs[:i], rs[i+1:]...)
			continue
		}
		i++
	}
	t.m[key] = append(rs, lockRange{owner: owner, start: start, end: end, write: write})
	return true
}

// unlock drops what owner holds on [start, end) of key.
func (t *lockTable) unlock(key lockKey, owner lockOwner, start, end uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.store(key, cut(t.m[key], owner, start, end))
}

// releaseOwner drops every lock owner holds on key.
func (t *lockTable) releaseOwner(key lockKey, owner lockOwner) {
	t.unlock(key, owner, 0, math.MaxUint64)
}

// releaseConn drops every lock held through connection id.
func (t *lockTable) releaseConn(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, rs := range t.m {
		kept := rs[:0]
		for _, r := range rs {
			if r.owner.conn != id {
				kept = append(kept, r)
			}
		}
		t.store(key, kept)
	}
}

func (t *lockTable) store(key lockKey, rs []lockRange) {
	if len(rs) == 0 {
		delete(t.m, key)
		return
	}
	t.m[key] = rs
}

// cut removes owner's hold on [start, end) from rs, splitting ranges that
// stick out on either side. It may reuse rs's storage.
func cut(rs []lockRange, owner lockOwner, start, end uint64) []lockRange {
	out := make([]lockRange, 0, len(rs)+1)
	for _, r := range rs {
		if r.owner != owner || !overlaps(r, start, end) {
			out = append(out, r)
			continue
		}
		if r.start < start {
			left := r
			left.end = start
			out = append(out, left)
		}
		if r.end > end {
			right := r
			right.start = end
			out = append(out, right)
		}
	}
	return out
}
