package p9srv

import (
	"bytes"
	"testing"

	"github.com/hugelgupf/p9/p9"
)

// BenchmarkRead reads a 4 MiB file in msize-sized requests over a unix
// socket.
func BenchmarkRead(b *testing.B) {
	k := newKernel(b)
	_, addr := startServer(b, k, Options{}, true)
	cl, _ := dial(b, addr, 0, 1<<20)
	d := attach(b, cl, "tmp1")
	data := bytes.Repeat([]byte("x"), 4<<20)
	createFile(b, d, "big", data)
	f := walk(b, d, "big")
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, len(data))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := f.ReadAt(buf, 0); n != len(buf) {
			b.Fatalf("read %d: %v", n, err)
		}
	}
}

// BenchmarkWrite writes 4 MiB in msize-sized requests over a unix socket.
func BenchmarkWrite(b *testing.B) {
	k := newKernel(b)
	_, addr := startServer(b, k, Options{}, true)
	cl, _ := dial(b, addr, 0, 1<<20)
	d := attach(b, cl, "tmp1")
	f := createFile(b, d, "w", nil)
	data := bytes.Repeat([]byte("y"), 4<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := f.WriteAt(data, 0); n != len(data) {
			b.Fatalf("write %d: %v", n, err)
		}
	}
}

// BenchmarkWalkGetattr is the lookup round trip of a v9fs stat.
func BenchmarkWalkGetattr(b *testing.B) {
	k := newKernel(b)
	_, addr := startServer(b, k, Options{}, true)
	cl, _ := dial(b, addr, 0, 1<<16)
	d := attach(b, cl, "tmp1")
	createFile(b, d, "f", nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, f, err := d.Walk([]string{"f"})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := f.GetAttr(p9.AttrMaskAll); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
