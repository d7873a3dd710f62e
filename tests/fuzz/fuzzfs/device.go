// Package fuzzfs is the common body of the driver fuzz targets
// (vnodeops/*/fuzz_test.go): a copy-on-write device over a known-good base
// image, the patch form of a fuzz input, and an exerciser that plays the
// kernel over a mounted file system. It asserts only what DESIGN.md
// promises of a corrupt image: no panic, no hang, and errors that are
// syscall.Errno values.
//
// A fuzz input in patch form is a selector byte (which base image,
// modulo the number of bases) and then 5-byte patches: a little-endian
// 32-bit offset, taken modulo the span of the base that holds data, and a
// byte XORed there. Inputs stay a few bytes long while the image they
// describe is always a whole, mostly valid file system, so the fuzzer
// spends its time in the driver, not in copying and minimising megabytes.
package fuzzfs

import (
	"encoding/binary"
	"os"
	"sync"
	"syscall"
)

// PatchLen is the size of one patch: a 32-bit offset and a byte.
const PatchLen = 5

// Decode splits a patch-form input into the index of its base image (of
// n) and its patches. An empty input is base 0 unpatched.
func Decode(data []byte, n int) (base int, patches []byte) {
	if len(data) == 0 {
		return 0, nil
	}
	return int(data[0]) % n, data[1:]
}

// Input builds a patch-form input: base, then each (offset, xor) pair.
func Input(base byte, patches ...Patch) []byte {
	b := []byte{base}
	for _, p := range patches {
		b = binary.LittleEndian.AppendUint32(b, p.Off)
		b = append(b, p.XOR)
	}
	return b
}

// Patch is one patch of an input: the byte at Off is XORed with XOR.
type Patch struct {
	Off uint32
	XOR byte
}

// Span is the length of the prefix of img that holds non-zero bytes,
// rounded up to 4 KiB: the part of a freshly made image that patches are
// worth aiming at. It is at least one byte.
func Span(img []byte) int64 {
	end := len(img)
	for end > 0 && img[end-1] == 0 {
		end--
	}
	end = (end + 4095) &^ 4095
	return max(int64(min(end, len(img))), 1)
}

// secSize is the granularity at which Overlay copies the base.
const secSize = 512

// Overlay is a blkdev.Device that reads a shared base image and keeps its
// own writes (and patches) in copied sectors, so that one 33 MiB FAT32
// image serves every execution without being copied. Its bounds and
// errors are those of blkdev's devices.
type Overlay struct {
	mu     sync.Mutex
	name   string
	base   []byte
	ro     bool
	closed bool
	secs   map[int64][]byte
}

// NewOverlay returns a device over base, which it never writes.
func NewOverlay(name string, base []byte, readOnly bool) *Overlay {
	return &Overlay{name: name, base: base, ro: readOnly, secs: map[int64][]byte{}}
}

// Apply XORs the patches (see the package comment) into the device,
// whether or not it is read-only; offsets are taken modulo span.
func (o *Overlay) Apply(patches []byte, span int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := 0; i+PatchLen <= len(patches); i += PatchLen {
		off := int64(binary.LittleEndian.Uint32(patches[i:])) % min(span, int64(len(o.base)))
		o.sector(off / secSize)[off%secSize] ^= patches[i+4]
	}
}

// sector returns the writable copy of sector s. o.mu is held.
func (o *Overlay) sector(s int64) []byte {
	if b, ok := o.secs[s]; ok {
		return b
	}
	b := make([]byte, secSize)
	copy(b, o.base[min(s*secSize, int64(len(o.base))):])
	o.secs[s] = b
	return b
}

// ReadAt reads like blkdev's devices: the bytes inside, and EIO for a
// read that extends past Size.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	n := 0
	for n < len(p) && off+int64(n) < int64(len(o.base)) {
		at := off + int64(n)
		s, in := at/secSize, at%secSize
		end := min((s+1)*secSize, int64(len(o.base)))
		src := o.base[at:end]
		if b, ok := o.secs[s]; ok {
			src = b[in : end-s*secSize]
		}
		n += copy(p[n:], src)
	}
	if n < len(p) {
		return n, syscall.EIO
	}
	return n, nil
}

// WriteAt writes like blkdev's devices: EROFS when read-only, and
// nothing but EIO for a write that extends past Size.
func (o *Overlay) WriteAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closed:
		return 0, os.ErrClosed
	case o.ro:
		return 0, syscall.EROFS
	case off < 0:
		return 0, syscall.EINVAL
	case off > int64(len(o.base))-int64(len(p)):
		return 0, syscall.EIO
	}
	for n := 0; n < len(p); {
		at := off + int64(n)
		n += copy(o.sector(at / secSize)[at%secSize:], p[n:])
	}
	return len(p), nil
}

// Size is the size of the base image.
func (o *Overlay) Size() int64 { return int64(len(o.base)) }

// ReadOnly reports whether writes fail with EROFS.
func (o *Overlay) ReadOnly() bool { return o.ro }

// Sync does nothing: the device lives in memory.
func (o *Overlay) Sync() error { return nil }

// Name names the device in log lines.
func (o *Overlay) Name() string { return o.name }

// Close makes later reads and writes fail with os.ErrClosed.
func (o *Overlay) Close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	return nil
}

// Bytes returns the device's contents: the base with the copied sectors.
func (o *Overlay) Bytes() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := append([]byte(nil), o.base...)
	for s, sec := range o.secs {
		copy(b[s*secSize:], sec)
	}
	return b
}
