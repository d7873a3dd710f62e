package p2k

import (
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// Linux renameat2 flags as RENAME2 carries them.
const (
	renameNoReplace = 1 << 0
	renameExchange  = 1 << 1
)

// openFlags are the open(2) flags passed on to Vnode.Open; the host
// kernel strips O_CREAT, O_EXCL and O_NOCTTY, and handles O_TRUNC with a
// SETATTR before OPEN.
const openFlags = syscall.O_ACCMODE | syscall.O_APPEND | syscall.O_SYNC | syscall.O_DSYNC

// withNode runs fn on a reference to the vnode of node id.
func (s *Server) withNode(id uint64, fn func(v *rumpcore.Vnode) fuse.Status) fuse.Status {
	v, st := s.vnode(id)
	if !st.Ok() {
		return st
	}
	defer v.Release()
	return fn(v)
}

// Lookup implements fuse.RawFileSystem.
func (s *Server) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return s.withNode(h.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		v, err := dir.Lookup(s.cred(h), name)
		if err != nil {
			return status(err)
		}
		return s.entry(v, out)
	})
}

// GetAttr implements fuse.RawFileSystem.
func (s *Server) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return s.withNode(in.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		return s.attrOut(v, out)
	})
}

func (s *Server) attrOut(v *rumpcore.Vnode, out *fuse.AttrOut) fuse.Status {
	a, err := v.Getattr()
	if err != nil {
		return status(err)
	}
	s.fillAttr(v, &a, &out.Attr)
	out.SetTimeout(s.opts.AttrTimeout)
	return fuse.OK
}

// SetAttr implements fuse.RawFileSystem: chmod, chown, truncate and
// utimens. A size change through a handle opened for writing needs no
// write permission (ftruncate).
func (s *Server) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return s.withNode(in.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		cred := s.cred(&in.InHeader)
		var sa vnodeops.SetAttr
		if in.Valid&fuse.FATTR_MODE != 0 {
			sa.Mask |= vnodeops.SetMode
			sa.Mode = in.Mode & vnodeops.PermMask
		}
		if in.Valid&fuse.FATTR_UID != 0 {
			sa.Mask |= vnodeops.SetUID
			sa.UID = in.Uid
		}
		if in.Valid&fuse.FATTR_GID != 0 {
			sa.Mask |= vnodeops.SetGID
			sa.GID = in.Gid
		}
		if t, ok := setTime(in.Valid, fuse.FATTR_ATIME, fuse.FATTR_ATIME_NOW, in.Atime, in.Atimensec); ok {
			sa.Mask |= vnodeops.SetAtime
			sa.Atime = t
		}
		if t, ok := setTime(in.Valid, fuse.FATTR_MTIME, fuse.FATTR_MTIME_NOW, in.Mtime, in.Mtimensec); ok {
			sa.Mask |= vnodeops.SetMtime
			sa.Mtime = t
		}
		if in.Valid&fuse.FATTR_SIZE != 0 {
			size := vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: in.Size}
			sizeCred := cred
			if fh, ok := in.GetFh(); ok {
				if hd := s.getHandle(fh); hd != nil && hd.flags&syscall.O_ACCMODE != syscall.O_RDONLY {
					sizeCred = vnodeops.Root // write access was checked at open
				}
			}
			if err := v.Setattr(sizeCred, size); err != nil {
				return status(err)
			}
		}
		if sa.Mask != 0 {
			if err := v.Setattr(cred, sa); err != nil {
				return status(err)
			}
		}
		return s.attrOut(v, out)
	})
}

// setTime reads one time of SETATTR: the kernel's "now" when the
// nowBit is set, the given time when setBit is, else ok is false.
func setTime(valid, setBit, nowBit uint32, sec uint64, nsec uint32) (t int64, ok bool) {
	switch {
	case valid&nowBit != 0:
		return rumpcore.UtimeNow, true
	case valid&setBit != 0:
		return int64(sec)*1e9 + int64(nsec), true
	}
	return 0, false
}

// Access implements fuse.RawFileSystem (access(2), chdir without
// default_permissions).
func (s *Server) Access(_ <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	return s.withNode(in.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		want := in.Mask & (vnodeops.AccessRead | vnodeops.AccessWrite | vnodeops.AccessExec)
		if want == 0 {
			return fuse.OK
		}
		return status(v.Access(s.cred(&in.InHeader), want))
	})
}

// Mknod implements fuse.RawFileSystem.
func (s *Server) Mknod(_ <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return s.withNode(in.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		v, err := dir.Mknod(s.cred(&in.InHeader), name, in.Mode, uint64(in.Rdev))
		if err != nil {
			return status(err)
		}
		return s.entry(v, out)
	})
}

// Mkdir implements fuse.RawFileSystem.
func (s *Server) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return s.withNode(in.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		v, err := dir.Mkdir(s.cred(&in.InHeader), name, in.Mode&vnodeops.PermMask)
		if err != nil {
			return status(err)
		}
		return s.entry(v, out)
	})
}

// Symlink implements fuse.RawFileSystem: linkName in the directory points
// at target.
func (s *Server) Symlink(_ <-chan struct{}, h *fuse.InHeader, target, linkName string, out *fuse.EntryOut) fuse.Status {
	return s.withNode(h.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		v, err := dir.Symlink(s.cred(h), linkName, target)
		if err != nil {
			return status(err)
		}
		return s.entry(v, out)
	})
}

// Link implements fuse.RawFileSystem.
func (s *Server) Link(_ <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	target, st := s.vnode(in.Oldnodeid)
	if !st.Ok() {
		return st
	}
	st = s.withNode(in.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		return status(dir.Link(s.cred(&in.InHeader), target, name))
	})
	if !st.Ok() {
		target.Release()
		return st
	}
	return s.entry(target, out)
}

// Unlink implements fuse.RawFileSystem.
func (s *Server) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return s.withNode(h.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		return status(dir.Unlink(s.cred(h), name, false))
	})
}

// Rmdir implements fuse.RawFileSystem.
func (s *Server) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return s.withNode(h.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		return status(dir.Unlink(s.cred(h), name, true))
	})
}

// Rename implements fuse.RawFileSystem (RENAME and RENAME2).
func (s *Server) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	if in.Flags&^renameNoReplace != 0 {
		return fuse.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT: the kernel has no such call
	}
	newDir, st := s.vnode(in.Newdir)
	if !st.Ok() {
		return st
	}
	defer newDir.Release()
	return s.withNode(in.NodeId, func(dir *rumpcore.Vnode) fuse.Status {
		cred := s.cred(&in.InHeader)
		if in.Flags&renameNoReplace != 0 {
			switch t, err := newDir.Lookup(cred, newName); {
			case err == nil:
				t.Release()
				return fuse.Status(syscall.EEXIST)
			case err != syscall.ENOENT:
				return status(err)
			}
		}
		return status(dir.Rename(cred, oldName, newDir, newName))
	})
}

// Readlink implements fuse.RawFileSystem.
func (s *Server) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	var target string
	st := s.withNode(h.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		t, err := v.Readlink()
		target = t
		return status(err)
	})
	return []byte(target), st
}

// GetXAttr implements fuse.RawFileSystem: an empty dest asks for the size.
func (s *Server) GetXAttr(_ <-chan struct{}, h *fuse.InHeader, name string, dest []byte) (uint32, fuse.Status) {
	var val []byte
	st := s.withNode(h.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		b, err := v.Getxattr(s.cred(h), name)
		val = b
		return status(err)
	})
	return copyOut(dest, val, st)
}

// ListXAttr implements fuse.RawFileSystem: NUL-terminated names.
func (s *Server) ListXAttr(_ <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	var list []byte
	st := s.withNode(h.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		names, err := v.Listxattr(s.cred(h))
		if err == syscall.EOPNOTSUPP {
			return fuse.OK // no attributes: an empty list, as Linux gives
		}
		if len(names) > 0 {
			list = []byte(strings.Join(names, "\x00") + "\x00")
		}
		return status(err)
	})
	return copyOut(dest, list, st)
}

// copyOut answers an xattr request: the size alone for an empty dest,
// ERANGE when dest is too small.
func copyOut(dest, val []byte, st fuse.Status) (uint32, fuse.Status) {
	switch {
	case !st.Ok():
		return 0, st
	case len(dest) == 0:
		return uint32(len(val)), fuse.OK
	case len(dest) < len(val):
		return 0, fuse.ERANGE
	}
	return uint32(copy(dest, val)), fuse.OK
}

// SetXAttr implements fuse.RawFileSystem: setxattr(2) with its flags
// (XATTR_CREATE, XATTR_REPLACE), under the kernel's rules.
func (s *Server) SetXAttr(_ <-chan struct{}, in *fuse.SetXAttrIn, name string, data []byte) fuse.Status {
	return s.withNode(in.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		return status(v.Setxattr(s.cred(&in.InHeader), name, data, int(in.Flags)))
	})
}

// RemoveXAttr implements fuse.RawFileSystem.
func (s *Server) RemoveXAttr(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return s.withNode(h.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		return status(v.Removexattr(s.cred(h), name))
	})
}

// openOut registers an opened vnode as a handle and fills out.
func (s *Server) openOut(v *rumpcore.Vnode, fl int, hostFlags uint32, out *fuse.OpenOut) fuse.Status {
	fh, st := s.newHandle(&handle{v: v, flags: fl})
	if !st.Ok() {
		v.Close(fl)
		v.Release()
		return st
	}
	out.Fh = fh
	if hostFlags&syscall.O_DIRECT != 0 {
		out.OpenFlags |= fuse.FOPEN_DIRECT_IO
	}
	return fuse.OK
}

// Create implements fuse.RawFileSystem: the new file is opened without a
// second permission check. Without O_EXCL an existing file is opened.
func (s *Server) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	dir, st := s.vnode(in.NodeId)
	if !st.Ok() {
		return st
	}
	defer dir.Release()
	cred := s.cred(&in.InHeader)
	fl := int(in.Flags) & openFlags
	v, err := dir.Create(cred, name, in.Mode&vnodeops.PermMask)
	openCred := vnodeops.Root
	if err == syscall.EEXIST && in.Flags&syscall.O_EXCL == 0 {
		v, err = dir.Lookup(cred, name)
		openCred = cred
	}
	if err != nil {
		return status(err)
	}
	if err := v.Open(openCred, fl); err != nil {
		v.Release()
		return status(err)
	}
	if st := s.entry(v.Ref(), &out.EntryOut); !st.Ok() {
		v.Close(fl)
		v.Release()
		return st
	}
	return s.openOut(v, fl, in.Flags, &out.OpenOut)
}

// Open implements fuse.RawFileSystem.
func (s *Server) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	v, st := s.vnode(in.NodeId)
	if !st.Ok() {
		return st
	}
	fl := int(in.Flags) & openFlags
	if err := v.Open(s.cred(&in.InHeader), fl); err != nil {
		v.Release()
		return status(err)
	}
	return s.openOut(v, fl, in.Flags, out)
}

// Read implements fuse.RawFileSystem.
func (s *Server) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	h := s.getHandle(in.Fh)
	if h == nil {
		return nil, fuse.EBADF
	}
	if int(in.Size) < len(buf) {
		buf = buf[:in.Size]
	}
	n, err := h.v.Read(buf, int64(in.Offset))
	if err != nil {
		return nil, status(err)
	}
	return fuse.ReadResultData(buf[:n]), fuse.OK
}

// Write implements fuse.RawFileSystem. A handle opened with O_APPEND
// writes at the end of the file, atomically with other appends.
func (s *Server) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	h := s.getHandle(in.Fh)
	if h == nil {
		return 0, fuse.EBADF
	}
	var n int
	var err error
	if h.flags&syscall.O_APPEND != 0 {
		n, _, err = h.v.Append(data)
	} else {
		n, err = h.v.Write(data, int64(in.Offset))
	}
	if err != nil && n == 0 {
		return 0, status(err)
	}
	return uint32(n), fuse.OK
}

// Flush implements fuse.RawFileSystem: close(2) of one descriptor drops
// the POSIX locks its process holds on the file.
func (s *Server) Flush(_ <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	h := s.getHandle(in.Fh)
	if h == nil {
		return fuse.OK
	}
	s.locks.releaseOwner(lockFile{keyOf(h.v), false}, in.LockOwner)
	return fuse.OK
}

// Fsync implements fuse.RawFileSystem.
func (s *Server) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return s.fsync(in)
}

// FsyncDir implements fuse.RawFileSystem.
func (s *Server) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return s.fsync(in)
}

func (s *Server) fsync(in *fuse.FsyncIn) fuse.Status {
	h := s.getHandle(in.Fh)
	if h == nil {
		return s.withNode(in.NodeId, func(v *rumpcore.Vnode) fuse.Status {
			return status(v.Fsync(in.FsyncFlags&1 != 0))
		})
	}
	return status(h.v.Fsync(in.FsyncFlags&1 != 0))
}

// Release implements fuse.RawFileSystem.
func (s *Server) Release(_ <-chan struct{}, in *fuse.ReleaseIn) {
	h := s.takeHandle(in.Fh)
	if h == nil {
		return
	}
	if in.ReleaseFlags&fuse.FUSE_RELEASE_FLOCK_UNLOCK != 0 {
		s.locks.releaseOwner(lockFile{keyOf(h.v), true}, in.LockOwner)
	}
	h.close()
}

// OpenDir implements fuse.RawFileSystem.
func (s *Server) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	v, st := s.vnode(in.NodeId)
	if !st.Ok() {
		return st
	}
	a, err := v.Getattr()
	if err == nil && !a.IsDir() {
		err = syscall.ENOTDIR
	}
	if err == nil {
		err = v.Open(s.cred(&in.InHeader), syscall.O_RDONLY)
	}
	if err != nil {
		v.Release()
		return status(err)
	}
	return s.openOut(v, syscall.O_RDONLY, 0, out)
}

// ReleaseDir implements fuse.RawFileSystem.
func (s *Server) ReleaseDir(in *fuse.ReleaseIn) {
	if h := s.takeHandle(in.Fh); h != nil {
		h.close()
	}
}

// ReadDir implements fuse.RawFileSystem. The offset of each entry is the
// kernel's resumable cookie; 0 starts over.
func (s *Server) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	h := s.getHandle(in.Fh)
	if h == nil {
		return fuse.EBADF
	}
	mount := h.v.MountID()
	added := 0
	err := h.v.Readdir(in.Offset, func(d vnodeops.Dirent) bool {
		ok := out.AddDirEntry(fuse.DirEntry{
			Name: d.Name,
			Ino:  s.hostIno(mount, d.Ino),
			Mode: uint32(d.Type) << 12,
			Off:  d.Next,
		})
		if ok {
			added++
		}
		return ok
	})
	if err != nil && added == 0 {
		return status(err)
	}
	return fuse.OK
}

// direntPlusSize is what one READDIRPLUS entry takes: fuse_entry_out,
// fuse_dirent and the name padded to 8 bytes.
func direntPlusSize(name string) int {
	return 128 + 24 + (len(name)+7)&^7
}

// ReadDirPlus implements fuse.RawFileSystem: each entry but "." and ".."
// comes with its node and attributes, counting a lookup.
func (s *Server) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	h := s.getHandle(in.Fh)
	if h == nil {
		return fuse.EBADF
	}
	// Gather what fits first, then look the names up outside Readdir.
	var ents []vnodeops.Dirent
	used := 0
	err := h.v.Readdir(in.Offset, func(d vnodeops.Dirent) bool {
		sz := direntPlusSize(d.Name)
		if used+sz > int(in.Size) {
			return false
		}
		used += sz
		ents = append(ents, d)
		return true
	})
	if err != nil && len(ents) == 0 {
		return status(err)
	}
	cred := s.cred(&in.InHeader)
	mount := h.v.MountID()
	for _, d := range ents {
		e := fuse.DirEntry{Name: d.Name, Ino: s.hostIno(mount, d.Ino), Mode: uint32(d.Type) << 12, Off: d.Next}
		var child *rumpcore.Vnode
		if d.Name != "." && d.Name != ".." {
			if c, err := h.v.Lookup(cred, d.Name); err == nil {
				child = c
				e.Ino = s.hostIno(c.MountID(), c.Ino())
			}
		}
		eo := out.AddDirLookupEntry(e)
		if eo == nil {
			if child != nil {
				child.Release()
			}
			break
		}
		if child != nil && !s.entry(child, eo).Ok() {
			*eo = fuse.EntryOut{} // node ID 0: the host kernel takes no lookup
		}
	}
	return fuse.OK
}

// StatFs implements fuse.RawFileSystem.
func (s *Server) StatFs(_ <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return s.withNode(h.NodeId, func(v *rumpcore.Vnode) fuse.Status {
		st, err := v.Statvfs()
		if err != nil {
			return status(err)
		}
		*out = fuse.StatfsOut{
			Blocks:  st.Blocks,
			Bfree:   st.Bfree,
			Bavail:  st.Bavail,
			Files:   st.Files,
			Ffree:   st.Ffree,
			Bsize:   st.Bsize,
			NameLen: st.Namemax,
			Frsize:  st.Frsize,
		}
		if out.Frsize == 0 {
			out.Frsize = out.Bsize
		}
		return fuse.OK
	})
}
