package fuzzfs

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
)

// TestOverlayLikeMemDevice drives an Overlay and a blkdev.MemDevice with
// the same random reads, writes and patches: same bytes, same errors, and
// the base never written.
func TestOverlayLikeMemDevice(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	base := make([]byte, 5000) // not a whole number of sectors
	rng.Read(base)
	orig := append([]byte(nil), base...)
	o := NewOverlay("o", base, false)
	m := blkdev.NewMemDeviceFrom(append([]byte(nil), base...), false)
	for i := range 2000 {
		off := int64(rng.Intn(5200)) - 50
		p := make([]byte, rng.Intn(1500))
		switch rng.Intn(3) {
		case 0:
			rng.Read(p)
			n1, err1 := o.WriteAt(p, off)
			n2, err2 := m.WriteAt(p, off)
			if n1 != n2 || !errors.Is(err1, err2) {
				t.Fatalf("op %d: WriteAt(%d, %d): overlay %d %v, mem %d %v", i, len(p), off, n1, err1, n2, err2)
			}
		case 1:
			q := make([]byte, len(p))
			n1, err1 := o.ReadAt(p, off)
			n2, err2 := m.ReadAt(q, off)
			if n1 != n2 || !errors.Is(err1, err2) || !bytes.Equal(p[:n1], q[:n2]) {
				t.Fatalf("op %d: ReadAt(%d, %d): overlay %d %v, mem %d %v", i, len(p), off, n1, err1, n2, err2)
			}
		case 2:
			at, x := uint32(rng.Intn(1<<20)), byte(rng.Intn(256))
			o.Apply(Input(0, Patch{Off: at, XOR: x})[1:], 4096)
			b := make([]byte, 1)
			m.ReadAt(b, int64(at%4096))
			m.WriteAt([]byte{b[0] ^ x}, int64(at%4096))
		}
	}
	if !bytes.Equal(o.Bytes(), m.Bytes()) {
		t.Error("contents differ")
	}
	if !bytes.Equal(base, orig) {
		t.Error("the base was written")
	}
}

func TestSpan(t *testing.T) {
	for _, c := range []struct {
		size, last int
		want       int64
	}{{10000, 0, 4096}, {10000, 4095, 4096}, {10000, 4096, 8192}, {5000, 4999, 5000}, {0, -1, 1}, {100, -1, 1}} {
		img := make([]byte, c.size)
		if c.last >= 0 {
			img[c.last] = 1
		}
		if got := Span(img); got != c.want {
			t.Errorf("Span(%d bytes, last non-zero %d) = %d, want %d", c.size, c.last, got, c.want)
		}
	}
}
