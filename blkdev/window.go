package blkdev

import "syscall"

// window is a Device on a byte range of another Device.
type window struct {
	dev  Device
	off  int64
	size int64
	name string
}

// Window returns a Device on the size bytes of dev that start at offset:
// a partition. Accesses are bounds-checked against the window exactly as
// a device checks its own size (EIO past the end, EINVAL for a negative
// offset), so nothing outside the window is ever read or written. A range
// that does not fit in dev is clipped to the part that does (possibly
// empty); Partitions never yields such a range.
//
// name is the window's Name; "" means dev.Name(). The window owns dev:
// its Close closes dev.
func Window(dev Device, offset, size int64, name string) Device {
	total := dev.Size()
	if offset < 0 {
		offset = 0
	}
	if offset > total {
		offset = total
	}
	if size < 0 {
		size = 0
	}
	if size > total-offset {
		size = total - offset
	}
	if name == "" {
		name = dev.Name()
	}
	return &window{dev: dev, off: offset, size: size, name: name}
}

func (w *window) ReadAt(p []byte, off int64) (int, error) {
	want, err := clip(len(p), off, w.size)
	if err != nil {
		return 0, err
	}
	n, err := w.dev.ReadAt(p[:want], w.off+off)
	if err == nil && want < len(p) {
		err = syscall.EIO
	}
	return n, err
}

func (w *window) WriteAt(p []byte, off int64) (int, error) {
	if w.dev.ReadOnly() {
		return 0, syscall.EROFS
	}
	if err := within(len(p), off, w.size); err != nil {
		return 0, err
	}
	return w.dev.WriteAt(p, w.off+off)
}

func (w *window) Size() int64    { return w.size }
func (w *window) ReadOnly() bool { return w.dev.ReadOnly() }
func (w *window) Sync() error    { return w.dev.Sync() }
func (w *window) Close() error   { return w.dev.Close() }
func (w *window) Name() string   { return w.name }
