package blkdev

import (
	"os"
	"sync"
	"syscall"
)

// MemDevice is a Device held in memory, for tests and scratch file
// systems. Its bounds and errors are those of an image file. It is safe
// for concurrent use.
type MemDevice struct {
	mu     sync.RWMutex
	data   []byte
	ro     bool
	closed bool
	name   string
}

// NewMemDevice returns a zeroed read-write in-memory device of size bytes.
// A negative size panics.
func NewMemDevice(size int64) Device {
	if size < 0 {
		panic("blkdev: NewMemDevice with negative size")
	}
	return &MemDevice{data: make([]byte, size), name: "mem"}
}

// NewMemDeviceFrom returns an in-memory device over data, which it uses
// (and writes, unless readOnly) in place; the caller must not touch data
// while the device is in use.
func NewMemDeviceFrom(data []byte, readOnly bool) *MemDevice {
	return &MemDevice{data: data, ro: readOnly, name: "mem"}
}

// Bytes returns a copy of the device's contents (also after Close).
func (m *MemDevice) Bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]byte(nil), m.data...)
}

// ReadAt follows (*fileDevice).ReadAt: bytes past Size give EIO.
func (m *MemDevice) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, os.ErrClosed
	}
	want, err := clip(len(p), off, int64(len(m.data)))
	if err != nil {
		return 0, err
	}
	n := copy(p[:want], m.data[off:])
	if n < len(p) {
		return n, syscall.EIO
	}
	return n, nil
}

// WriteAt follows (*fileDevice).WriteAt: EROFS when read-only, EIO past
// Size.
func (m *MemDevice) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, os.ErrClosed
	}
	if m.ro {
		return 0, syscall.EROFS
	}
	if err := within(len(p), off, int64(len(m.data))); err != nil {
		return 0, err
	}
	return copy(m.data[off:], p), nil
}

func (m *MemDevice) Size() int64    { return int64(len(m.data)) }
func (m *MemDevice) ReadOnly() bool { return m.ro }
func (m *MemDevice) Name() string   { return m.name }
func (m *MemDevice) Sync() error    { return nil }

// Close makes later reads and writes fail with os.ErrClosed.
func (m *MemDevice) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}
