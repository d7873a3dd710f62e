package ext2fs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkSeqRead reads a 64 MiB file (made by mke2fs -d) through the
// kernel in 1 MiB reads, on read-only and read-write mounts.
func BenchmarkSeqRead(b *testing.B) {
	for _, ro := range []bool{true, false} {
		name := "rw"
		if ro {
			name = "ro"
		}
		for _, bsz := range []string{"1024", "4096"} {
			b.Run(name+"-"+bsz, func(b *testing.B) {
				src := b.TempDir()
				if err := os.WriteFile(filepath.Join(src, "f"), pattern(64<<20, 1), 0o644); err != nil {
					b.Fatal(err)
				}
				img := filepath.Join(b.TempDir(), "img")
				mkfs(b, img, "96M", src, "-t", "ext2", "-b", bsz)
				_, p := boot(b, img, ro, nil)
				buf := make([]byte, 1<<20)
				b.SetBytes(64 << 20)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					fd, err := p.Open("/mnt/f", syscall.O_RDONLY, 0)
					if err != nil {
						b.Fatal(err)
					}
					for {
						n, err := p.Read(fd, buf)
						if err != nil {
							b.Fatal(err)
						}
						if n == 0 {
							break
						}
					}
					p.Close(fd)
				}
			})
		}
	}
}

// BenchmarkSeqWrite writes a 32 MiB file in 1 MiB writes on a fresh
// image and removes it.
func BenchmarkSeqWrite(b *testing.B) {
	for _, bsz := range []string{"1024", "4096"} {
		b.Run(bsz, func(b *testing.B) {
			img := filepath.Join(b.TempDir(), "img")
			mkfs(b, img, "64M", "", "-t", "ext2", "-b", bsz)
			_, p := boot(b, img, false, nil)
			buf := pattern(1<<20, 2)
			b.SetBytes(32 << 20)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fd, err := p.Open("/mnt/f", syscall.O_CREAT|syscall.O_WRONLY|syscall.O_TRUNC, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				for j := 0; j < 32; j++ {
					if _, err := p.Write(fd, buf); err != nil {
						b.Fatal(err)
					}
				}
				p.Close(fd)
			}
		})
	}
}
