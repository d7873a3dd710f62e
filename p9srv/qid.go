package p9srv

import (
	"errors"
	"io"
	"syscall"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

const (
	// inoBits is how many low bits of QID.Path hold the inode number; the
	// mount ID takes the 16 bits above.
	inoBits  = 48
	inoMask  = 1<<inoBits - 1
	mountMax = 1 << (64 - inoBits)

	// v9fsMagic is V9FS_MAGIC, the f_type Linux reports for a 9P mount.
	v9fsMagic = 0x01021997
)

var errMFILE = linux.EMFILE

// qidPath is the QID path of (mount, ino): mount<<48 | ino, or a hash of
// both folded into those bits when either is too large (logged once).
func (s *Server) qidPath(mount uint32, ino uint64) uint64 {
	if ino <= inoMask && mount < mountMax {
		return uint64(mount)<<inoBits | ino
	}
	s.foldOnce.Do(func() {
		s.log.Warn("p9srv: inode number or mount ID too large for a QID path; folding with a hash, QIDs may collide",
			"mount", mount, "ino", ino)
	})
	h := mix(ino ^ uint64(mount)<<32)
	return uint64(mount%mountMax)<<inoBits | h&inoMask
}

// mix is a 64-bit finaliser (splitmix64's).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// qidVersion derives QID.Version from what changes when a file changes:
// mtime, ctime and size. Never 0 (Linux treats 0 as "do not cache").
func qidVersion(a *vnodeops.Attr) uint32 {
	x := mix(uint64(a.Mtime) ^ mix(uint64(a.Ctime)^mix(a.Size)))
	v := uint32(x) ^ uint32(x>>32)
	if v == 0 {
		v = 1
	}
	return v
}

// qidOf is the QID of vnode v whose attributes are a.
func (s *Server) qidOf(v *rumpcore.Vnode, a *vnodeops.Attr) p9.QID {
	return p9.QID{
		Type:    p9.FileMode(a.Mode).QIDType(),
		Version: qidVersion(a),
		Path:    s.qidPath(v.MountID(), v.Ino()),
	}
}

// qidTypeOfDT is the QID type of a directory entry of type dt (DT_*).
func qidTypeOfDT(dt uint8) p9.QIDType {
	switch dt {
	case vnodeops.DT_DIR:
		return p9.TypeDir
	case vnodeops.DT_LNK:
		return p9.TypeSymlink
	case vnodeops.DT_FIFO, vnodeops.DT_CHR, vnodeops.DT_SOCK:
		return p9.TypeAppendOnly
	}
	return p9.TypeRegular
}

// attrMask is what toP9Attr fills in.
var attrMask = p9.AttrMask{
	Mode: true, NLink: true, UID: true, GID: true, RDev: true,
	ATime: true, MTime: true, CTime: true, INo: true, Size: true,
	Blocks: true, BTime: true, Gen: true,
}

// splitTime splits nanoseconds since the epoch into seconds and
// nanoseconds (0..999999999), as 9P carries them.
func splitTime(ns int64) (uint64, uint64) {
	sec, nsec := ns/1e9, ns%1e9
	if nsec < 0 {
		sec--
		nsec += 1e9
	}
	return uint64(sec), uint64(nsec)
}

func toP9Attr(a *vnodeops.Attr) p9.Attr {
	out := p9.Attr{
		Mode:      p9.FileMode(a.Mode),
		UID:       p9.UID(a.UID),
		GID:       p9.GID(a.GID),
		NLink:     p9.NLink(a.Nlink),
		RDev:      p9.Dev(a.Rdev),
		Size:      a.Size,
		BlockSize: uint64(a.BlkSize),
		Blocks:    a.Blocks,
		Gen:       a.Gen,
	}
	if out.BlockSize == 0 {
		out.BlockSize = 4096
	}
	out.ATimeSeconds, out.ATimeNanoSeconds = splitTime(a.Atime)
	out.MTimeSeconds, out.MTimeNanoSeconds = splitTime(a.Mtime)
	out.CTimeSeconds, out.CTimeNanoSeconds = splitTime(a.Ctime)
	out.BTimeSeconds, out.BTimeNanoSeconds = splitTime(a.Btime)
	return out
}

// joinTime is the inverse of splitTime; out-of-range input from a client
// gives a wrapped value, never a panic.
func joinTime(sec, nsec uint64) int64 {
	return int64(sec)*1e9 + int64(nsec%1e9)
}

// errno turns a kernel error into the linux.Errno the library sends. The
// library maps a syscall.Errno through os.ErrPermission and os.ErrExist,
// turning EPERM into EACCES and ENOTEMPTY into EEXIST; a linux.Errno goes
// through unchanged.
func errno(err error) error {
	if err == nil {
		return nil
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		return linux.Errno(se)
	}
	var le linux.Errno
	if errors.As(err, &le) {
		return le
	}
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return linux.EIO
}

// mkdev encodes a device number as Linux's new_encode_dev does (and as
// glibc's makedev does for numbers that fit).
func mkdev(major, minor uint32) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 |
		uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
}
