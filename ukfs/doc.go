// Package ukfs works on a file system image without mounting it on the
// host, after NetBSD's ukfs(3): one call boots a private rump9p kernel,
// mounts the image with rump9p's own drivers, and hands back an [FS] on
// which a Go program lists, reads and writes files as a given user. It is
// what the image commands of rump9p (rump9p ls, cp, tar, ...) are built
// on, and it calls nothing but the kernel's system calls (rumpcore.Proc),
// so every permission check, every lock and every write ordering is the
// one the 9P and FUSE fronts get.
//
// # Opening an image
//
// [Open] takes the image file and [Options]: the driver (or "auto" to
// probe), the partition of a disk image, read-only or not, the driver's
// options, and the credential to act as (root by default, as fs-utils
// does). The image is locked as rump9p serve locks it, so a second writer
// is refused rather than allowed to corrupt it:
//
//	fsys, err := ukfs.Open("disk.img", ukfs.Options{Partition: "auto"})
//	if err != nil {
//		return err // names the image: missing, locked, not a file system
//	}
//	defer fsys.Close() // sync, unmount, mark clean, unlock
//
// Close is what makes the edits durable and the image consistent: an
// image closed by Close passes its format's fsck. Check its error.
//
// # Reading: io/fs
//
// An FS is an io/fs.FS (with StatFS, ReadDirFS, ReadFileFS and
// ReadLinkFS), so the standard library works on the image directly:
//
//	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
//		fmt.Println(p)
//		return err
//	})
//	data, err := fs.ReadFile(fsys, "etc/hostname")
//	http.Handle("/", http.FileServerFS(fsys))
//
// Those methods take the paths io/fs takes ("etc/hostname", "." for the
// root). The Sys method of the fs.FileInfo that Stat and Lstat return
// gives the driver's vnodeops.Attr: owners, inode numbers, link counts,
// nanosecond times.
//
// # Writing
//
// The writing calls mirror package os: [FS.Create], [FS.OpenFile],
// [FS.Mkdir], [FS.MkdirAll], [FS.Remove], [FS.RemoveAll], [FS.Rename],
// [FS.Link], [FS.Symlink], [FS.Mknod], [FS.Chmod], [FS.Chown],
// [FS.Lchown], [FS.Chtimes], [FS.Lchtimes], [FS.Truncate], [FS.Setxattr].
// They take any slash-separated path of the image, with or without a
// leading "/"; ".." stops at the image's root. A [File] is an io.ReaderAt, io.WriterAt
// and io.Seeker:
//
//	f, err := fsys.Create("/etc/motd", 0o644)
//	if err != nil {
//		return err
//	}
//	if _, err := f.Write([]byte("hello\n")); err != nil {
//		f.Close()
//		return err
//	}
//	return f.Close()
//
// Errors are *fs.PathError (or [*LinkError] for two paths) wrapping a
// syscall.Errno: errors.Is(err, fs.ErrNotExist), errors.Is(err,
// syscall.EACCES) and errors.Is(err, syscall.EROFS) say what went wrong.
//
// # Acting as a user
//
// Options.Cred is the credential of every call. As root the image's
// permissions are no obstacle; as another user they are checked exactly
// as a mounted file system checks them, and what that user creates is
// theirs:
//
//	fsys, err := ukfs.Open("disk.img", ukfs.Options{Cred: vnodeops.Cred{UID: 1000, GID: 1000}})
//
// # Limits
//
// Symbolic links are resolved in the kernel's namespace, in which the
// image is mounted on /image: a relative link resolves inside the image,
// an absolute one (/usr/lib/x) does not reach the image's /usr.
// [FS.Info] carries the driver's own layout summary where the driver has
// one (vnodeops.Describer: ext2fs and ffs).
package ukfs
