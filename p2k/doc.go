// Package p2k mounts a rump9p kernel's namespace on the host through FUSE,
// after NetBSD's p2k(3), which turns puffs requests into VOP calls. It
// speaks the FUSE protocol with github.com/hanwen/go-fuse/v2's raw API
// (fuse.RawFileSystem) and calls package rumpcore only, one path component
// at a time through [rumpcore.Vnode], as every front of the kernel does.
//
//	srv, err := p2k.Mount(k, root, "/mnt/img", p2k.Options{})
//	...
//	srv.Wait() // until unmounted: Server.Unmount, fusermount3 -u, umount
//
// # References
//
// A FUSE node ID stands for one kernel vnode, identified by (mount, inode):
// while the host kernel knows a node (its lookup count is above zero) the
// same (mount, inode) always gets the same node ID, and p2k holds exactly
// one [rumpcore.Vnode] reference for it, however many lookups the count
// sums. Every reply that hands out a node (LOOKUP, CREATE, MKNOD, MKDIR,
// SYMLINK, LINK, and each READDIRPLUS entry other than "." and "..") adds
// one lookup; FORGET subtracts what the host kernel says, and the
// reference is released when the count reaches zero. The root node
// (FUSE_ROOT_ID) holds the reference given to [Mount] until the file
// system is unmounted. Each open file or directory handle holds one more
// reference of its own, dropped at RELEASE, so a handle outlives a FORGET
// of its node. At unmount every remaining reference is dropped and every
// handle closed before [Server.Wait] returns; the caller then shuts the
// kernel down (rumpcore.Kernel.Shutdown syncs and marks images clean).
//
// # Credentials
//
// The credential of each request is the caller's: the uid and gid the host
// kernel puts in the request header (the caller's file system ids) and the
// supplementary groups read from the "Groups:" line of /proc/PID/status of
// the calling thread, cached for a second per (pid, uid, gid). When that
// file cannot be read (the process is gone, or a request the host kernel
// makes on its own, pid 0) the credential has no supplementary groups. Uid
// 0 is the superuser, as in the kernel. Permission checks are the
// kernel's (rumpcore), made with that credential on every operation, so
// `-o default_permissions` (the host kernel checking mode bits itself from
// the attributes p2k reports) only adds a second, equivalent check.
// Creating a file opens it without a second check, and ftruncate through a
// handle opened for writing needs no write permission, as on Unix.
//
// # Errors
//
// Errors are the kernel's syscall.Errno values, passed through unchanged
// (ENOENT, EACCES, EPERM, EROFS, ENOSPC, EIO, ...). p2k adds EINVAL for
// rename flags it cannot honour, EBADF for an unknown handle, ERANGE for
// an extended attribute buffer too small, and EINTR when the host kernel
// interrupts a waiting SETLKW.
//
// # What is supported
//
// LOOKUP, FORGET, GETATTR, SETATTR (mode, owner, size, times), ACCESS,
// CREATE, MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME and RENAME2
// (RENAME_NOREPLACE), READLINK, OPEN, READ, WRITE, FLUSH, FSYNC, RELEASE,
// OPENDIR, READDIR, READDIRPLUS, FSYNCDIR, RELEASEDIR, STATFS, GETXATTR,
// LISTXATTR, SETXATTR and REMOVEXATTR (where the driver stores
// attributes: tmpfs, ext2fs; ENOTSUP elsewhere), and POSIX byte-range locks and flock(2) (GETLK, SETLK,
// SETLKW) in a lock table of the Server: locks are seen by every host
// process using this mount, not by other fronts of the kernel. An open
// with O_DIRECT is answered with FOPEN_DIRECT_IO; other files go through
// the host page cache, so mmap works on them.
//
// # What is not
//
// POSIX ACLs are stored, not enforced: p2k does not ask for
// FUSE_POSIX_ACL, so permissions are checked from the mode alone, and
// system.posix_acl_* reach p2k as plain attributes or are refused by the
// host kernel, depending on its version. RENAME_EXCHANGE and RENAME_WHITEOUT answer EINVAL: the
// kernel has no atomic exchange. RENAME_NOREPLACE is a lookup followed by
// a rename, not one atomic step: a file given the new name in between is
// replaced (rumpcore has no rename that refuses a target). FALLOCATE, COPY_FILE_RANGE, LSEEK
// (SEEK_DATA/SEEK_HOLE), IOCTL, POLL, TMPFILE and STATX answer ENOSYS,
// and the host kernel falls back where it can. A SETLKW never reports
// EDEADLK. Inode numbers seen on the host are the kernel's for files of
// the mount at the FUSE root and (mount ID << 48 | inode) for files of
// other mounts below it, so that they stay unique across mounts.
package p2k
