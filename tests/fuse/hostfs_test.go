package fuse

import (
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rump9p/rump9p/vnodeops"
)

// hostFS is a vnodeops.FS whose every operation is a host system call on a
// directory: here, a FUSE mount that p2k serves. The conformance suite's
// kernel mounts it, so each case's system calls reach the inner kernel
// through the host's VFS, FUSE and p2k:
//
//	suite -> outer rumpcore -> hostFS -> host syscalls -> /dev/fuse -> p2k -> inner rumpcore -> driver
//
// A vnode holds an O_PATH descriptor of its file. Lookup opens one for each
// inode it finds and keeps it in pending for the VGet that may follow;
// Reclaim puts the vnode's back there while the file still has a name
// (so that a lookup racing with the reclaim still finds it) and closes it
// once the file is unlinked, so that the host kernel forgets, and p2k
// releases, removed files as it would without this harness.
type hostFS struct {
	rootFd  int
	rootIno uint64
	ro      bool

	mu      sync.Mutex
	pending map[uint64]int // inode -> O_PATH descriptor, for VGet
	live    map[*hostVnode]struct{}
	freed   bool // an unlinked file was let go since the last Statvfs
}

func newHostFS(dir string, ro bool) (*hostFS, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &hostFS{rootFd: fd, rootIno: st.Ino, ro: ro, pending: map[uint64]int{}, live: map[*hostVnode]struct{}{}}, nil
}

func errno(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}

func (fs *hostFS) Root() uint64 { return fs.rootIno }

func (fs *hostFS) VGet(ino uint64) (vnodeops.Vnode, error) {
	var fd int
	var err error
	if ino == fs.rootIno {
		fd, err = unix.Dup(fs.rootFd)
	} else {
		fs.mu.Lock()
		pfd, ok := fs.pending[ino]
		delete(fs.pending, ino)
		fs.mu.Unlock()
		if !ok {
			return nil, syscall.ESTALE
		}
		fd = pfd
	}
	if err != nil {
		return nil, errno(err)
	}
	v := &hostVnode{fs: fs, fd: fd, rw: -1, rd: -1}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Ino != ino {
		unix.Close(fd)
		return nil, syscall.ESTALE
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.live == nil { // unmounted meanwhile (a forced unmount)
		unix.Close(fd)
		return nil, syscall.EIO
	}
	fs.live[v] = struct{}{}
	return v, nil
}

func (fs *hostFS) Statvfs() (vnodeops.Statvfs, error) {
	// The host kernel sends FORGET for an unlinked file after its last
	// close asynchronously, and p2k frees the file when it arrives: give
	// it a moment before counting free space.
	fs.mu.Lock()
	freed := fs.freed
	fs.freed = false
	fs.mu.Unlock()
	if freed {
		time.Sleep(50 * time.Millisecond)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fs.rootFd, &st); err != nil {
		return vnodeops.Statvfs{}, errno(err)
	}
	out := vnodeops.Statvfs{
		Bsize: uint32(st.Bsize), Frsize: uint32(st.Frsize),
		Blocks: st.Blocks, Bfree: st.Bfree, Bavail: st.Bavail,
		Files: st.Files, Ffree: st.Ffree, Favail: st.Ffree,
		Namemax: uint32(st.Namelen),
	}
	if fs.ro {
		out.Flags |= vnodeops.StRdonly
	}
	return out, nil
}

func (fs *hostFS) Sync() error {
	fd, err := unix.Openat(fs.rootFd, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return errno(err)
	}
	defer unix.Close(fd)
	return errno(unix.Syncfs(fd))
}

func (fs *hostFS) Unmount(bool) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for v := range fs.live {
		v.closeFds()
	}
	for _, fd := range fs.pending {
		unix.Close(fd)
	}
	fs.live, fs.pending = nil, nil
	return errno(unix.Close(fs.rootFd))
}

// keep makes fd the pending descriptor of ino, closing an older one.
func (fs *hostFS) keep(ino uint64, fd int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.pending == nil {
		unix.Close(fd)
		return
	}
	if old, ok := fs.pending[ino]; ok {
		unix.Close(old)
	}
	fs.pending[ino] = fd
}

// hostVnode is one file of a hostFS: an O_PATH descriptor, and descriptors
// opened for I/O on demand.
type hostVnode struct {
	fs *hostFS
	fd int // O_PATH

	ioMu   sync.Mutex
	rw, rd int        // opened for I/O, -1 until needed
	dirMu  sync.Mutex // serialises Readdir's seek and reads on rd
}

func (v *hostVnode) proc() string { return "/proc/self/fd/" + strconv.Itoa(v.fd) }

func (v *hostVnode) closeFds() {
	v.ioMu.Lock()
	defer v.ioMu.Unlock()
	for _, fd := range []int{v.rw, v.rd, v.fd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	v.rw, v.rd, v.fd = -1, -1, -1
}

// ioFd returns a descriptor for reading, or for writing when write is set.
func (v *hostVnode) ioFd(write bool) (int, error) {
	v.ioMu.Lock()
	defer v.ioMu.Unlock()
	if v.rw >= 0 {
		return v.rw, nil
	}
	if !write && v.rd >= 0 {
		return v.rd, nil
	}
	fd, err := unix.Open(v.proc(), unix.O_RDWR, 0)
	if err == nil {
		v.rw = fd
		return fd, nil
	}
	if write {
		return -1, errno(err)
	}
	fd, err = unix.Open(v.proc(), unix.O_RDONLY, 0)
	if err != nil {
		return -1, errno(err)
	}
	v.rd = fd
	return fd, nil
}

func (v *hostVnode) Lookup(name string) (uint64, error) {
	if name == ".." && v.isRoot() {
		return v.fs.rootIno, nil
	}
	fd, err := unix.Openat(v.fd, name, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, errno(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return 0, errno(err)
	}
	v.fs.keep(st.Ino, fd)
	return st.Ino, nil
}

func (v *hostVnode) isRoot() bool {
	var st unix.Stat_t
	return unix.Fstat(v.fd, &st) == nil && st.Ino == v.fs.rootIno
}

// made finishes a create: owner and exact mode (past the host umask),
// then the note for VGet.
func (v *hostVnode) made(name string, mode, uid, gid uint32, link bool) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(v.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, errno(err)
	}
	// Only what differs: a format without owners (FAT) refuses chown.
	if st.Uid != uid || st.Gid != gid {
		if err := unix.Fchownat(v.fd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return 0, errno(err)
		}
	}
	if !link && st.Mode&vnodeops.PermMask != mode&vnodeops.PermMask {
		// EPERM: a format that keeps only some bits (FAT) made what it
		// could of mode at the create itself.
		if err := unix.Fchmodat(v.fd, name, mode&vnodeops.PermMask, 0); err != nil && err != unix.EPERM {
			return 0, errno(err)
		}
	}
	return v.Lookup(name)
}

func (v *hostVnode) Create(name string, perm, uid, gid uint32) (uint64, error) {
	fd, err := unix.Openat(v.fd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, perm)
	if err != nil {
		return 0, errno(err)
	}
	unix.Close(fd)
	return v.made(name, perm, uid, gid, false)
}

func (v *hostVnode) Mknod(name string, mode, uid, gid uint32, rdev uint64) (uint64, error) {
	if err := unix.Mknodat(v.fd, name, mode, int(rdev)); err != nil {
		return 0, errno(err)
	}
	return v.made(name, mode, uid, gid, false)
}

func (v *hostVnode) Mkdir(name string, perm, uid, gid uint32) (uint64, error) {
	if err := unix.Mkdirat(v.fd, name, perm); err != nil {
		return 0, errno(err)
	}
	return v.made(name, perm, uid, gid, false)
}

func (v *hostVnode) Symlink(name, target string, uid, gid uint32) (uint64, error) {
	if err := unix.Symlinkat(target, v.fd, name); err != nil {
		return 0, errno(err)
	}
	return v.made(name, 0, uid, gid, true)
}

func (v *hostVnode) Link(vp vnodeops.Vnode, name string) error {
	return errno(unix.Linkat(vp.(*hostVnode).fd, "", v.fd, name, unix.AT_EMPTY_PATH))
}

func (v *hostVnode) Remove(name string, _ vnodeops.Vnode) error {
	return errno(unix.Unlinkat(v.fd, name, 0))
}

func (v *hostVnode) Rmdir(name string, _ vnodeops.Vnode) error {
	return errno(unix.Unlinkat(v.fd, name, unix.AT_REMOVEDIR))
}

func (v *hostVnode) Rename(from string, _ vnodeops.Vnode, toDir vnodeops.Vnode, to string, _ vnodeops.Vnode) error {
	return errno(unix.Renameat(v.fd, from, toDir.(*hostVnode).fd, to))
}

// Open opens a directory for Readdir now, so that it can be listed after
// it is removed, as an open directory can.
func (v *hostVnode) Open(int) error {
	if a, err := v.Getattr(); err == nil && a.IsDir() {
		_, err := v.ioFd(false)
		return err
	}
	return nil
}

func (v *hostVnode) Close(int) error { return nil }

func (v *hostVnode) Access(want uint32, cred vnodeops.Cred) error {
	a, err := v.Getattr()
	if err != nil {
		return err
	}
	return vnodeops.CheckAccess(a, want, cred)
}

func (v *hostVnode) Getattr() (vnodeops.Attr, error) {
	var st unix.Stat_t
	if err := unix.Fstat(v.fd, &st); err != nil {
		return vnodeops.Attr{}, errno(err)
	}
	return vnodeops.Attr{
		Mode: st.Mode, Nlink: uint32(st.Nlink), UID: st.Uid, GID: st.Gid,
		Size: uint64(st.Size), Blocks: uint64(st.Blocks), BlkSize: uint32(st.Blksize),
		Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
		Ino: st.Ino, Rdev: st.Rdev,
	}, nil
}

func (v *hostVnode) Setattr(sa vnodeops.SetAttr) error {
	if sa.Mask&(vnodeops.SetUID|vnodeops.SetGID) != 0 {
		uid, gid := -1, -1
		if sa.Mask&vnodeops.SetUID != 0 {
			uid = int(sa.UID)
		}
		if sa.Mask&vnodeops.SetGID != 0 {
			gid = int(sa.GID)
		}
		if err := unix.Fchownat(v.fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			return errno(err)
		}
	}
	if sa.Mask&vnodeops.SetMode != 0 {
		if err := unix.Chmod(v.proc(), sa.Mode); err != nil {
			return errno(err)
		}
	}
	if sa.Mask&vnodeops.SetSize != 0 {
		fd, err := v.ioFd(true)
		if err != nil {
			return err
		}
		if err := unix.Ftruncate(fd, int64(sa.Size)); err != nil {
			return errno(err)
		}
	}
	if sa.Mask&(vnodeops.SetAtime|vnodeops.SetMtime) != 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if sa.Mask&vnodeops.SetAtime != 0 {
			ts[0] = unix.NsecToTimespec(sa.Atime)
		}
		if sa.Mask&vnodeops.SetMtime != 0 {
			ts[1] = unix.NsecToTimespec(sa.Mtime)
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, v.proc(), ts, 0); err != nil {
			return errno(err)
		}
	}
	return nil
}

func (v *hostVnode) Read(p []byte, off int64) (int, error) {
	fd, err := v.ioFd(false)
	if err != nil {
		return 0, err
	}
	got := 0
	for got < len(p) {
		n, err := unix.Pread(fd, p[got:], off+int64(got))
		if err != nil {
			return got, errno(err)
		}
		if n == 0 {
			break
		}
		got += n
	}
	return got, nil
}

func (v *hostVnode) Write(p []byte, off int64) (int, error) {
	fd, err := v.ioFd(true)
	if err != nil {
		return 0, err
	}
	done := 0
	for done < len(p) {
		n, err := unix.Pwrite(fd, p[done:], off+int64(done))
		if err != nil {
			return done, errno(err)
		}
		done += n
	}
	return done, nil
}

func (v *hostVnode) Fsync(dataOnly bool) error {
	fd, err := v.ioFd(false)
	if err != nil {
		return err
	}
	if dataOnly {
		return errno(unix.Fdatasync(fd))
	}
	return errno(unix.Fsync(fd))
}

func (v *hostVnode) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	fd, err := v.ioFd(false)
	if err != nil {
		return err
	}
	v.dirMu.Lock()
	defer v.dirMu.Unlock()
	if _, err := unix.Seek(fd, int64(cookie), 0); err != nil {
		return errno(err)
	}
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.ENOENT {
			// Linux lists nothing of a removed directory: ENOENT
			// (IS_DEADDIR) where the suite expects no entries.
			if a, aerr := v.Getattr(); aerr == nil && a.Nlink == 0 {
				return nil
			}
		}
		if err != nil {
			return errno(err)
		}
		if n == 0 {
			return nil
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(uint16(b[16]) | uint16(b[17])<<8)
			ino := le64(b[0:8])
			off := le64(b[8:16])
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if !fn(vnodeops.Dirent{Name: string(name), Ino: ino, Type: b[18], Next: off}) {
				return nil
			}
			b = b[reclen:]
		}
	}
}

func le64(b []byte) uint64 {
	var x uint64
	for i := 7; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}

func (v *hostVnode) Readlink() (string, error) {
	if a, err := v.Getattr(); err != nil || a.Mode&vnodeops.S_IFMT != vnodeops.S_IFLNK {
		return "", syscall.EINVAL // readlinkat(fd, "") says ENOENT
	}
	buf := make([]byte, 8192)
	n, err := unix.Readlinkat(v.fd, "", buf)
	if err != nil {
		return "", errno(err)
	}
	return string(buf[:n]), nil
}

func (v *hostVnode) Inactive() error { return nil }

func (v *hostVnode) Reclaim() error {
	fs := v.fs
	var st unix.Stat_t
	named := unix.Fstat(v.fd, &st) == nil && st.Nlink > 0
	fs.mu.Lock()
	delete(fs.live, v)
	if named && fs.pending != nil {
		if _, ok := fs.pending[st.Ino]; !ok {
			fs.pending[st.Ino] = v.fd
			v.fd = -1
		}
	} else {
		if old, ok := fs.pending[st.Ino]; ok {
			unix.Close(old)
			delete(fs.pending, st.Ino)
		}
		fs.freed = true
	}
	fs.mu.Unlock()
	v.closeFds()
	return nil
}
