package tmpfs

import (
	"testing"
)

// BenchmarkSequentialWrite writes a 64 MiB file in 64 KiB chunks,
// truncating it between rounds.
func BenchmarkSequentialWrite(b *testing.B) {
	const fileSize, chunk = 64 << 20, 64 << 10
	fs, root := newFS(b, Options{})
	f := create(b, fs, root, "f")
	p := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	off := int64(0)
	for b.Loop() {
		if off == fileSize {
			b.StopTimer()
			ok(b, "truncate", f.Setattr(setSize(0)))
			off = 0
			b.StartTimer()
		}
		if _, err := f.Write(p, off); err != nil {
			b.Fatal(err)
		}
		off += chunk
	}
}

// BenchmarkSequentialRead reads a 64 MiB file in 64 KiB chunks.
func BenchmarkSequentialRead(b *testing.B) {
	const fileSize, chunk = 64 << 20, 64 << 10
	fs, root := newFS(b, Options{})
	f := create(b, fs, root, "f")
	p := make([]byte, chunk)
	for off := int64(0); off < fileSize; off += chunk {
		if _, err := f.Write(p, off); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(chunk)
	b.ResetTimer()
	off := int64(0)
	for b.Loop() {
		if _, err := f.Read(p, off); err != nil {
			b.Fatal(err)
		}
		off = (off + chunk) % fileSize
	}
}
