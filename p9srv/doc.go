// Package p9srv serves the rump9p kernel (package rumpcore) over 9P2000.L,
// on top of github.com/hugelgupf/p9 v0.4.1. It is the bridge from the
// protocol to vnodes, as NetBSD's p2k bridges puffs to VOPs.
//
// # Messages
//
// Every message Linux v9fs sends is answered: Tversion, Tattach, Twalk,
// Tgetattr, Tsetattr, Tlopen, Tlcreate, Tread, Twrite, Tmkdir, Tsymlink,
// Tlink, Tmknod, Trenameat, Trename, Tunlinkat, Tremove, Treaddir,
// Treadlink, Tstatfs, Tfsync, Tlock, Tflush, Tclunk, Txattrwalk and
// Txattrcreate, plus the Google extensions the hugelgupf client uses
// (Twalkgetattr, Tucreate, ...). Tauth is refused (there is no
// authentication). The library does not handle Tgetlock; the frame layer
// passes it on as a marked Tlock that only tests the server's lock table,
// and turns the answer into an Rgetlock (getlock.go), so fcntl(F_GETLK)
// works on a v9fs mount. Tremove of a directory answers EISDIR: the
// library sends Tremove to the parent as a Tunlinkat without
// AT_REMOVEDIR, whose rule wins (Linux removes directories with
// Tunlinkat(AT_REMOVEDIR), never Tremove).
//
// # Sessions
//
// A connection may carry several sessions one after another: a Tversion
// after a successful one resets the session, as version(5) says. Linux
// sends one at every mount over a stream that outlives the last mount (a
// virtio-serial port, a guest that rebooted). The frame reader ends the
// library's session there; the library answers the requests it is
// handling (answers not yet written are dropped: the client has moved on)
// and clunks every fid, which closes files and drops locks and vnode
// references; then a new library session starts with that Tversion and
// negotiates msize anew (conn.serve).
//
// # Credentials
//
// hugelgupf/p9 does not pass the Tattach uid to the server, so each
// connection gets its own p9.Server and a frame reader (framereader.go)
// that sits under it. The frame reader parses the 9P framing and rewrites
// every Tattach: the attach name becomes
//
//	<marker><uid>/<cleaned original attach name>
//
// where marker is "\x00rump9p-" followed by 128 random bits in hex, drawn
// per connection and never sent to the client. The uid is n_uname, or, when
// n_uname is NoUID (0xFFFFFFFF), uname parsed as a decimal number, or else
// nobody (65534). The library walks the attach name from the File that
// Attacher.Attach returns; that File (attachRoot) accepts exactly one name,
// a component starting with this connection's marker, and returns the
// kernel root bound to the uid's credential; everything else it refuses. A
// client cannot forge the marker: it is random per connection, and the
// rewrite prepends ours to every Tattach, so whatever the client wrote is
// only walked as ordinary names below the bound root.
//
// The credential of a uid is Options.Squash if set, else Options.Users[uid]
// if present, else {UID: uid, GID: uid}. It is used for every permission
// check on the fid tree that the attach starts, and it owns the files
// created through it. The gid that Tlcreate, Tmkdir, Tsymlink and Tmknod
// carry becomes the new file's group (Linux computes it, including the
// set-gid directory rule) unless Squash is set; the permission check on the
// directory is still made with the uid's own credential. The uid that the
// Google extensions (Tucreate, ...) carry is ignored.
//
// The frame layer is split by concern: framereader.go (framing, msize,
// sessions, count clamps), framewriter.go (one writev per reply),
// attachname.go (the attach-uid rewrite), setid.go (set-id bits past the
// library's mode mask), flush.go (flush redirection), getlock.go
// (Tgetlock), flow.go (flow control); library_test.go pins the library
// behaviours the rewrite relies on.
//
// The frame reader also guards the library against hostile streams (see
// frameReader): frames larger than msize or shorter than a header, or a
// first message other than Tversion, close the connection (only that one);
// counts are lowered to fit msize; a flush can never wait for a flush. Its
// partner frameWriter sees the replies (to learn the negotiated msize and
// which tags are in flight) and writes each reply with one writev.
//
// # QIDs
//
// QID.Path is mountID<<48 | ino: unique per (mount, inode) across the
// server as long as the mount ID is below 1<<16 and the inode number below
// 1<<48. Larger values are folded with a hash into those bits (logged once),
// which may collide. QID.Version is a hash of mtime, ctime and size, never
// 0, so it changes whenever the file does and Linux may cache.
//
// # Library limitations worth knowing
//
//   - A deleted (unlinked) node answers Tgetattr, but the library refuses
//     Tsetattr, Tlopen and xattr requests on it with EINVAL, so ftruncate or
//     fchmod on an open-unlinked file fails.
//   - The library masks modes to 01777. For Tsetattr (chmod) the frame
//     reader carries S_ISUID/S_ISGID past it in spare bits of atime_nsec;
//     in Tlcreate and Tmkdir they are still lost (a set-gid parent
//     directory still passes S_ISGID on to new directories, in the kernel).
//   - Xattrs: Txattrwalk serves the driver's attributes (vnodeops.Xattrs;
//     ext2fs and tmpfs have them); Txattrcreate, Twrite and Tclunk set or
//     remove one (vnodeops.XattrWriter), the error arriving at Tclunk
//     (EOPNOTSUPP where the driver stores none, so cp -a is quiet). A
//     value is buffered by the library and announced sizes are lowered
//     to 64 KiB + 1, so a larger value fails (E2BIG) rather than being cut.
//     Removal is a size-0 Txattrcreate with XATTR_REPLACE, so an empty
//     value cannot be set with that flag. Errors of Txattrwalk are
//     flattened to EINVAL by the library (which coreutils treats like
//     ENOTSUP, so ls -l is quiet). A successful Txattrwalk makes the
//     library share the File with the new fid and Close it once per fid,
//     so File.Close is reference counted.
//   - Names with "/" and the names "." and ".." are refused by the library
//     in Twalk; Linux never sends them.
package p9srv
