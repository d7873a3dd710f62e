package msdosfs_test

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
)

// BenchmarkWriteRead writes and reads back a 16 MiB file on FAT32 in
// 64 KiB calls.
func BenchmarkWriteRead(b *testing.B) {
	img := mkfs(b, 32)
	k, p := boot(b, img, rumpcore.MountSpec{})
	defer shutdown(b, k)
	const size = 16 << 20
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		fd, err := p.Open("/mnt/big", syscall.O_CREAT|syscall.O_RDWR|syscall.O_TRUNC, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += len(chunk) {
			if _, err := p.Write(fd, chunk); err != nil {
				b.Fatal(err)
			}
		}
		buf := make([]byte, len(chunk))
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := p.Pread(fd, buf, off); err != nil {
				b.Fatal(err)
			}
		}
		p.Close(fd)
	}
}
