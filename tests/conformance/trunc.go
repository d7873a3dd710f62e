package conformance

import (
	"bytes"
	"fmt"
	"math"
	"syscall"
)

func truncCases() []testCase {
	return []testCase{
		{name: "TruncateGrowShrink", fn: testTruncateGrowShrink},
		{name: "TruncateShrinkRegrowZeros", fn: testTruncateShrinkRegrow},
		{name: "TruncateErrors", fn: testTruncateErrors},
		{name: "SparseHoles", fn: testSparse},
		{name: "LargeOffset", fn: testLargeOffset},
		{name: "FileTooBig", fn: testFileTooBig},
	}
}

func (e *env) size(rel string) int64 {
	e.t.Helper()
	return int64(e.stat(rel).Size)
}

func testTruncateGrowShrink(e *env) {
	bs := e.blockSize()
	data := pattern(4*bs+100, 4)
	e.writeFile("f", data, 0o644)
	// Each step truncates to size and checks the whole content.
	want := append([]byte(nil), data...)
	steps := []int{
		4*bs + 100, // same size
		3*bs + 1,   // shrink into the middle of a block
		3 * bs,     // exactly to a block boundary
		bs - 1,     // shrink across several blocks
		2*bs + 7,   // grow across a boundary: zeros
		0,          // empty
		5*bs + 3,   // grow an empty file
	}
	for _, sz := range steps {
		e.ok(e.p.Truncate(e.path("f"), int64(sz)), "truncate to %d", sz)
		if sz <= len(want) {
			want = want[:sz]
		} else {
			want = append(want, make([]byte, sz-len(want))...)
		}
		if got := e.size("f"); got != int64(sz) {
			e.fatalf("size after truncate to %d: %d", sz, got)
		}
		got := e.readFile("f")
		if !bytes.Equal(got, want) {
			e.fatalf("content after truncate to %d: %s", sz, diffBytes(got, want))
		}
	}
	// Ftruncate through a descriptor, and writing after it.
	fd, err := e.p.Open(e.path("f"), syscall.O_RDWR, 0)
	e.ok(err, "open")
	e.ok(e.p.Ftruncate(fd, int64(bs+10)), "ftruncate")
	e.pwrite(e.p, fd, []byte("tail"), int64(2*bs))
	e.ok(e.p.Close(fd), "close")
	want = append(want[:bs+10], make([]byte, bs-10)...)
	want = append(want, "tail"...)
	e.checkContent("f", want)
}

func testTruncateShrinkRegrow(e *env) {
	bs := e.blockSize()
	for _, tc := range []struct{ write, shrink, grow int }{
		{3 * bs, bs + 1, 3 * bs},     // stale bytes in the same block must be zeroed
		{3 * bs, bs, 3 * bs},         // block-aligned shrink
		{8*bs + 9, 17, 10 * bs},      // shrink into the first block
		{2*bs - 1, 2*bs - 2, 2 * bs}, // one byte
		{bs/2 + 3, bs / 2, bs},       // within one block
	} {
		name := fmt.Sprintf("f%d_%d_%d", tc.write, tc.shrink, tc.grow)
		data := pattern(tc.write, 5)
		e.writeFile(name, data, 0o644)
		e.ok(e.p.Truncate(e.path(name), int64(tc.shrink)), "shrink %s", name)
		e.ok(e.p.Truncate(e.path(name), int64(tc.grow)), "regrow %s", name)
		got := e.readFile(name)
		if len(got) != tc.grow {
			e.fatalf("%s: size %d after regrow, want %d", name, len(got), tc.grow)
		}
		if !bytes.Equal(got[:tc.shrink], data[:tc.shrink]) {
			e.fatalf("%s: data before the shrink point changed: %s", name, diffBytes(got[:tc.shrink], data[:tc.shrink]))
		}
		for i := tc.shrink; i < tc.grow; i++ {
			if got[i] != 0 {
				e.fatalf("%s: byte %d is %#02x after shrink to %d and regrow to %d, want 0 (old data resurfaced)", name, i, got[i], tc.shrink, tc.grow)
			}
		}
		// Growing by a write past the end must zero the gap too.
		e.ok(e.p.Truncate(e.path(name), int64(tc.shrink)), "shrink %s again", name)
		fd, err := e.p.Open(e.path(name), syscall.O_WRONLY, 0)
		e.ok(err, "open %s", name)
		e.pwrite(e.p, fd, []byte{0xEE}, int64(tc.grow))
		e.ok(e.p.Close(fd), "close")
		got = e.readFile(name)
		if len(got) != tc.grow+1 || got[tc.grow] != 0xEE || !isZero(got[tc.shrink:tc.grow]) {
			e.fatalf("%s: writing past the end after a shrink did not leave zeros between %d and %d", name, tc.shrink, tc.grow)
		}
	}
}

func testTruncateErrors(e *env) {
	e.writeFile("f", []byte("abc"), 0o644)
	e.want(e.p.Truncate(e.path("f"), -1), "truncate to -1", syscall.EINVAL)
	e.mkdir("d", 0o755)
	e.want(e.p.Truncate(e.path("d"), 0), "truncate of a directory", syscall.EISDIR)
	e.want(e.p.Truncate(e.path("missing"), 0), "truncate of a missing file", syscall.ENOENT)
	fd, err := e.p.Open(e.path("f"), syscall.O_RDWR, 0)
	e.ok(err, "open")
	e.want(e.p.Ftruncate(fd, -1), "ftruncate to -1", syscall.EINVAL)
	e.ok(e.p.Close(fd), "close")
	e.checkContent("f", []byte("abc"))
	if e.caps.Symlinks {
		// truncate follows symbolic links.
		e.ok(e.p.Symlink("f", e.path("l")), "symlink")
		e.ok(e.p.Truncate(e.path("l"), 1), "truncate through a symlink")
		e.checkContent("f", []byte("a"))
	}
}

func testSparse(e *env) {
	bs := e.blockSize()
	hole := int64(256 * bs)
	if hole < 1<<20 {
		hole = 1 << 20
	}
	fd, err := e.p.Open(e.path("sparse"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create")
	head := pattern(100, 6)
	tail := pattern(bs+50, 7)
	e.pwrite(e.p, fd, head, 0)
	e.pwrite(e.p, fd, tail, hole)
	a, err := e.p.Fstat(fd)
	e.ok(err, "fstat")
	size := hole + int64(len(tail))
	if a.Size != uint64(size) {
		e.fatalf("size %d, want %d", a.Size, size)
	}
	if e.caps.Sparse {
		if a.Blocks*512 >= uint64(size) {
			e.t.Errorf("Blocks %d (%d bytes) for a sparse file of %d bytes: the hole was allocated", a.Blocks, a.Blocks*512, size)
		}
	} else {
		e.t.Logf("format is not sparse: Blocks %d for size %d", a.Blocks, size)
	}
	// The hole reads as zeros, in pieces of several sizes.
	for _, r := range []struct{ off, n int64 }{
		{100, int64(bs)}, {int64(bs), int64(bs)}, {hole / 2, 3*int64(bs) + 1}, {hole - 10, 10},
	} {
		if b := e.pread(e.p, fd, int(r.n), r.off); !isZero(b) {
			e.fatalf("hole at %d+%d does not read as zeros", r.off, r.n)
		}
	}
	if b := e.pread(e.p, fd, len(head), 0); !bytes.Equal(b, head) {
		e.fatalf("head: %s", diffBytes(b, head))
	}
	// A read spanning the end of the hole and the tail.
	b := e.pread(e.p, fd, 20+len(tail), hole-20)
	if !isZero(b[:20]) || !bytes.Equal(b[20:], tail) {
		e.fatalf("read across the end of the hole is wrong")
	}
	// Filling part of the hole leaves the rest zero.
	mid := pattern(10, 8)
	e.pwrite(e.p, fd, mid, hole/2+3)
	b = e.pread(e.p, fd, int(bs)*2, hole/2-int64(bs))
	want := make([]byte, 2*bs)
	copy(want[bs+3:], mid)
	if !bytes.Equal(b, want) {
		e.fatalf("after writing into the hole: %s", diffBytes(b, want))
	}
	e.ok(e.p.Close(fd), "close")
	// Truncate can make a file that is all hole.
	e.writeFile("allhole", nil, 0o644)
	e.ok(e.p.Truncate(e.path("allhole"), hole), "truncate up")
	a = e.stat("allhole")
	if e.caps.Sparse && a.Blocks*512 >= uint64(hole) {
		e.t.Errorf("a file extended by truncate has Blocks %d for size %d", a.Blocks, hole)
	}
	fd, err = e.p.Open(e.path("allhole"), syscall.O_RDONLY, 0)
	e.ok(err, "open allhole")
	if b := e.pread(e.p, fd, 4*bs, hole-int64(4*bs)); !isZero(b) {
		e.fatalf("file extended by truncate does not read as zeros")
	}
	e.ok(e.p.Close(fd), "close")
}

func (e *env) maxFileSize() int64 {
	if e.caps.MaxFileSize > 0 {
		return e.caps.MaxFileSize
	}
	return math.MaxInt64
}

func testLargeOffset(e *env) {
	data := []byte("far away")
	off := int64(1) << 33
	if off+int64(len(data)) > e.maxFileSize() {
		// Use the largest offset the format allows instead.
		off = e.maxFileSize() - int64(len(data))
		off -= off % 4096
		e.t.Logf("MaxFileSize %d: writing at %d instead of 2^33", e.caps.MaxFileSize, off)
	}
	if !e.caps.Sparse && off > 64<<20 {
		e.t.Skipf("%s: format is not sparse, and a write at %d would fill %d bytes", e.s.Name, off, off)
	}
	fd, err := e.p.Open(e.path("large"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create")
	e.pwrite(e.p, fd, data, off)
	a, err := e.p.Fstat(fd)
	e.ok(err, "fstat")
	if a.Size != uint64(off)+uint64(len(data)) {
		e.fatalf("size %d, want %d", a.Size, off+int64(len(data)))
	}
	if b := e.pread(e.p, fd, len(data), off); !bytes.Equal(b, data) {
		e.fatalf("read at %d: %q, want %q", off, b, data)
	}
	if b := e.pread(e.p, fd, 4096, off-4096); !isZero(b) {
		e.fatalf("the 4 KiB before %d are not zero", off)
	}
	if b := e.pread(e.p, fd, 4096, off/2); !isZero(b) {
		e.fatalf("the middle of the hole is not zero")
	}
	if e.caps.Sparse {
		if a.Blocks*512 > 16<<20 {
			e.t.Errorf("a file with %d bytes of data at offset %d allocates %d blocks", len(data), off, a.Blocks)
		}
	}
	// Lseek to the far end works too.
	pos, err := e.p.Lseek(fd, 0, 2)
	e.ok(err, "lseek SEEK_END")
	if pos != off+int64(len(data)) {
		e.fatalf("SEEK_END %d, want %d", pos, off+int64(len(data)))
	}
	e.ok(e.p.Ftruncate(fd, 5), "ftruncate the large file")
	e.ok(e.p.Close(fd), "close")
	if got := e.size("large"); got != 5 {
		e.fatalf("size after truncate %d", got)
	}
}

func testFileTooBig(e *env) {
	if e.caps.MaxFileSize <= 0 {
		// No format limit: only the 2^63 arithmetic limit remains.
		fd, err := e.p.Open(e.path("f"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
		e.ok(err, "create")
		_, err = e.p.Pwrite(fd, []byte("xx"), math.MaxInt64-1)
		e.want(err, "pwrite of 2 bytes at 2^63-2", syscall.EFBIG, syscall.EINVAL, syscall.ENOSPC)
		e.ok(e.p.Close(fd), "close")
		if got := e.size("f"); got != 0 {
			e.t.Errorf("a failed pwrite at 2^63-2 set the size to %d", got)
		}
		return
	}
	max := e.caps.MaxFileSize
	fd, err := e.p.Open(e.path("f"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create")
	_, err = e.p.Pwrite(fd, []byte("x"), max)
	e.want(err, fmt.Sprintf("pwrite at MaxFileSize %d", max), syscall.EFBIG)
	e.want(e.p.Ftruncate(fd, max+1), fmt.Sprintf("ftruncate to MaxFileSize+1 = %d", max+1), syscall.EFBIG, syscall.EINVAL)
	if got := e.size("f"); got != 0 {
		e.t.Errorf("failed writes past MaxFileSize left size %d", got)
	}
	if e.caps.Sparse {
		// The last byte below the limit can be written.
		e.pwrite(e.p, fd, []byte("y"), max-1)
		if got := e.size("f"); got != max {
			e.t.Errorf("size after writing the last allowed byte: %d, want %d", got, max)
		}
		// A write straddling the limit writes what fits or fails with EFBIG.
		n, err := e.p.Pwrite(fd, []byte("abc"), max-1)
		if err == nil && n != 1 {
			e.t.Errorf("pwrite of 3 bytes at MaxFileSize-1 returned %d and no error", n)
		} else if err != nil {
			e.wantSoft(err, "pwrite straddling MaxFileSize", syscall.EFBIG)
		}
	}
	e.ok(e.p.Close(fd), "close")
}
