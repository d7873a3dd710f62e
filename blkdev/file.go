package blkdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// ErrLocked is matched (errors.Is) by the error Open returns when the
// image is locked by another open file description: another process, or
// another Open of the same image in this process.
var ErrLocked = errors.New("image is locked")

// lockedError names the image whose flock could not be taken.
type lockedError struct{ path string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("image %s is in use by another process (locked)", e.path)
}

// Is lets errors.Is match ErrLocked and syscall.EBUSY.
func (e *lockedError) Is(target error) bool {
	return target == ErrLocked || target == syscall.EBUSY
}

// fileDevice is a Device over an image file or a host block device.
type fileDevice struct {
	f    *os.File
	path string
	ro   bool
	size int64

	closeOnce sync.Once
	closeErr  error
}

// Open opens the image at path as a Device.
//
// A read-only open uses O_RDONLY and takes a shared flock; its WriteAt
// fails with syscall.EROFS and its Sync does nothing. A read-write open
// uses O_RDWR (never creating the file) and takes an exclusive flock. The
// locks are non-blocking: if another open file description holds a
// conflicting lock (another rump9p, or a second Open of the same image in
// this process) Open fails with an error matching ErrLocked whose message
// names the image. Several read-only opens may share an image.
//
// The size is fixed at open: fstat for a regular file, the seek end for a
// block device. Other file types are refused. The caller owns the Device
// and must Close it, which drops the lock.
func Open(path string, readOnly bool) (Device, error) {
	flags := os.O_RDWR
	how := syscall.LOCK_EX
	if readOnly {
		flags = os.O_RDONLY
		how = syscall.LOCK_SH
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (Device, error) {
		f.Close()
		return nil, err
	}
	if err := flock(f, how|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fail(&lockedError{path: path})
		}
		return fail(fmt.Errorf("image %s: flock: %w", path, err))
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	var size int64
	switch m := st.Mode(); {
	case m.IsRegular():
		size = st.Size()
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		// A block device reports size 0 in stat; its end is its size.
		// Seeking does not disturb ReadAt/WriteAt (pread/pwrite).
		size, err = f.Seek(0, io.SeekEnd)
		if err != nil {
			return fail(fmt.Errorf("image %s: size of block device: %w", path, err))
		}
	default:
		return fail(fmt.Errorf("image %s: not a regular file or block device (%v)", path, m.Type()))
	}
	return &fileDevice{f: f, path: path, ro: readOnly, size: size}, nil
}

// flock applies flock(2) to f's descriptor without switching the file to
// blocking mode as (*os.File).Fd would.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// ReadAt reads len(p) bytes at off. A read that extends past Size returns
// the bytes inside the device and syscall.EIO; a negative offset gives
// syscall.EINVAL. A file that shrank under us gives EIO too.
func (d *fileDevice) ReadAt(p []byte, off int64) (int, error) {
	want, err := clip(len(p), off, d.size)
	if err != nil {
		return 0, err
	}
	n, err := d.f.ReadAt(p[:want], off)
	if err == io.EOF {
		err = syscall.EIO
	}
	if err == nil && want < len(p) {
		err = syscall.EIO
	}
	return n, err
}

// WriteAt writes p at off. A read-only device gives syscall.EROFS; a
// write that would extend past Size writes nothing and gives syscall.EIO
// (a device never grows).
func (d *fileDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.ro {
		return 0, syscall.EROFS
	}
	if err := within(len(p), off, d.size); err != nil {
		return 0, err
	}
	return d.f.WriteAt(p, off)
}

func (d *fileDevice) Size() int64    { return d.size }
func (d *fileDevice) ReadOnly() bool { return d.ro }
func (d *fileDevice) Name() string   { return d.path }

// Sync fsyncs a read-write image; on a read-only one it does nothing.
func (d *fileDevice) Sync() error {
	if d.ro {
		return nil
	}
	return d.f.Sync()
}

// Close unlocks and closes the image. Later calls return the first
// call's result.
func (d *fileDevice) Close() error {
	d.closeOnce.Do(func() {
		// Closing the last descriptor drops the lock anyway; unlocking
		// first makes it explicit and immediate.
		_ = flock(d.f, syscall.LOCK_UN)
		d.closeErr = d.f.Close()
	})
	return d.closeErr
}

// clip returns how many of n bytes at off lie inside a device of size
// bytes: EINVAL for a negative offset, EIO for an offset past the end
// (with n > 0).
func clip(n int, off, size int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off >= size {
		if n == 0 {
			return 0, nil
		}
		return 0, syscall.EIO
	}
	if int64(n) > size-off {
		return int(size - off), nil
	}
	return n, nil
}

// within reports EINVAL for a negative offset and EIO unless all n bytes
// at off lie inside a device of size bytes.
func within(n int, off, size int64) error {
	if off < 0 {
		return syscall.EINVAL
	}
	if off > size || int64(n) > size-off {
		return syscall.EIO
	}
	return nil
}
