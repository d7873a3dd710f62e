package rumpcore

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

type vkey struct {
	mount uint32
	ino   uint64
}

type vstate uint8

const (
	vLoading    vstate = iota // FS.VGet in progress; wait on settled
	vActive                   // usable; refs > 0
	vReclaiming               // Inactive/Reclaim in progress; wait on settled
)

// Vnode is the kernel's handle on one file of a mounted file system. Every
// *Vnode handed out carries a reference that its holder gives back with
// Release.
type Vnode struct {
	k   *Kernel
	m   *mount
	ino uint64
	vn  vnodeops.Vnode

	// guarded by k.mu
	refs      int
	state     vstate
	settled   chan struct{} // closed when a loading or reclaiming state ends
	coveredBy *mount        // the mount whose root hides this directory
	// verified is set once a lookup found the inode sane (see
	// checkReached); for a directory, parent is the directory it was
	// then reached from, whose inode its ".." names.
	verified bool
	isDir    bool
	parent   uint64

	// removed is set, with dirLock held exclusively, once the directory
	// is removed by Rmdir or a Rename over it: the kernel then answers
	// ENOENT for new entries and lookups and an empty Readdir, so drivers
	// need not keep a removed directory usable.
	removed atomic.Bool

	// reclaimed is set, with the mount's gate held, once the driver's
	// Inactive and Reclaim have run: by the last Release, or by a forced
	// unmount's sweep (reclaimAll) for a vnode still referenced.
	reclaimed bool

	appendMu sync.Mutex // serialises O_APPEND writes

	// dirLock makes a directory operation and the vget of the inode it
	// names one step, as NetBSD holds the directory vnode locked: lookups
	// hold it shared; create, link, remove and rename exclusively. Without
	// it, a file could be removed and its inode number reused between the
	// driver's answer and vget. Only rename holds two, in dirOrder.
	dirLock sync.RWMutex
}

// writer returns v's driver vnode as a vnodeops.Writer, or EROFS when the
// driver is a read-only format.
func (v *Vnode) writer() (vnodeops.Writer, error) {
	w, ok := v.vn.(vnodeops.Writer)
	if !ok {
		return nil, syscall.EROFS
	}
	return w, nil
}

// lacking is the error for an operation v's format cannot do: EROFS on a
// read-only format, else EPERM (a kind of file the format cannot hold,
// as POSIX says for link and mknod).
func (v *Vnode) lacking() error {
	if _, ok := v.vn.(vnodeops.Writer); !ok {
		return syscall.EROFS
	}
	return syscall.EPERM
}

// vget returns a referenced vnode for (m, ino), loading it through the
// driver on a cache miss.
func (k *Kernel) vget(m *mount, ino uint64) (*Vnode, error) {
	key := vkey{m.id, ino}
	k.mu.Lock()
	for {
		v, ok := k.vcache[key]
		if !ok {
			break
		}
		if v.state == vActive {
			v.refs++
			k.mu.Unlock()
			return v, nil
		}
		ch := v.settled
		k.mu.Unlock()
		<-ch
		k.mu.Lock()
	}
	v := &Vnode{k: k, m: m, ino: ino, state: vLoading, settled: make(chan struct{})}
	k.vcache[key] = v
	m.nvnodes++
	k.mu.Unlock()

	// VGet is a driver call like any other: inside the gate, so that it
	// never runs beside a forced unmount or after the FS is unmounted.
	var vn vnodeops.Vnode
	exit, err := m.enter()
	if err == nil {
		vn, err = m.fs.VGet(ino)
		exit()
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	close(v.settled)
	if err != nil {
		delete(k.vcache, key)
		m.nvnodes--
		return nil, errno(err)
	}
	v.vn = vn
	v.state = vActive
	v.refs = 1
	return v, nil
}

// Ref adds a reference to v and returns v.
func (v *Vnode) Ref() *Vnode {
	v.k.mu.Lock()
	if v.refs <= 0 {
		v.k.mu.Unlock()
		panic("rumpcore: Ref of a released vnode")
	}
	v.refs++
	v.k.mu.Unlock()
	return v
}

// Release gives back one reference. When the last goes, the driver's
// Inactive and Reclaim run (Inactive frees an unlinked file's storage).
func (v *Vnode) Release() {
	k := v.k
	k.mu.Lock()
	v.refs--
	if v.refs > 0 {
		k.mu.Unlock()
		return
	}
	if v.refs < 0 {
		k.mu.Unlock()
		panic("rumpcore: vnode released too often")
	}
	v.state = vReclaiming
	v.settled = make(chan struct{})
	dead := v.m.dead
	k.mu.Unlock()

	if !dead {
		v.m.gate.RLock()
		if !v.m.dead {
			v.reclaim()
		}
		v.m.gate.RUnlock()
	}

	k.mu.Lock()
	delete(k.vcache, vkey{v.m.id, v.ino})
	v.m.nvnodes--
	close(v.settled)
	k.mu.Unlock()
}

// reclaim runs the driver's Inactive and Reclaim once; their errors are
// only logged (the contract: the file is gone from the kernel either way).
// The caller holds v.m.gate, shared by the last Release, exclusively by a
// forced unmount.
func (v *Vnode) reclaim() {
	if v.reclaimed {
		return
	}
	v.reclaimed = true
	if err := v.vn.Inactive(); err != nil {
		v.k.log.Error("inactive", "mount", v.m.name, "ino", v.ino, "err", err)
	}
	if err := v.vn.Reclaim(); err != nil {
		v.k.log.Error("reclaim", "mount", v.m.name, "ino", v.ino, "err", err)
	}
}

// reclaimAll runs Inactive and Reclaim on every vnode of m the kernel
// still holds, as NetBSD's vflush(FORCECLOSE) does, so that a driver's
// Unmount always finds every vnode reclaimed: a file unlinked while open
// is freed, not left allocated without a name. The caller holds m.gate
// exclusively with m.dead set: no driver call runs or starts. The
// vnodes stay in the cache until their holders release them; every
// later operation on them answers EIO.
func (k *Kernel) reclaimAll(m *mount) {
	k.mu.Lock()
	var live []*Vnode
	for key, v := range k.vcache {
		// A vnode still loading cannot be one (VGet runs inside the
		// gate); a reclaiming one may be waiting for the gate.
		if key.mount == m.id && v.vn != nil {
			live = append(live, v)
		}
	}
	k.mu.Unlock()
	// Children before parents is not needed: Inactive frees only what
	// the vnode itself holds. Order by inode for repeatable logs.
	slices.SortFunc(live, func(a, b *Vnode) int { return cmp.Compare(a.ino, b.ino) })
	for _, v := range live {
		v.reclaim()
	}
}

// MountID identifies v's mount; unique for the kernel's lifetime.
func (v *Vnode) MountID() uint32 { return v.m.id }

// Ino is v's inode number within its mount.
func (v *Vnode) Ino() uint64 { return v.ino }

// ReadOnly reports whether v's mount is read-only.
func (v *Vnode) ReadOnly() bool { return v.m.ro }
