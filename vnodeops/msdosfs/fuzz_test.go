package msdosfs_test

import (
	"encoding/binary"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
	"github.com/rump9p/rump9p/vnodeops/msdosfs"
)

// fuzzImage turns a fuzz input into an image: the input is the start of
// the image (boot sector, FATs, directories) and the rest, up to the size
// the BPB claims (at most 4 MiB), is zeros, so that seeds stay small.
func fuzzImage(data []byte) []byte {
	if len(data) < 512 {
		return data
	}
	size := int64(binary.LittleEndian.Uint16(data[19:])) * int64(binary.LittleEndian.Uint16(data[11:]))
	if size == 0 {
		size = int64(binary.LittleEndian.Uint32(data[32:])) * int64(binary.LittleEndian.Uint16(data[11:]))
	}
	size = min(size, 4<<20)
	if size <= int64(len(data)) {
		return data
	}
	img := make([]byte, size)
	copy(img, data)
	return img
}

// FuzzMount mounts a mutated image and walks it: every directory (to a
// bounded depth and width), every file read, then a few writes. It must
// not panic or hang, whatever the image holds.
func FuzzMount(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		img := fuzzImage(data)
		if !probeOK(img) {
			return
		}
		// A hang is a failure: crash (and so record the input) instead.
		watchdog := time.AfterFunc(20*time.Second, func() { panic("FuzzMount: input takes over 20 s") })
		defer watchdog.Stop()
		dev := blkdev.NewMemDeviceFrom(img, false)
		fs, err := msdosfs.Mount(vnodeops.MountArgs{
			Name: "fuzz", Dev: dev, CacheBytes: 1 << 20, Log: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return
		}
		w := &walker{fs: fs, budget: 2000}
		root := fs.Root()
		w.walk(root, 0)
		// Writes exercise allocation on whatever the FAT holds.
		if v, err := w.get(root); err == nil {
			if ino, err := v.Create("new file.txt", 0o644, 0, 0); err == nil {
				if f, err := w.get(ino); err == nil {
					f.Write(make([]byte, 5000), 0)
					f.Setattr(vnodeops.SetAttr{Mask: vnodeops.SetSize, Size: 100})
					v.Remove("new file.txt", f)
				}
			}
			if ino, err := v.Mkdir("NEWDIR", 0o755, 0, 0); err == nil {
				if d, err := w.get(ino); err == nil {
					d.Create("inner", 0o644, 0, 0)
					// Move the first file or directory found into it.
					for _, e := range w.rootEnts {
						if e.Name == "." || e.Name == ".." || e.Name == "NEWDIR" || e.Ino == ino {
							continue
						}
						if fv, err := w.get(e.Ino); err == nil {
							v.Rename(e.Name, fv, d, "moved here", nil)
						}
						break
					}
				}
			}
		}
		w.putAll()
		fs.Sync()
		fs.Unmount(false)
	})
}

func probeOK(img []byte) bool {
	d, ok := vnodeops.Lookup("msdosfs")
	return ok && d.Probe(readerAt(img), int64(len(img)))
}

type readerAt []byte

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r)) {
		return 0, io.EOF
	}
	n := copy(p, r[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// walker plays the kernel: one vnode per inode, released at the end.
type walker struct {
	fs       vnodeops.FS
	live     map[uint64]vnodeops.Vnode
	budget   int
	rootEnts []vnodeops.Dirent
}

func (w *walker) get(ino uint64) (vnodeops.Vnode, error) {
	if w.live == nil {
		w.live = map[uint64]vnodeops.Vnode{}
	}
	if v, ok := w.live[ino]; ok {
		return v, nil
	}
	v, err := w.fs.VGet(ino)
	if err != nil {
		return nil, err
	}
	w.live[ino] = v
	return v, nil
}

func (w *walker) putAll() {
	for _, v := range w.live {
		v.Inactive()
		v.Reclaim()
	}
	w.live = nil
}

func (w *walker) walk(ino uint64, depth int) {
	v, err := w.get(ino)
	if err != nil {
		return
	}
	a, err := v.Getattr()
	if err != nil {
		return
	}
	if !a.IsDir() {
		buf := make([]byte, 4096)
		for off := int64(0); off < 1<<20; off += int64(len(buf)) {
			n, err := v.Read(buf, off)
			if err != nil || n == 0 {
				break
			}
		}
		return
	}
	if depth > 6 {
		return
	}
	var ents []vnodeops.Dirent
	v.Readdir(0, func(d vnodeops.Dirent) bool {
		w.budget--
		if w.budget < 0 {
			return false
		}
		ents = append(ents, d)
		return true
	})
	if depth == 0 {
		w.rootEnts = ents
	}
	for _, d := range ents {
		if d.Name == "." || d.Name == ".." {
			continue
		}
		if got, err := v.Lookup(d.Name); err == nil && got == d.Ino {
			w.walk(d.Ino, depth+1)
		}
	}
	v.Lookup("..")
}
