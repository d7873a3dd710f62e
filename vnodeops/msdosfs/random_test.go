package msdosfs_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
)

// TestRandomOps runs random operations against the driver and a model
// (a map of paths), then compares the image with the model through the
// driver, fsck.fat and mtools.
func TestRandomOps(t *testing.T) {
	for _, bits := range fatTypes {
		for seed := int64(1); seed <= 2; seed++ {
			t.Run(fmt.Sprintf("FAT%d/seed%d", bits, seed), func(t *testing.T) {
				randomOps(t, bits, seed)
			})
		}
	}
}

func randomOps(t *testing.T, bits int, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	img := mkfs(t, bits)
	k, p := boot(t, img, rumpcore.MountSpec{})
	files := map[string][]byte{} // path below /mnt -> content
	dirs := map[string]bool{"": true}
	names := []string{"a", "B.TXT", "c.txt", "Long Name %d.data", "ünï %d", "x%d", "Mixed%dCase.Txt", "deep dir %d"}
	pick := func(m map[string]bool) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys[rng.Intn(len(keys))]
	}
	pickFile := func() (string, bool) {
		if len(files) == 0 {
			return "", false
		}
		keys := make([]string, 0, len(files))
		for k := range files {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys[rng.Intn(len(keys))], true
	}
	join := func(dir, name string) string {
		if dir == "" {
			return name
		}
		return dir + "/" + name
	}
	// exists reports whether path names something, case-insensitively
	// in its last component (FAT lookup).
	exists := func(path string) bool {
		for f := range files {
			if filepath.Dir(f) == filepath.Dir(path) && equalFold(filepath.Base(f), filepath.Base(path)) {
				return true
			}
		}
		for d := range dirs {
			if d != "" && filepath.Dir(d) == filepath.Dir(path) && equalFold(filepath.Base(d), filepath.Base(path)) {
				return true
			}
		}
		return false
	}
	newName := func() string {
		n := names[rng.Intn(len(names))]
		if bytes.Contains([]byte(n), []byte("%d")) {
			n = fmt.Sprintf(n, rng.Intn(40))
		}
		return n
	}
	for op := 0; op < 400; op++ {
		switch r := rng.Intn(10); {
		case r < 3: // create or overwrite part of a file
			path := join(pick(dirs), newName())
			if exists(path) && files[path] == nil {
				continue
			}
			fd, err := p.Open("/mnt/"+path, syscall.O_CREAT|syscall.O_RDWR, 0o644)
			if err != nil {
				t.Fatalf("op %d: open %s: %v", op, path, err)
			}
			data := files[path]
			off := rng.Intn(len(data) + 3000)
			chunk := make([]byte, rng.Intn(5000))
			rng.Read(chunk)
			if _, err := p.Pwrite(fd, chunk, int64(off)); err != nil {
				t.Fatalf("op %d: pwrite %s: %v", op, path, err)
			}
			p.Close(fd)
			if off+len(chunk) > len(data) {
				data = append(data, make([]byte, off+len(chunk)-len(data))...)
			}
			copy(data[off:], chunk)
			if data == nil {
				data = []byte{}
			}
			files[path] = data
		case r < 4: // truncate
			path, ok := pickFile()
			if !ok {
				continue
			}
			size := rng.Intn(len(files[path]) + 2000)
			if err := p.Truncate("/mnt/"+path, int64(size)); err != nil {
				t.Fatalf("op %d: truncate %s: %v", op, path, err)
			}
			data := files[path]
			if size <= len(data) {
				data = data[:size]
			} else {
				data = append(data, make([]byte, size-len(data))...)
			}
			files[path] = data
		case r < 5: // unlink
			path, ok := pickFile()
			if !ok {
				continue
			}
			if err := p.Unlink("/mnt/" + path); err != nil {
				t.Fatalf("op %d: unlink %s: %v", op, path, err)
			}
			delete(files, path)
		case r < 6: // mkdir
			parent := pick(dirs)
			if len(filepath.SplitList(parent)) > 3 {
				continue
			}
			path := join(parent, newName())
			if exists(path) {
				continue
			}
			if err := p.Mkdir("/mnt/"+path, 0o755); err != nil {
				t.Fatalf("op %d: mkdir %s: %v", op, path, err)
			}
			dirs[path] = true
		case r < 7: // rmdir an empty directory
			d := pick(dirs)
			if d == "" {
				continue
			}
			empty := true
			for f := range files {
				if filepath.Dir(f) == d {
					empty = false
				}
			}
			for dd := range dirs {
				if dd != d && filepath.Dir(dd) == d {
					empty = false
				}
			}
			err := p.Rmdir("/mnt/" + d)
			if empty != (err == nil) {
				t.Fatalf("op %d: rmdir %s (empty %v): %v", op, d, empty, err)
			}
			if err == nil {
				delete(dirs, d)
			}
		default: // rename a file, maybe over another
			from, ok := pickFile()
			if !ok {
				continue
			}
			to := join(pick(dirs), newName())
			if exists(to) && files[to] == nil {
				continue // a directory or a case variant
			}
			if equalFold(to, from) {
				continue
			}
			if err := p.Rename("/mnt/"+from, "/mnt/"+to); err != nil {
				t.Fatalf("op %d: rename %s -> %s: %v", op, from, to, err)
			}
			files[to] = files[from]
			delete(files, from)
		}
	}
	// Materialise the model and compare.
	src := t.TempDir()
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(src, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	compareTree(t, p, "/mnt", src)
	shutdown(t, k)
	fsck(t, img)
	crossCheck(t, img)
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }
