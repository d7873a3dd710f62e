// Package blkdev is the block layer under the file system drivers: devices
// over image files, partition windows, and a buffer cache.
package blkdev

import "io"

// Device is a block device: an image file or a window on one. ReadAt and
// WriteAt follow io.ReaderAt and io.WriterAt; an access past Size is an
// error. A Device is safe for concurrent use.
//
// The devices of this package (Open, NewMemDevice, Window) report errors
// as follows: a negative offset gives syscall.EINVAL; a read that extends
// past Size returns the bytes inside the device and syscall.EIO; a write
// that extends past Size writes nothing and gives syscall.EIO (a device
// never grows); a write to a read-only device gives syscall.EROFS. Host
// I/O errors are returned as the os package reports them (*os.PathError
// wrapping the errno).
type Device interface {
	io.ReaderAt
	io.WriterAt
	// Size is the device's size in bytes.
	Size() int64
	// ReadOnly reports whether the device refuses writes (WriteAt fails
	// with EROFS).
	ReadOnly() bool
	// Sync makes every write so far durable (fsync of the image).
	Sync() error
	// Close releases the device and its lock. A window's Close closes the
	// device under it.
	Close() error
	// Name names the device in messages (the image path, with the
	// partition if any).
	Name() string
}
