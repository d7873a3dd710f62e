package cd9660

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// TestMultiExtentPast4GiBSparse reads a file of two sections whose first
// is the largest a 32-bit data length allows (ECMA-119 6.5.1 and 9.1.4)
// and whose second lies past 4 GiB in the image, without writing 4 GiB:
// an xorriso image's two adjacent records become the sections, their
// extents moved to the end of the image file, which is then grown
// sparsely; markers written at the start, at the last bytes of the first
// section, across the boundary and at the end must read back in place,
// and the bytes between as zeros.
func TestMultiExtentPast4GiBSparse(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "aaa"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(src, "aab"), []byte("b"), 0o644)
	base, good := goodImage(t, src, "--norock")
	a := findRecord(t, good, good.Root(), "aaa")
	b := findRecord(t, good, good.Root(), "aab")
	if b.addr != a.addr+int64(a.length) {
		t.Fatalf("records not adjacent: %d+%d, %d", a.addr, a.length, b.addr)
	}
	const (
		first  = 0xFFFFF800     // the largest multiple of 2048 below 4 GiB
		second = 3<<20 + 12345  // past 4 GiB in the file
		size   = first + second // 4 GiB + 3 MiB + 12345
	)
	ext1 := uint32((int64(len(base)) + 2047) / 2048)
	ext2 := ext1 + first/2048
	img := bytes.Clone(base)
	img[a.addr+drFlags] |= flagMultiExt
	copy(img[b.addr+drName:], a.name)
	put32(img, a.addr+drExtent, ext1)
	put32(img, a.addr+drSize, first)
	put32(img, b.addr+drExtent, ext2)
	put32(img, b.addr+drSize, second)

	path := filepath.Join(t.TempDir(), "big.iso")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	start := int64(ext1) * 2048
	marks := map[int64]string{0: "START", first - 3: "EDGE!!", size - 3: "END"}
	for off, m := range marks {
		if _, err := f.WriteAt([]byte(m), start+off); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.WriteAt(img, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(start + size + 2048); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dev, err := blkdev.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Mount(vnodeops.MountArgs{Name: "sparse", Dev: dev, ReadOnly: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	defer fs.Unmount(false)
	v := vnodeAt(t, fs, "/aaa")
	if n := len(v.(*node).sections); n != 2 {
		t.Errorf("%d sections, want 2", n)
	}
	if a, _ := v.Getattr(); a.Size != size {
		t.Errorf("size %d, want %d", a.Size, size)
	}
	for off, m := range marks {
		from := max(off-5, 0)
		buf := make([]byte, off+int64(len(m))+5-from)
		n, err := v.Read(buf, from)
		want := make([]byte, len(buf))
		copy(want[off-from:], m)
		if off == size-3 {
			want = want[:len(want)-5] // EOF
		}
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Errorf("at %d: %q, %v; want %q", off, buf[:n], err, want)
		}
	}
	if _, err := lookupPath(fs, "/aab"); err == nil {
		t.Errorf("the continuation record is found as a file of its own")
	}
}
