package ffs

import (
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// symlinkMax is the longest symbolic link target (Linux's PATH_MAX - 1).
const symlinkMax = 4095

// asNode returns the driver's vnode behind a Vnode of this file system.
func (v *vnode) asNode(o vnodeops.Vnode) (*vnode, error) {
	n, ok := o.(*vnode)
	if !ok || n.fs != v.fs {
		return nil, syscall.EXDEV
	}
	return n, nil
}

// checkDirChange returns why this directory cannot take a change: EROFS,
// ENOTDIR, EPERM when immutable (or, for a removal, append-only).
func (v *vnode) checkDirChange(removal bool) error {
	if err := v.checkWritable(removal); err != nil {
		return err
	}
	if !v.isDir() {
		return syscall.ENOTDIR
	}
	return nil
}

// touchDir sets a directory's mtime and ctime and writes its inode.
func (v *vnode) touchDir() error {
	now := v.nowSpec()
	v.di.setMtime(now)
	v.di.setCtime(now)
	return v.fs.writeInode(v)
}

// makeNode makes a new inode of mode named name in this directory,
// runs init on it (blocks, link target, device number) and enters it.
// The new inode reaches the image before the entry naming it.
func (v *vnode) makeNode(name string, mode, uid, gid uint32, init func(nv *vnode) error) (uint64, error) {
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.checkDirChange(false); err != nil {
		return 0, err
	}
	if len(name) > maxNameLen {
		return 0, syscall.ENAMETOOLONG
	}
	_, ref, ok, err := v.lookupLocked(name)
	if err != nil {
		return 0, err
	}
	if ok {
		ref.buf.Release()
		return 0, syscall.EEXIST
	}
	isDir := mode&vnodeops.S_IFMT == vnodeops.S_IFDIR
	if isDir && v.di.nlink() >= ufsLinkMax {
		return 0, syscall.EMLINK
	}
	ino, d, err := fs.allocInode(v.ino, isDir)
	if err != nil {
		return 0, err
	}
	nv := &vnode{fs: fs, ino: ino, di: d}
	now := v.nowSpec()
	d.setMode(uint16(mode))
	d.setNlink(1)
	d.setUID(uid)
	d.setGID(gid)
	d.setAtime(now)
	d.setMtime(now)
	d.setCtime(now)
	d.setBirthtime(now)
	undo := func(err error) (uint64, error) {
		nv.di.setNlink(0)
		nv.freeLocked()
		return 0, err
	}
	if init != nil {
		if err := init(nv); err != nil {
			return undo(err)
		}
	}
	if err := fs.writeInode(nv); err != nil {
		return undo(err)
	}
	blk, _ := fs.inodeBlock(ino)
	if err := fs.cache.Flush(blk); err != nil {
		return undo(errno(err))
	}
	if err := v.addEntry(name, ino, vnodeops.DTFromMode(mode)); err != nil {
		return undo(err)
	}
	if isDir {
		v.di.setNlink(v.di.nlink() + 1)
	}
	return ino, v.touchDir()
}

// Create implements vnodeops.Writer.
func (v *vnode) Create(name string, perm, uid, gid uint32) (uint64, error) {
	return v.makeNode(name, vnodeops.S_IFREG|perm&vnodeops.PermMask, uid, gid, nil)
}

// Mkdir implements vnodeops.Writer: the new directory's first chunk holds
// "." and "..", and is written before the inode that points to it.
func (v *vnode) Mkdir(name string, perm, uid, gid uint32) (uint64, error) {
	return v.makeNode(name, vnodeops.S_IFDIR|perm&vnodeops.PermMask, uid, gid, func(nv *vnode) error {
		fs := nv.fs
		sb := fs.sb
		nv.di.setNlink(2)
		a, err := nv.allocBlock(0, dirBlkSize)
		if err != nil {
			return err
		}
		b, err := fs.cache.Get(a >> sb.fragshift)
		if err != nil {
			return fs.corrupt(nv.ino, "reading block %d: %v", a, err)
		}
		chunk := b.Data()[(a&(sb.frag-1))<<sb.fshift:][:dirBlkSize]
		encodeDirent(sb.bo, sb.oldDirFormat, chunk, 0, uint32(nv.ino), 12, vnodeops.DT_DIR, ".")
		encodeDirent(sb.bo, sb.oldDirFormat, chunk, 12, uint32(v.ino), dirBlkSize-12, vnodeops.DT_DIR, "..")
		b.MarkDirty()
		err = fs.cache.WriteBuf(b)
		b.Release()
		nv.di.setSize(dirBlkSize)
		nv.di.setBlksize(uint32(sb.blkSize(dirBlkSize, 0)))
		return errno(err)
	})
}

// Symlink implements vnodeops.Symlinker: a target shorter than
// fs_maxsymlinklen lives in the inode, a longer one in blocks.
func (v *vnode) Symlink(name, target string, uid, gid uint32) (uint64, error) {
	if len(target) > symlinkMax {
		return 0, syscall.ENAMETOOLONG
	}
	return v.makeNode(name, vnodeops.S_IFLNK|0o777, uid, gid, func(nv *vnode) error {
		if int64(len(target)) < nv.fs.sb.maxsymlinklen {
			copy(nv.di.shortLink(), target)
			nv.di.setSize(uint64(len(target)))
			return nil
		}
		_, err := nv.writeLocked([]byte(target), 0)
		return err
	})
}

// Mknod implements vnodeops.Mknoder: device nodes keep their number in
// the first block pointer, in Linux's dev_t encoding (cut to 32 bits on
// UFS1: EINVAL for a bigger one).
func (v *vnode) Mknod(name string, mode, uid, gid uint32, rdev uint64) (uint64, error) {
	switch mode & vnodeops.S_IFMT {
	case vnodeops.S_IFREG, vnodeops.S_IFIFO, vnodeops.S_IFSOCK:
		rdev = 0
	case vnodeops.S_IFCHR, vnodeops.S_IFBLK:
		if rdev > 1<<32-1 && !v.fs.sb.ufs2 {
			return 0, syscall.EINVAL
		}
	default:
		return 0, syscall.EPERM
	}
	return v.makeNode(name, mode&(vnodeops.S_IFMT|vnodeops.PermMask), uid, gid, func(nv *vnode) error {
		nv.di.setRdev(rdev)
		return nil
	})
}

// withTarget runs fn, holding fs.mu exclusively, on the vnode behind vp
// once this directory may take the change (removal: an append-only
// directory may not) and vp may be changed (neither immutable nor
// append-only).
func (v *vnode) withTarget(vp vnodeops.Vnode, removal bool, fn func(tv *vnode) error) error {
	tv, err := v.asNode(vp)
	if err != nil {
		return err
	}
	v.fs.mu.Lock()
	defer v.fs.mu.Unlock()
	if err := v.checkDirChange(removal); err != nil {
		return err
	}
	if err := tv.checkWritable(true); err != nil {
		return err
	}
	return fn(tv)
}

// unlinkLocked removes the entry name, which names tv, and gives tv the
// link count nlink.
func (v *vnode) unlinkLocked(name string, tv *vnode, nlink uint16) error {
	if _, err := v.removeEntry(name); err != nil {
		return err
	}
	tv.di.setNlink(nlink)
	tv.di.setCtime(v.nowSpec())
	return v.fs.writeInode(tv)
}

// Link implements vnodeops.Linker. The link count is raised before the
// entry is written.
func (v *vnode) Link(vp vnodeops.Vnode, name string) error {
	return v.withTarget(vp, false, func(tv *vnode) error {
		if tv.isDir() {
			return syscall.EPERM
		}
		if tv.di.nlink() >= ufsLinkMax {
			return syscall.EMLINK
		}
		_, ref, ok, err := v.lookupLocked(name)
		if err != nil {
			return err
		}
		if ok {
			ref.buf.Release()
			return syscall.EEXIST
		}
		tv.di.setNlink(tv.di.nlink() + 1)
		tv.di.setCtime(v.nowSpec())
		if err := v.fs.writeInode(tv); err != nil {
			return err
		}
		if err := v.addEntry(name, tv.ino, vnodeops.DTFromMode(tv.typ())); err != nil {
			tv.di.setNlink(tv.di.nlink() - 1)
			v.fs.writeInode(tv)
			return err
		}
		return v.touchDir()
	})
}

// Remove implements vnodeops.Writer.
func (v *vnode) Remove(name string, vp vnodeops.Vnode) error {
	return v.withTarget(vp, true, func(tv *vnode) error {
		if tv.isDir() {
			return syscall.EISDIR
		}
		if err := v.unlinkLocked(name, tv, tv.di.nlink()-1); err != nil {
			return err
		}
		return v.touchDir()
	})
}

// Rmdir implements vnodeops.Writer. The directory's blocks are freed by
// Inactive once the kernel lets it go.
func (v *vnode) Rmdir(name string, vp vnodeops.Vnode) error {
	return v.withTarget(vp, true, func(tv *vnode) error {
		if !tv.isDir() {
			return syscall.ENOTDIR
		}
		empty, err := tv.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return syscall.ENOTEMPTY
		}
		if err := v.unlinkLocked(name, tv, 0); err != nil {
			return err
		}
		if v.di.nlink() > 0 {
			v.di.setNlink(v.di.nlink() - 1)
		}
		return v.touchDir()
	})
}

// Rename implements vnodeops.Writer: the new name is entered (or
// repointed) before the old one goes; a moved directory's ".." follows
// it, and the parents' link counts with it.
func (v *vnode) Rename(fromName string, fvp vnodeops.Vnode, toDir vnodeops.Vnode, toName string, tvp vnodeops.Vnode) error {
	fv, err := v.asNode(fvp)
	if err != nil {
		return err
	}
	td, err := v.asNode(toDir)
	if err != nil {
		return err
	}
	var tv *vnode
	if tvp != nil {
		if tv, err = v.asNode(tvp); err != nil {
			return err
		}
	}
	fs := v.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := v.checkDirChange(true); err != nil {
		return err
	}
	if err := td.checkDirChange(tv != nil); err != nil {
		return err
	}
	if err := fv.checkWritable(true); err != nil {
		return err
	}
	if tv != nil {
		if err := tv.checkWritable(true); err != nil {
			return err
		}
	}
	if len(toName) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	isDir := fv.isDir()
	moved := isDir && v != td
	if moved && tv == nil && td.di.nlink() >= ufsLinkMax {
		return syscall.EMLINK
	}
	typ := vnodeops.DTFromMode(fv.typ())
	if tv != nil {
		if err := td.setEntry(toName, fv.ino, typ); err != nil {
			return err
		}
		if tv.isDir() {
			tv.di.setNlink(0)
			td.di.setNlink(td.di.nlink() - 1)
		} else {
			tv.di.setNlink(tv.di.nlink() - 1)
		}
		tv.di.setCtime(v.nowSpec())
		if err := fs.writeInode(tv); err != nil {
			return err
		}
	} else if err := td.addEntry(toName, fv.ino, typ); err != nil {
		return err
	}
	if _, err := v.removeEntry(fromName); err != nil {
		return err
	}
	if moved {
		if err := fv.setEntry("..", td.ino, vnodeops.DT_DIR); err != nil {
			return err
		}
		td.di.setNlink(td.di.nlink() + 1)
		v.di.setNlink(v.di.nlink() - 1)
	}
	fv.di.setCtime(v.nowSpec())
	if err := fs.writeInode(fv); err != nil {
		return err
	}
	if err := td.touchDir(); err != nil {
		return err
	}
	return v.touchDir()
}
