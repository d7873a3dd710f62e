package p9srv

import (
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// Linux open flags as 9P2000.L carries them (P9_DOTL_*, equal to the
// x86 O_* values); only these reach the kernel.
const (
	dotlTrunc      = 0o1000
	dotlAppend     = 0o2000
	atRemoveDir    = 0x200 // AT_REMOVEDIR in Tunlinkat's flags
	direntOverhead = 13 + 8 + 1 + 2
)

// open state bits of file.state.
const (
	stOpened = 1 << iota
	stAppend
)

// file is a fid's File: one vnode reference and the identity of the attach
// it descends from. The library guarantees Open is called at most once and
// before ReadAt, WriteAt, Readdir and FSync.
type file struct {
	c   *conn
	v   *rumpcore.Vnode // one reference, dropped by Close
	id  *ident
	qid p9.QID // as of the walk that made the file

	state  atomic.Uint32 // stOpened|stAppend
	oflags atomic.Int32  // flags given to Vnode.Open, for Vnode.Close
	closed atomic.Bool
	shares atomic.Int32 // xattr fids sharing this File (see GetXattr)
	// exempt: not a client's fid but the library's kept ancestor of one
	// (the bound root of an attach that names a path); not counted
	// against MaxFidsPerConn.
	exempt bool

	lockMu sync.Mutex
	owners map[lockOwner]struct{} // owners that locked through this file
}

var _ p9.File = (*file)(nil)

// newChild makes a File for v (whose reference it takes over) with f's
// identity, counting it against the fid limit. On error v is released.
func (f *file) newChild(v *rumpcore.Vnode, a *vnodeops.Attr) (*file, error) {
	if err := f.c.acquire(false); err != nil {
		v.Release()
		return nil, err
	}
	nf := &file{c: f.c, v: v, id: f.id}
	if a != nil {
		nf.qid = f.c.srv.qidOf(v, a)
	} else {
		nf.qid = f.qid
	}
	return nf, nil
}

// writable returns EROFS when the server is read-only.
func (f *file) writable() error {
	if f.c.srv.opts.ReadOnly {
		return linux.EROFS
	}
	return nil
}

// Walk implements p9.File. With no names it clones f (no Getattr).
func (f *file) Walk(names []string) ([]p9.QID, p9.File, error) {
	if len(names) == 0 {
		nf, err := f.newChild(f.v.Ref(), nil)
		if err != nil {
			return nil, nil, err
		}
		return nil, nf, nil
	}
	qids, nf, _, _, err := f.WalkGetAttr(names)
	return qids, nf, err
}

// WalkGetAttr implements p9.File: one Lookup and one Getattr per name.
func (f *file) WalkGetAttr(names []string) ([]p9.QID, p9.File, p9.AttrMask, p9.Attr, error) {
	cur := f.v.Ref()
	qids := make([]p9.QID, 0, len(names))
	var a vnodeops.Attr
	var err error
	if len(names) == 0 {
		if a, err = cur.Getattr(); err != nil {
			cur.Release()
			return nil, nil, p9.AttrMask{}, p9.Attr{}, errno(err)
		}
	}
	for _, name := range names {
		next, err := cur.Lookup(f.id.cred, name)
		cur.Release()
		if err != nil {
			return nil, nil, p9.AttrMask{}, p9.Attr{}, errno(err)
		}
		cur = next
		if a, err = cur.Getattr(); err != nil {
			cur.Release()
			return nil, nil, p9.AttrMask{}, p9.Attr{}, errno(err)
		}
		qids = append(qids, f.c.srv.qidOf(cur, &a))
	}
	nf, err := f.newChild(cur, &a)
	if err != nil {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, err
	}
	if len(names) == 0 {
		qids = nil
	}
	return qids, nf, attrMask, toP9Attr(&a), nil
}

// GetAttr implements p9.File: one Getattr whatever req asks.
func (f *file) GetAttr(p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	a, err := f.v.Getattr()
	if err != nil {
		return p9.QID{}, p9.AttrMask{}, p9.Attr{}, errno(err)
	}
	return f.c.srv.qidOf(f.v, &a), attrMask, toP9Attr(&a), nil
}

// SetAttr implements p9.File. A time without its NotSystemTime bit is set
// to the kernel's "now"; CTime alone asks for a ctime update, and is
// implied by (so dropped with) any other change.
func (f *file) SetAttr(valid p9.SetAttrMask, attr p9.SetAttr) error {
	if err := f.writable(); err != nil {
		return err
	}
	var sa vnodeops.SetAttr
	setID, atimeNsec := carriedSetIDBits(attr.ATimeNanoSeconds)
	attr.ATimeNanoSeconds = atimeNsec
	if valid.Permissions {
		sa.Mask |= vnodeops.SetMode
		sa.Mode = uint32(attr.Permissions)&vnodeops.PermMask | setID
	}
	if valid.UID && attr.UID.Ok() {
		sa.Mask |= vnodeops.SetUID
		sa.UID = uint32(attr.UID)
	}
	if valid.GID && attr.GID.Ok() {
		sa.Mask |= vnodeops.SetGID
		sa.GID = uint32(attr.GID)
	}
	if valid.Size {
		sa.Mask |= vnodeops.SetSize
		sa.Size = attr.Size
	}
	if valid.ATime {
		sa.Mask |= vnodeops.SetAtime
		sa.Atime = rumpcore.UtimeNow
		if valid.ATimeNotSystemTime {
			sa.Atime = joinTime(attr.ATimeSeconds, attr.ATimeNanoSeconds)
		}
	}
	if valid.MTime {
		sa.Mask |= vnodeops.SetMtime
		sa.Mtime = rumpcore.UtimeNow
		if valid.MTimeNotSystemTime {
			sa.Mtime = joinTime(attr.MTimeSeconds, attr.MTimeNanoSeconds)
		}
	}
	if valid.CTime && sa.Mask == 0 {
		sa.Mask |= vnodeops.SetCtime
		sa.Ctime = rumpcore.UtimeNow
	}
	if sa.Mask == 0 {
		return nil
	}
	if f.state.Load()&stOpened != 0 && f.oflags.Load()&syscall.O_ACCMODE != syscall.O_RDONLY {
		// ftruncate and futimens on a descriptor open for writing
		return errno(f.v.SetattrOpen(f.id.cred, sa))
	}
	return errno(f.v.Setattr(f.id.cred, sa))
}

// Close implements p9.File: it closes an opened vnode, drops the locks
// taken through this File and the vnode reference. Idempotent.
func (f *file) Close() error {
	// A File shared with xattr fids is closed once per fid; only the last
	// Close releases it.
	if f.shares.Add(-1) >= 0 {
		return nil
	}
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	if f.state.Load()&stOpened != 0 {
		if err := f.v.Close(int(f.oflags.Load())); err != nil {
			f.c.log.Debug("p9srv: vnode close", "err", err)
		}
	}
	f.lockMu.Lock()
	owners := f.owners
	f.owners = nil
	f.lockMu.Unlock()
	if len(owners) > 0 {
		key := lockKey{f.v.MountID(), f.v.Ino()}
		for o := range owners {
			f.c.srv.locks.releaseOwner(key, o)
		}
	}
	f.v.Release()
	f.c.release(f.exempt)
	return nil
}

// kernelFlags picks the flags the kernel understands from Tlopen's.
func kernelFlags(mode p9.OpenFlags) int {
	fl := int(mode & p9.OpenFlagsModeMask)
	if mode&dotlTrunc != 0 {
		fl |= syscall.O_TRUNC
	}
	if mode&dotlAppend != 0 {
		fl |= syscall.O_APPEND
	}
	return fl
}

func wantsWrite(fl int) bool {
	return fl&syscall.O_ACCMODE != syscall.O_RDONLY || fl&syscall.O_TRUNC != 0
}

// Open implements p9.File: Vnode.Open checks access and truncates.
func (f *file) Open(mode p9.OpenFlags) (p9.QID, uint32, error) {
	fl := kernelFlags(mode)
	if wantsWrite(fl) {
		if err := f.writable(); err != nil {
			return p9.QID{}, 0, err
		}
	}
	if err := f.v.Open(f.id.cred, fl); err != nil {
		return p9.QID{}, 0, errno(err)
	}
	f.markOpen(fl)
	qid := f.qid
	if fl&syscall.O_TRUNC != 0 {
		if a, err := f.v.Getattr(); err == nil {
			qid = f.c.srv.qidOf(f.v, &a)
		}
	}
	return qid, 0, nil
}

func (f *file) markOpen(fl int) {
	f.oflags.Store(int32(fl))
	st := uint32(stOpened)
	if fl&syscall.O_APPEND != 0 {
		st |= stAppend
	}
	f.state.Store(st)
}

// ReadAt implements p9.File, reading straight into the library's buffer.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, linux.EINVAL
	}
	n, err := f.v.Read(p, off)
	return n, errno(err)
}

// WriteAt implements p9.File. A file opened with O_APPEND is written at
// its end whatever off says (atomically with other appends), as pwrite(2)
// does on Linux.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if f.state.Load()&stAppend != 0 {
		n, _, err := f.v.Append(p)
		return n, errno(err)
	}
	if off < 0 {
		return 0, linux.EINVAL
	}
	n, err := f.v.Write(p, off)
	return n, errno(err)
}

// FSync implements p9.File.
func (f *file) FSync() error { return errno(f.v.Fsync(false)) }

// StatFS implements p9.File.
func (f *file) StatFS() (p9.FSStat, error) {
	st, err := f.v.Statvfs()
	if err != nil {
		return p9.FSStat{}, errno(err)
	}
	bsize := st.Frsize
	if bsize == 0 {
		bsize = st.Bsize
	}
	return p9.FSStat{
		Type:            v9fsMagic,
		BlockSize:       bsize,
		Blocks:          st.Blocks,
		BlocksFree:      st.Bfree,
		BlocksAvailable: st.Bavail,
		Files:           st.Files,
		FilesFree:       st.Ffree,
		FSID:            uint64(f.v.MountID()),
		NameLength:      st.Namemax,
	}, nil
}

// createCred is the credential a create with the client's gid uses: the
// attach's own, giving new files the client's gid (Cred.NewFileGID) when
// the caller may give it, else the directory's (NetBSD's rule): a gid is
// never granted for the asking. The client's gid is ignored under squash,
// used as given by root and under IdentityClient (AnyGroup), and by a
// caller that holds it. The permission checks of the create are the
// kernel's, with the attach's credential.
func (f *file) createCred(gid p9.GID) (vnodeops.Cred, error) {
	c := f.id.cred
	if f.id.squashed || !gid.Ok() || uint32(gid) == c.GID {
		return c, nil
	}
	use := uint32(gid)
	if !c.IsRoot() && !c.InGroup(use) {
		a, err := f.v.Getattr()
		if err != nil {
			return c, err
		}
		use = a.GID
	}
	c.NewFileGID, c.HasNewFileGID = use, true
	return c, nil
}

// prepareCreate checks what every create checks and returns the
// credential to create with.
func (f *file) prepareCreate(gid p9.GID) (vnodeops.Cred, error) {
	if err := f.writable(); err != nil {
		return vnodeops.Cred{}, err
	}
	cred, err := f.createCred(gid)
	if err != nil {
		return vnodeops.Cred{}, errno(err)
	}
	return cred, nil
}

// Create implements p9.File: the new file is opened with flags without a
// second permission check (its creator may open it whatever its mode).
func (f *file) Create(name string, flags p9.OpenFlags, perm p9.FileMode, _ p9.UID, gid p9.GID) (p9.File, p9.QID, uint32, error) {
	cred, err := f.prepareCreate(gid)
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	// Tlcreate turns the directory's fid into the new file's: the count
	// of fids does not grow, so no limit applies.
	f.c.files.Add(1)
	nf, err := f.createOpen(cred, name, perm, flags)
	if err != nil {
		f.c.release(false)
		return nil, p9.QID{}, 0, err
	}
	return nf, nf.qid, 0, nil
}

// createOpen creates and opens name; the caller has counted the File.
func (f *file) createOpen(cred vnodeops.Cred, name string, perm p9.FileMode, flags p9.OpenFlags) (*file, error) {
	v, err := f.v.Create(cred, name, uint32(perm)&vnodeops.PermMask)
	if err != nil {
		return nil, errno(err)
	}
	fl := kernelFlags(flags) &^ syscall.O_TRUNC
	if err := v.Open(vnodeops.Root, fl); err != nil {
		v.Release()
		return nil, errno(err)
	}
	a, err := v.Getattr()
	if err != nil {
		v.Close(fl)
		v.Release()
		return nil, errno(err)
	}
	nf := &file{c: f.c, v: v, id: f.id}
	nf.qid = f.c.srv.qidOf(v, &a)
	nf.markOpen(fl)
	return nf, nil
}

// made returns the QID of a vnode just made and drops its reference.
func (f *file) made(v *rumpcore.Vnode) (p9.QID, error) {
	defer v.Release()
	a, err := v.Getattr()
	if err != nil {
		return p9.QID{}, errno(err)
	}
	return f.c.srv.qidOf(v, &a), nil
}

// Mkdir implements p9.File.
func (f *file) Mkdir(name string, perm p9.FileMode, _ p9.UID, gid p9.GID) (p9.QID, error) {
	cred, err := f.prepareCreate(gid)
	if err != nil {
		return p9.QID{}, err
	}
	v, err := f.v.Mkdir(cred, name, uint32(perm)&vnodeops.PermMask)
	if err != nil {
		return p9.QID{}, errno(err)
	}
	return f.made(v)
}

// Symlink implements p9.File: newName in this directory points at oldName.
func (f *file) Symlink(oldName, newName string, _ p9.UID, gid p9.GID) (p9.QID, error) {
	cred, err := f.prepareCreate(gid)
	if err != nil {
		return p9.QID{}, err
	}
	v, err := f.v.Symlink(cred, newName, oldName)
	if err != nil {
		return p9.QID{}, errno(err)
	}
	return f.made(v)
}

// Mknod implements p9.File. mode carries the type; a driver that cannot
// store it answers EPERM.
func (f *file) Mknod(name string, mode p9.FileMode, major, minor uint32, _ p9.UID, gid p9.GID) (p9.QID, error) {
	cred, err := f.prepareCreate(gid)
	if err != nil {
		return p9.QID{}, err
	}
	v, err := f.v.Mknod(cred, name, uint32(mode), mkdev(major, minor))
	if err != nil {
		return p9.QID{}, errno(err)
	}
	return f.made(v)
}

// Link implements p9.File: target gets the name newName in this directory.
func (f *file) Link(target p9.File, newName string) error {
	if err := f.writable(); err != nil {
		return err
	}
	t, ok := target.(*file)
	if !ok {
		return linux.EINVAL
	}
	return errno(f.v.Link(f.id.cred, t.v, newName))
}

// RenameAt implements p9.File (Trenameat, and Trename through the
// library).
func (f *file) RenameAt(oldName string, newDir p9.File, newName string) error {
	if err := f.writable(); err != nil {
		return err
	}
	nd, ok := newDir.(*file)
	if !ok {
		return linux.EINVAL
	}
	return errno(f.v.Rename(f.id.cred, oldName, nd.v, newName))
}

// Rename implements p9.File; the library never calls it on a server.
func (f *file) Rename(p9.File, string) error { return linux.ENOSYS }

// Renamed implements p9.File: a File names a vnode, not a path.
func (f *file) Renamed(p9.File, string) {}

// UnlinkAt implements p9.File (Tunlinkat, and Tremove through the
// library).
func (f *file) UnlinkAt(name string, flags uint32) error {
	if err := f.writable(); err != nil {
		return err
	}
	// Tremove arrives here too, as UnlinkAt(name, 0) (hugelgupf/p9
	// v0.4.1), so a Tremove of a directory fails with EISDIR where
	// remove(5) would remove it: Tunlinkat's rule, which Linux relies on,
	// wins, and the two cannot be told apart here. Linux removes
	// directories with Tunlinkat(AT_REMOVEDIR).
	return errno(f.v.Unlink(f.id.cred, name, flags&atRemoveDir != 0))
}

// Readdir implements p9.File. count is the byte budget of Rreaddir's
// entries (the library drops what does not fit), so Readdir returns only
// entries that fit; each entry's offset is the vnode's resumable cookie and
// offset 0 starts over. EINVAL when not even the first entry fits.
func (f *file) Readdir(offset uint64, count uint32) (p9.Dirents, error) {
	var out p9.Dirents
	used := 0
	tooSmall := false
	mount := f.v.MountID()
	err := f.v.Readdir(offset, func(d vnodeops.Dirent) bool {
		sz := direntOverhead + len(d.Name)
		if used+sz > int(count) {
			tooSmall = len(out) == 0
			return false
		}
		used += sz
		out = append(out, p9.Dirent{
			QID: p9.QID{
				Type:    qidTypeOfDT(d.Type),
				Version: 1,
				Path:    f.c.srv.qidPath(mount, d.Ino),
			},
			Offset: d.Next,
			Type:   p9.QIDType(d.Type),
			Name:   d.Name,
		})
		return true
	})
	if err != nil && len(out) == 0 {
		return nil, errno(err)
	}
	if tooSmall {
		return nil, linux.EINVAL
	}
	return out, nil
}

// Readlink implements p9.File.
func (f *file) Readlink() (string, error) {
	s, err := f.v.Readlink()
	return s, errno(err)
}

// Lock implements p9.File with the server's lock table: never blocks, a
// conflict answers LockStatusBlocked (Linux retries a blocking request).
// The owner is (connection, client, pid); closing this File drops the
// locks its owners took on the file.
//
// A Tgetlock arrives here as a Tlock whose client carries the
// connection's marker (getlock.go): it only tests the table.
func (f *file) Lock(pid int, typ p9.LockType, _ p9.LockFlags, start, length uint64, client string) (p9.LockStatus, error) {
	key := lockKey{f.v.MountID(), f.v.Ino()}
	tag, real, isTest := f.c.parseGetlockClient(client)
	if isTest {
		client = real
	}
	owner := lockOwner{conn: f.c.id, pid: int32(pid), client: client}
	end := lockEnd(start, length)
	if isTest {
		res := getlockResult{typ: p9.Unlock}
		if typ == p9.ReadLock || typ == p9.WriteLock {
			res = f.c.srv.locks.testLock(key, owner, typ == p9.WriteLock, start, end)
		}
		f.c.keepGetlock(tag, res)
		return p9.LockStatusOK, nil
	}
	switch typ {
	case p9.Unlock:
		f.c.srv.locks.unlock(key, owner, start, end)
		return p9.LockStatusOK, nil
	case p9.ReadLock, p9.WriteLock:
		if !f.c.srv.locks.lock(key, owner, typ == p9.WriteLock, start, end) {
			return p9.LockStatusBlocked, nil
		}
		f.lockMu.Lock()
		if f.owners == nil {
			f.owners = make(map[lockOwner]struct{})
		}
		f.owners[owner] = struct{}{}
		f.lockMu.Unlock()
		return p9.LockStatusOK, nil
	}
	return p9.LockStatusError, linux.EINVAL
}

// Extended attributes. The library turns Txattrwalk errors into EINVAL,
// so the codes of GetXattr and ListXattrs reach the client as EINVAL;
// those of SetXattr and RemoveXattr reach it at Tclunk: Txattrcreate
// turns a fid (Linux clones one first) into an xattr-write fid, the value
// arrives by Twrite into the library's buffer (at most 64 KiB plus one
// byte, see frameReader), and Tclunk commits it. A Txattrcreate of size
// 0 with flags XATTR_REPLACE is removexattr(2), as Linux's v9fs sends it.

// GetXattr implements p9.File with the driver's attributes. On success
// the library makes a second fid that shares this File (and will Close it
// too), so success adds a share that Close gives back.
func (f *file) GetXattr(name string) ([]byte, error) {
	val, err := f.v.Getxattr(f.id.cred, name)
	if err != nil {
		return nil, errno(err)
	}
	f.shares.Add(1)
	return val, nil
}

// ListXattrs implements p9.File. An empty list must fail: the library
// would send it as one empty name. Success adds a share, as GetXattr.
func (f *file) ListXattrs() ([]string, error) {
	names, err := f.v.Listxattr(f.id.cred)
	if err != nil {
		return nil, errno(err)
	}
	if len(names) == 0 {
		return nil, linux.ENODATA
	}
	f.shares.Add(1)
	return names, nil
}

// SetXattr implements p9.File: the kernel's Setxattr at the Tclunk of an
// xattr-write fid.
func (f *file) SetXattr(name string, value []byte, flags p9.XattrFlags) error {
	if err := f.writable(); err != nil {
		return err
	}
	return errno(f.v.Setxattr(f.id.cred, name, value, int(flags)))
}

// RemoveXattr implements p9.File.
func (f *file) RemoveXattr(name string) error {
	if err := f.writable(); err != nil {
		return err
	}
	return errno(f.v.Removexattr(f.id.cred, name))
}
