package ffs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// benchVariants are a UFS1 and a UFS2 image of 32 KiB blocks.
var benchVariants = []variant{variants[1], variants[5]}

// BenchmarkSeqRead reads a 32 MiB file made by makefs in 1 MiB reads
// through the vnode operations.
func BenchmarkSeqRead(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			src := b.TempDir()
			if err := os.WriteFile(filepath.Join(src, "f"), pattern(32<<20, 1), 0o644); err != nil {
				b.Fatal(err)
			}
			img := filepath.Join(b.TempDir(), "img")
			makefs(b, img, src, v, "48m")
			c := newClient(b, mountImage(b, img, true, nil, nil))
			f := c.must("f")
			buf := make([]byte, 1<<20)
			b.SetBytes(32 << 20)
			b.ResetTimer()
			for range b.N {
				for off := int64(0); ; off += int64(len(buf)) {
					n, err := f.Read(buf, off)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						break
					}
				}
			}
		})
	}
}

// BenchmarkSeqWrite writes a 32 MiB file in 1 MiB writes on a fresh
// image and truncates it away.
func BenchmarkSeqWrite(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			img := filepath.Join(b.TempDir(), "img")
			makefs(b, img, b.TempDir(), v, "64m")
			c := newClient(b, mountImage(b, img, false, nil, nil))
			ino, err := c.must("").(vnodeops.ReadWriteVnode).Create("f", 0o644, 0, 0)
			if err != nil {
				b.Fatal(err)
			}
			f, _ := c.get(ino)
			w := f.(vnodeops.ReadWriteVnode)
			buf := pattern(1<<20, 2)
			b.SetBytes(32 << 20)
			b.ResetTimer()
			for range b.N {
				for j := range 32 {
					if _, err := w.Write(buf, int64(j)<<20); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreate creates and removes 1000 empty files in one directory.
func BenchmarkCreate(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) {
			img := filepath.Join(b.TempDir(), "img")
			makefs(b, img, b.TempDir(), v, "32m", "-f", "3000")
			c := newClient(b, mountImage(b, img, false, nil, nil))
			root := c.must("").(vnodeops.ReadWriteVnode)
			b.ResetTimer()
			for range b.N {
				for i := range 1000 {
					name := fmt.Sprintf("file-%04d", i)
					ino, err := root.Create(name, 0o644, 0, 0)
					if err != nil {
						b.Fatal(err)
					}
					f, _ := c.get(ino)
					if err := root.Remove(name, f); err != nil {
						b.Fatal(err)
					}
					c.drop(ino)
				}
			}
		})
	}
}
