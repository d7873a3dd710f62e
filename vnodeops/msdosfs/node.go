package msdosfs

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

var (
	_ vnodeops.ReadWriteVnode = (*node)(nil)
	_ vnodeops.FS             = (*fsys)(nil)
)

// node is a live vnode: a file or directory the kernel holds.
type node struct {
	fs   *fsys
	ino  uint64
	dir  bool
	root bool
	p    pos      // position of the short entry; unused for the root
	de   rawEntry // copy of the short entry, written through on change

	clusters []uint32 // a file's chain, valid when loaded
	loaded   bool
	unlinked bool // its entry is gone; storage freed at Inactive
	freed    bool
}

// key is the directory key of a directory node: its first cluster, 0 for
// the root.
func (n *node) key() uint32 {
	if n.root {
		return 0
	}
	return n.de.firstCluster(n.fs.g.fatType == fat32)
}

func (n *node) firstCluster() uint32 { return n.de.firstCluster(n.fs.g.fatType == fat32) }

func (n *node) what() string {
	if n.root {
		return "root directory"
	}
	return fmt.Sprintf("file %s (ino %#x)", shortDisplay(n.de[:11], n.de[12]), n.ino)
}

// writeEntry writes n's short entry back to its directory.
func (n *node) writeEntry() error {
	if n.root || n.unlinked {
		return nil
	}
	return n.fs.writeSlot(n.p.dir, n.p.slot, &n.de)
}

// loadChain loads a file's cluster chain and checks it against the size.
func (n *node) loadChain() error {
	if n.loaded {
		return nil
	}
	fs := n.fs
	ch, err := fs.chain(n.firstCluster(), n.what())
	if err != nil {
		return err
	}
	need := (uint64(n.de.size()) + uint64(fs.g.clusterSize) - 1) / uint64(fs.g.clusterSize)
	if uint64(len(ch)) < need {
		return fs.corrupt("%s: size %d but only %d clusters", n.what(), n.de.size(), len(ch))
	}
	n.clusters, n.loaded = ch, true
	return nil
}

// fileIno returns the inode number of the file whose short entry is at p.
func (fs *fsys) fileIno(p pos) uint64 {
	if ino, ok := fs.posIno[p]; ok {
		return ino
	}
	c := p.natural()
	_, taken := fs.alias[c]
	if !taken {
		if ln, ok := fs.live[c]; ok && (ln.unlinked || ln.p != p || ln.dir) {
			taken = true
		}
	}
	if !taken {
		return c
	}
	s := fs.nextSynth
	fs.nextSynth++
	fs.alias[s] = p
	fs.posIno[p] = s
	return s
}

// forgetPos drops the inode record of the file at p (its entry is gone).
func (fs *fsys) forgetPos(p pos) {
	if ino, ok := fs.posIno[p]; ok {
		delete(fs.alias, ino)
		delete(fs.posIno, p)
	}
}

// inoOf returns the inode number of the entry d of directory dir.
func (fs *fsys) inoOf(dir uint32, d *dentry) (uint64, error) {
	if d.raw.isDir() {
		c := d.raw.firstCluster(fs.g.fatType == fat32)
		if c < 2 || c > fs.g.maxCluster() || (fs.g.fatType == fat32 && c == fs.g.rootClus) {
			return 0, fs.corrupt("directory %q has first cluster %d", d.name(), c)
		}
		return dirInoBase + uint64(c), nil
	}
	return fs.fileIno(pos{dir, d.slot}), nil
}

// VGet returns the vnode of ino, reading its directory entry.
func (fs *fsys) VGet(ino uint64) (vnodeops.Vnode, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.unmounted {
		return nil, syscall.EIO
	}
	if n, ok := fs.live[ino]; ok {
		return n, nil
	}
	var n *node
	var err error
	switch {
	case ino == rootIno:
		n = &node{fs: fs, ino: ino, dir: true, root: true}
	case ino >= dirInoBase && ino < synthInoBase:
		n, err = fs.loadDir(ino)
	default:
		n, err = fs.loadFile(ino)
	}
	if err != nil {
		return nil, err
	}
	fs.live[ino] = n
	return n, nil
}

func (fs *fsys) loadFile(ino uint64) (*node, error) {
	p, ok := fs.alias[ino]
	if !ok {
		if ino >= synthInoBase || ino < fileInoBase {
			return nil, syscall.ENOENT
		}
		v := ino - fileInoBase
		p = pos{dir: uint32(v >> 16), slot: uint32(v & 0xFFFF)}
		if other, ok := fs.posIno[p]; ok && other != ino {
			return nil, syscall.ENOENT
		}
		if p.dir != 0 && (p.dir < 2 || p.dir > fs.g.maxCluster()) {
			return nil, syscall.ENOENT
		}
	}
	e, err := fs.readSlot(p.dir, p.slot)
	if err == syscall.ENOENT {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if e[0] == slotEnd || e[0] == slotFree || e.attr()&attrLongMask == attrLongName ||
		e.attr()&attrVolumeID != 0 || e.isDir() || isDotEntry(e[:11]) {
		return nil, syscall.ENOENT
	}
	return &node{fs: fs, ino: ino, p: p, de: e}, nil
}

// loadDir finds the entry of the directory whose first cluster is
// ino-dirInoBase: its ".." names the parent, which is scanned for it.
func (fs *fsys) loadDir(ino uint64) (*node, error) {
	g := fs.g
	c := uint32(ino - dirInoBase)
	if c < 2 || c > g.maxCluster() {
		return nil, syscall.ENOENT
	}
	dd, err := fs.readSlot(c, 1)
	if err != nil {
		return nil, err
	}
	if string(dd[:11]) != "..         " || !dd.isDir() {
		return nil, fs.corrupt("directory at cluster %d has no \"..\" entry", c)
	}
	parent := dd.firstCluster(g.fatType == fat32)
	if g.fatType == fat32 && parent == g.rootClus {
		parent = 0
	}
	if parent != 0 && (parent < 2 || parent > g.maxCluster()) {
		return nil, fs.corrupt("directory at cluster %d: \"..\" names cluster %d", c, parent)
	}
	if p, ok := fs.dirPos[c]; ok && p.dir == parent {
		e, err := fs.readSlot(p.dir, p.slot)
		if err == nil && e[0] != slotFree && e[0] != slotEnd && e.isDir() &&
			e.attr()&attrLongMask != attrLongName && e.firstCluster(g.fatType == fat32) == c {
			return &node{fs: fs, ino: ino, dir: true, p: p, de: e}, nil
		}
	}
	var found *dentry
	if err := fs.scan(parent, 0, func(d *dentry) bool {
		if d.raw.isDir() && d.raw.firstCluster(g.fatType == fat32) == c {
			found = d
			return false
		}
		return true
	}); err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fs.corrupt("directory at cluster %d not found in its parent (cluster %d)", c, parent)
	}
	fs.dirPos[c] = pos{parent, found.slot}
	return &node{fs: fs, ino: ino, dir: true, p: pos{parent, found.slot}, de: found.raw}, nil
}

// parentIno is the inode number of a directory's parent.
func (n *node) parentIno() uint64 {
	if n.root || n.p.dir == 0 {
		return rootIno
	}
	return dirInoBase + uint64(n.p.dir)
}

// countSubdirs counts the subdirectories of n, remembered per directory
// for the mount's lifetime and kept up to date by Mkdir, Rmdir and Rename.
func (n *node) countSubdirs() (int, error) {
	fs := n.fs
	if c, ok := fs.subdirs[n.key()]; ok {
		return c, nil
	}
	cnt := 0
	err := n.fs.scan(n.key(), 0, func(d *dentry) bool {
		if d.raw.isDir() {
			cnt++
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	fs.subdirs[n.key()] = cnt
	return cnt, nil
}

func (n *node) addSubdirs(d int) {
	if c, ok := n.fs.subdirs[n.key()]; ok {
		n.fs.subdirs[n.key()] = c + d
	}
}

// touch sets a directory's modification time after its entries changed.
func (n *node) touch() error {
	if n.root {
		return nil
	}
	n.de.setMtime(n.fs, n.fs.now().UnixNano())
	return n.writeEntry()
}

func (n *node) attr() (vnodeops.Attr, error) {
	fs := n.fs
	g := fs.g
	a := vnodeops.Attr{
		Ino:     n.ino,
		UID:     fs.opt.uid,
		GID:     fs.opt.gid,
		BlkSize: g.clusterSize,
	}
	if n.dir {
		sub, err := n.countSubdirs()
		if err != nil {
			return a, err
		}
		a.Mode = vnodeops.S_IFDIR | fs.opt.dirmask&0o777
		a.Nlink = uint32(2 + sub)
		if n.unlinked {
			a.Nlink = 0
		}
		if n.root && g.fatType != fat32 {
			a.Size = uint64(g.rootEntCnt) * direntSize
		} else {
			ch, err := fs.dirChain(n.key())
			if err != nil {
				return a, err
			}
			a.Size = uint64(len(ch)) * uint64(g.clusterSize)
		}
		a.Blocks = (a.Size + 511) / 512
	} else {
		a.Mode = vnodeops.S_IFREG | fs.opt.mask&0o777
		if n.de.attr()&attrReadOnly != 0 {
			a.Mode &^= 0o222
		}
		a.Nlink = 1
		if n.unlinked {
			a.Nlink = 0
		}
		a.Size = uint64(n.de.size())
		cs := uint64(g.clusterSize)
		a.Blocks = (a.Size + cs - 1) / cs * cs / 512
	}
	if !n.root {
		a.Mtime = n.de.mtime(fs)
		a.Ctime = a.Mtime
		a.Atime = n.de.atime(fs)
		a.Btime = n.de.btime(fs)
	}
	return a, nil
}

// Getattr reports the attributes mapped from the entry and mount options.
func (n *node) Getattr() (vnodeops.Attr, error) {
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	return n.attr()
}

// Access checks want against the mapped permission bits.
func (n *node) Access(want uint32, cred vnodeops.Cred) error {
	n.fs.mu.Lock()
	a, err := n.attr()
	n.fs.mu.Unlock()
	if err != nil {
		return err
	}
	if want&vnodeops.AccessWrite != 0 && n.fs.ro {
		return syscall.EROFS
	}
	return vnodeops.CheckAccess(a, want, cred)
}

// Lookup finds name case-insensitively among the long and short names.
func (n *node) Lookup(name string) (uint64, error) {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !n.dir {
		return 0, syscall.ENOTDIR
	}
	if name == ".." {
		return n.parentIno(), nil
	}
	if name == "." {
		return n.ino, nil
	}
	d, err := fs.find(n.key(), name)
	if err != nil {
		return 0, err
	}
	return fs.inoOf(n.key(), d)
}

// prepCreate checks a directory operation that adds name to n.
func (n *node) prepCreate(name string) error {
	if n.fs.ro {
		return syscall.EROFS
	}
	if !n.dir {
		return syscall.ENOTDIR
	}
	if n.unlinked {
		return syscall.ENOENT
	}
	if err := checkName(name); err != nil {
		return err
	}
	if _, err := n.fs.find(n.key(), name); err == nil {
		return syscall.EEXIST
	} else if err != syscall.ENOENT {
		return err
	}
	return nil
}

func (fs *fsys) newEntry(attr byte) rawEntry {
	var e rawEntry
	e[11] = attr
	now := fs.now().UnixNano()
	e.setBtime(fs, now)
	e.setMtime(fs, now)
	e.setAtime(fs, now)
	return e
}

// Create makes an empty regular file (no cluster). A perm without the
// owner write bit sets the read-only attribute; uid and gid are not stored.
func (n *node) Create(name string, perm, uid, gid uint32) (uint64, error) {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := n.prepCreate(name); err != nil {
		return 0, err
	}
	attr := byte(attrArchive)
	if perm&0o200 == 0 {
		attr |= attrReadOnly
	}
	e := fs.newEntry(attr)
	slot, err := fs.addEntry(n.key(), name, &e)
	if err != nil {
		return 0, err
	}
	if err := n.touch(); err != nil {
		return 0, err
	}
	return fs.fileIno(pos{n.key(), slot}), nil
}

// Mknod makes regular files only; other types give EPERM.
func (n *node) Mknod(name string, mode, uid, gid uint32, rdev uint64) (uint64, error) {
	if mode&vnodeops.S_IFMT != vnodeops.S_IFREG && mode&vnodeops.S_IFMT != 0 {
		return 0, syscall.EPERM
	}
	return n.Create(name, mode&vnodeops.PermMask, uid, gid)
}

// Mkdir makes a directory of one zeroed cluster holding "." and ".."
// [fatgen103 §6: "." points to the directory itself, ".." to its parent,
// 0 when the parent is the root].
func (n *node) Mkdir(name string, perm, uid, gid uint32) (uint64, error) {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := n.prepCreate(name); err != nil {
		return 0, err
	}
	cl, err := fs.alloc(1, 0, true)
	if err != nil {
		return 0, err
	}
	c := cl[0]
	e := fs.newEntry(attrDirectory)
	e.setFirstCluster(c)
	dot := e
	copy(dot[:11], ".          ")
	dotdot := e
	copy(dotdot[:11], "..         ")
	dotdot.setFirstCluster(n.key())
	off := fs.g.clusterOffset(c)
	if err := fs.writeAt(dot[:], off); err != nil {
		return 0, err
	}
	if err := fs.writeAt(dotdot[:], off+direntSize); err != nil {
		return 0, err
	}
	slot, err := fs.addEntry(n.key(), name, &e)
	if err != nil {
		fs.free(cl)
		return 0, err
	}
	fs.dirPos[c] = pos{n.key(), slot}
	fs.subdirs[c] = 0
	n.addSubdirs(1)
	if err := n.touch(); err != nil {
		return 0, err
	}
	return dirInoBase + uint64(c), nil
}

// Symlink gives EPERM: FAT has no symbolic links.
func (n *node) Symlink(name, target string, uid, gid uint32) (uint64, error) {
	return 0, syscall.EPERM
}

// Link gives EPERM: FAT has no hard links.
func (n *node) Link(vp vnodeops.Vnode, name string) error { return syscall.EPERM }

// unlinkEntry removes the entry set of child c from directory n.
func (n *node) unlinkEntry(c *node) error {
	fs := n.fs
	d, err := fs.entryAt(c.p)
	if err != nil {
		if err == syscall.ENOENT {
			return fs.corrupt("entry of %s vanished", c.what())
		}
		return err
	}
	if err := fs.delEntry(c.p.dir, d.first, d.slot); err != nil {
		return err
	}
	if !c.dir {
		fs.forgetPos(c.p)
	}
	c.unlinked = true
	return nil
}

// Remove deletes the entry of file vp; its clusters are freed at Inactive.
func (n *node) Remove(name string, vp vnodeops.Vnode) error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro {
		return syscall.EROFS
	}
	c, ok := vp.(*node)
	if !ok || c.fs != fs {
		return syscall.EXDEV
	}
	if c.dir {
		return syscall.EISDIR
	}
	if c.unlinked {
		return syscall.ENOENT
	}
	if err := n.unlinkEntry(c); err != nil {
		return err
	}
	return n.touch()
}

func (n *node) isEmpty() (bool, error) {
	empty := true
	err := n.fs.scan(n.key(), 0, func(*dentry) bool {
		empty = false
		return false
	})
	return empty, err
}

// Rmdir deletes the entry of the empty directory vp; its cluster is freed
// at Inactive.
func (n *node) Rmdir(name string, vp vnodeops.Vnode) error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro {
		return syscall.EROFS
	}
	c, ok := vp.(*node)
	if !ok || c.fs != fs {
		return syscall.EXDEV
	}
	if !c.dir {
		return syscall.ENOTDIR
	}
	if c.root {
		return syscall.EBUSY
	}
	if c.unlinked {
		return syscall.ENOENT
	}
	empty, err := c.isEmpty()
	if err != nil {
		return err
	}
	if !empty {
		return syscall.ENOTEMPTY
	}
	if err := n.unlinkEntry(c); err != nil {
		return err
	}
	n.addSubdirs(-1)
	return n.touch()
}

// Rename moves fvp's entry to toName in toDir, replacing tvp's entry. The
// new entry is written before the old ones are freed.
func (n *node) Rename(fromName string, fvp vnodeops.Vnode, toDir vnodeops.Vnode, toName string, tvp vnodeops.Vnode) error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro {
		return syscall.EROFS
	}
	fn, ok1 := fvp.(*node)
	td, ok2 := toDir.(*node)
	if !ok1 || !ok2 || fn.fs != fs || td.fs != fs {
		return syscall.EXDEV
	}
	var tn *node
	if tvp != nil {
		t, ok := tvp.(*node)
		if !ok || t.fs != fs {
			return syscall.EXDEV
		}
		tn = t
	}
	if tn == fn {
		// A rename to another spelling of the same name (case change):
		// nothing is replaced.
		tn = nil
	}
	if !n.dir || !td.dir {
		return syscall.ENOTDIR
	}
	if fn.unlinked || fn.root || td.unlinked {
		return syscall.ENOENT
	}
	if err := checkName(toName); err != nil {
		return err
	}
	if tn != nil && tn.dir {
		empty, err := tn.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return syscall.ENOTEMPTY
		}
	}
	if tn == nil {
		// The kernel found no target; another name may still clash
		// case-insensitively only if it is fvp itself.
		if d, err := fs.find(td.key(), toName); err == nil {
			if !(td.key() == fn.p.dir && d.slot == fn.p.slot) {
				return syscall.EEXIST
			}
		} else if err != syscall.ENOENT {
			return err
		}
	}
	old, err := fs.entryAt(fn.p)
	if err != nil {
		if err == syscall.ENOENT {
			return fs.corrupt("entry of %s vanished", fn.what())
		}
		return err
	}
	ne := fn.de
	slot, err := fs.addEntry(td.key(), toName, &ne)
	if err != nil {
		return err
	}
	if tn != nil {
		if err := td.unlinkEntry(tn); err != nil {
			return err
		}
		if tn.dir {
			td.addSubdirs(-1)
		}
	}
	if err := fs.delEntry(fn.p.dir, old.first, old.slot); err != nil {
		return err
	}
	oldp, newp := fn.p, pos{td.key(), slot}
	if !fn.dir {
		delete(fs.posIno, oldp)
		if fn.ino == newp.natural() {
			delete(fs.alias, fn.ino)
		} else {
			fs.alias[fn.ino] = newp
			fs.posIno[newp] = fn.ino
		}
	}
	fn.p, fn.de = newp, ne
	if fn.dir {
		fs.dirPos[fn.key()] = newp
	}
	if fn.dir && oldp.dir != newp.dir {
		// Point ".." at the new parent [fatgen103 §6: 0 for the root].
		dd, err := fs.readSlot(fn.key(), 1)
		if err != nil {
			return err
		}
		if string(dd[:11]) == "..         " {
			dd.setFirstCluster(newp.dir)
			if err := fs.writeSlot(fn.key(), 1, &dd); err != nil {
				return err
			}
		}
		n.addSubdirs(-1)
		td.addSubdirs(1)
	}
	if err := n.touch(); err != nil {
		return err
	}
	if td != n {
		return td.touch()
	}
	return nil
}

// Open and Close keep no state.
func (n *node) Open(flags int) error  { return nil }
func (n *node) Close(flags int) error { return nil }

// Setattr maps what FAT can store: size, mtime, atime (a date), the
// read-only attribute (the write bits of a file). Other mode changes and
// owner changes give EPERM, or are ignored with the quiet option.
func (n *node) Setattr(sa vnodeops.SetAttr) error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro {
		return syscall.EROFS
	}
	if sa.Mask&vnodeops.SetUID != 0 && sa.UID != fs.opt.uid && !fs.opt.quiet {
		return syscall.EPERM
	}
	if sa.Mask&vnodeops.SetGID != 0 && sa.GID != fs.opt.gid && !fs.opt.quiet {
		return syscall.EPERM
	}
	if sa.Mask&vnodeops.SetFlags != 0 && sa.Flags != 0 {
		return syscall.ENOTSUP
	}
	if sa.Mask&vnodeops.SetSize != 0 {
		if n.dir {
			return syscall.EISDIR
		}
		if sa.Size > maxFileSize {
			return syscall.EFBIG
		}
	}
	newAttr := n.de.attr()
	if sa.Mask&vnodeops.SetMode != 0 {
		perm := sa.Mode & vnodeops.PermMask
		if n.dir {
			if perm != fs.opt.dirmask&0o777 && !fs.opt.quiet {
				return syscall.EPERM
			}
		} else {
			base := fs.opt.mask & 0o777
			w := perm & 0o222
			if (perm&^0o222 != base&^0o222 || (w != 0 && w != base&0o222)) && !fs.opt.quiet {
				return syscall.EPERM
			}
			if perm&0o200 != 0 {
				newAttr &^= attrReadOnly
			} else {
				newAttr |= attrReadOnly
			}
		}
	}
	if sa.Mask&vnodeops.SetSize != 0 {
		if err := n.truncate(uint32(sa.Size)); err != nil {
			return err
		}
	}
	if n.root {
		return nil
	}
	n.de[11] = newAttr
	if sa.Mask&vnodeops.SetMtime != 0 {
		n.de.setMtime(fs, sa.Mtime)
	}
	if sa.Mask&vnodeops.SetAtime != 0 {
		n.de.setAtime(fs, sa.Atime)
	}
	return n.writeEntry()
}

// truncate sets a file's size, freeing or allocating (zeroed) clusters.
func (n *node) truncate(size uint32) error {
	fs := n.fs
	if err := n.loadChain(); err != nil {
		return err
	}
	cur := n.de.size()
	if size > cur {
		if _, err := n.extend(int64(size)); err != nil {
			return err
		}
	} else if size < cur {
		cs := fs.g.clusterSize
		keep := int((uint64(size) + uint64(cs) - 1) / uint64(cs))
		if keep < len(n.clusters) {
			drop := n.clusters[keep:]
			if keep == 0 {
				n.de.setFirstCluster(0)
			} else if err := fs.fatSet(n.clusters[keep-1], fs.g.eoc()); err != nil {
				return err
			}
			n.de.setSize(size)
			if err := n.writeEntry(); err != nil {
				return err
			}
			if err := fs.free(drop); err != nil {
				return err
			}
			n.clusters = n.clusters[:keep:keep]
		}
	}
	n.de.setSize(size)
	n.de[11] |= attrArchive
	n.de.setMtime(fs, fs.now().UnixNano())
	return n.writeEntry()
}

// extend makes the file's chain cover end bytes and zeroes the bytes
// between the old size and the old end of the chain, so that they read as
// zeros. It returns how many bytes the chain covers (less than end with
// ENOSPC when the volume fills up). It does not change the size.
func (n *node) extend(end int64) (int64, error) {
	fs := n.fs
	cs := int64(fs.g.clusterSize)
	have := int64(len(n.clusters)) * cs
	if cur := int64(n.de.size()); have > cur && end > cur {
		// zero the slack after the old end of file
		zend := min(have, end)
		for o := cur; o < zend; {
			ci := o / cs
			in := o % cs
			k := min(cs-in, zend-o)
			if err := fs.zeroAt(fs.g.clusterOffset(n.clusters[ci])+in, k); err != nil {
				return have, err
			}
			o += k
		}
	}
	if end <= have {
		return have, nil
	}
	need := int((end - have + cs - 1) / cs)
	var err error
	if uint32(need) > fs.freeCount {
		need = int(fs.freeCount)
		err = syscall.ENOSPC
	}
	if need > 0 {
		var last uint32
		if len(n.clusters) > 0 {
			last = n.clusters[len(n.clusters)-1]
		}
		added, aerr := fs.alloc(need, last, true)
		if aerr != nil {
			return have, aerr
		}
		if last == 0 {
			n.de.setFirstCluster(added[0])
			if werr := n.writeEntry(); werr != nil {
				return have, werr
			}
		}
		n.clusters = append(n.clusters, added...)
		have += int64(need) * cs
	}
	return have, err
}

// Read reads file data.
func (n *node) Read(p []byte, off int64) (int, error) {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if n.dir {
		return 0, syscall.EISDIR
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	size := int64(n.de.size())
	if off >= size {
		return 0, nil
	}
	if err := n.loadChain(); err != nil {
		return 0, err
	}
	if int64(len(p)) > size-off {
		p = p[:size-off]
	}
	r, err := n.rw(p, off, false)
	if err == nil && !fs.ro && !n.unlinked {
		// The access date [fatgen103 §6: DIR_LstAccDate] changes at most
		// once a day, so this rarely writes.
		d, _, _ := fs.encodeTime(fs.now().UnixNano())
		if binary.LittleEndian.Uint16(n.de[18:]) != d {
			binary.LittleEndian.PutUint16(n.de[18:], d)
			err = n.writeEntry()
		}
	}
	return r, err
}

// rw copies between p and the file's clusters at off, which lie inside
// the chain.
func (n *node) rw(p []byte, off int64, write bool) (int, error) {
	fs := n.fs
	cs := int64(fs.g.clusterSize)
	done := 0
	for done < len(p) {
		o := off + int64(done)
		ci := o / cs
		in := o % cs
		k := int(min(cs-in, int64(len(p)-done)))
		dev := fs.g.clusterOffset(n.clusters[ci]) + in
		var err error
		if write {
			err = fs.writeAt(p[done:done+k], dev)
		} else {
			err = fs.readAt(p[done:done+k], dev)
		}
		if err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

// Write writes file data, allocating clusters; EFBIG past 4 GiB − 1.
func (n *node) Write(p []byte, off int64) (int, error) {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.ro {
		return 0, syscall.EROFS
	}
	if n.dir {
		return 0, syscall.EISDIR
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if len(p) == 0 {
		return 0, nil
	}
	var limErr error
	if off >= maxFileSize {
		return 0, syscall.EFBIG
	}
	if off+int64(len(p)) > maxFileSize {
		p = p[:maxFileSize-off]
		limErr = syscall.EFBIG
	}
	if err := n.loadChain(); err != nil {
		return 0, err
	}
	end := off + int64(len(p))
	have, err := n.extend(end)
	if err != nil && err != syscall.ENOSPC {
		return 0, err
	}
	if have < end {
		limErr = syscall.ENOSPC
		if have <= off {
			// Nothing can be written: give back what was allocated.
			n.shrinkChainTo(int64(n.de.size()))
			return 0, syscall.ENOSPC
		}
		p = p[:have-off]
	}
	w, err := n.rw(p, off, true)
	if newEnd := off + int64(w); newEnd > int64(n.de.size()) {
		n.de.setSize(uint32(newEnd))
	}
	n.de[11] |= attrArchive
	n.de.setMtime(fs, fs.now().UnixNano())
	if werr := n.writeEntry(); err == nil {
		err = werr
	}
	if err != nil {
		return w, err
	}
	return w, limErr
}

// shrinkChainTo frees clusters past those needed for size bytes (after a
// failed extension).
func (n *node) shrinkChainTo(size int64) {
	fs := n.fs
	cs := int64(fs.g.clusterSize)
	keep := int((size + cs - 1) / cs)
	if keep >= len(n.clusters) {
		return
	}
	drop := n.clusters[keep:]
	if keep == 0 {
		n.de.setFirstCluster(0)
		n.writeEntry()
	} else {
		fs.fatSet(n.clusters[keep-1], fs.g.eoc())
	}
	fs.free(drop)
	n.clusters = n.clusters[:keep:keep]
}

// Fsync writes every dirty buffer of the volume and syncs the image.
func (n *node) Fsync(dataOnly bool) error {
	fs := n.fs
	fs.mu.Lock()
	err := fs.writeBackLocked()
	fs.mu.Unlock()
	if err != nil {
		return err
	}
	// The host's fsync of the image runs without fs.mu (see ext2fs).
	return fs.cache.SyncDevice()
}

// Readdir lists the directory: "." (cookie 1), ".." (cookie 2), then each
// file with cookie slot+3 of its short entry, which stays valid while
// entries come and go since entries never move. fn runs without the FS
// lock, on batches of entries read under it.
func (n *node) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	const batch = 128
	for {
		ents, more, err := n.readdirBatch(cookie, batch)
		if err != nil {
			return err
		}
		for _, d := range ents {
			if !fn(d) {
				return nil
			}
			cookie = d.Next
		}
		if !more {
			return nil
		}
	}
}

// readdirBatch returns up to max entries from cookie on, and whether more
// may follow.
func (n *node) readdirBatch(cookie uint64, max int) ([]vnodeops.Dirent, bool, error) {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !n.dir {
		return nil, false, syscall.ENOTDIR
	}
	var out []vnodeops.Dirent
	if cookie == 0 {
		out = append(out, vnodeops.Dirent{Name: ".", Ino: n.ino, Type: vnodeops.DT_DIR, Next: 1})
		cookie = 1
	}
	if cookie == 1 {
		out = append(out, vnodeops.Dirent{Name: "..", Ino: n.parentIno(), Type: vnodeops.DT_DIR, Next: 2})
		cookie = 2
	}
	if n.unlinked || cookie-2 >= maxDirSlots {
		return out, false, nil
	}
	more := false
	err := fs.scan(n.key(), uint32(cookie-2), func(d *dentry) bool {
		if len(out) >= max {
			more = true
			return false
		}
		ino, err := fs.inoOf(n.key(), d)
		if err != nil {
			// inoOf logged it; list the rest of the directory.
			return true
		}
		t := uint8(vnodeops.DT_REG)
		if d.raw.isDir() {
			t = vnodeops.DT_DIR
		}
		out = append(out, vnodeops.Dirent{Name: d.name(), Ino: ino, Type: t, Next: uint64(d.slot) + 3})
		return true
	})
	return out, more, err
}

// Readlink gives EINVAL: there are no links.
func (n *node) Readlink() (string, error) { return "", syscall.EINVAL }

// Inactive frees the storage of a removed file or directory.
func (n *node) Inactive() error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return n.release()
}

// release frees the storage of a removed file or directory once.
func (n *node) release() error {
	fs := n.fs
	if !n.unlinked || n.freed || fs.ro || fs.unmounted {
		return nil
	}
	n.freed = true
	var ch []uint32
	var err error
	if n.dir {
		ch, err = fs.dirChain(n.key())
		delete(fs.dirChains, n.key())
		delete(fs.dirPos, n.key())
		delete(fs.subdirs, n.key())
	} else {
		err = n.loadChain()
		ch = n.clusters
	}
	if err != nil {
		return err
	}
	n.clusters = nil
	return fs.free(ch)
}

// Reclaim forgets the vnode.
func (n *node) Reclaim() error {
	fs := n.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.live[n.ino] == n {
		delete(fs.live, n.ino)
	}
	return nil
}
