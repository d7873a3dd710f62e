package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// buildRump9p builds the binary once per test process.
var buildRump9p = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "rump9p-bench-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "rump9p")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/rump9p/rump9p/cmd/rump9p").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// world is an image and the peers serving it.
type world struct {
	dir   string
	peers []*peer
}

func setup(tb testing.TB, t Tree, dir string) *world {
	tb.Helper()
	bin, err := buildRump9p()
	if err != nil {
		tb.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	img := filepath.Join(dir, "ext2.img")
	if err := os.MkdirAll(src, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := makeTree(src, t); err != nil {
		tb.Fatal(err)
	}
	if err := makeImage(src, img, t); err != nil {
		tb.Fatal(err)
	}
	w := &world{dir: dir}
	for _, start := range []func() (*peer, error){
		func() (*peer, error) { return startRump9p(bin, img, dir, "unix", 0) },
		func() (*peer, error) { return startRump9p(bin, img, dir, "tcp", freePort()) },
		func() (*peer, error) { return startDiod(img, dir, freePort()) },
	} {
		p, err := start()
		if err != nil {
			w.close()
			tb.Fatal(err)
		}
		w.peers = append(w.peers, p)
	}
	return w
}

func (w *world) close() {
	for _, p := range w.peers {
		p.stop()
	}
}

// TestPeersAgree reads a small tree through rump9p (ext2 driver) and
// through diod (Linux's ext2 on a loop device) and requires the same bytes:
// an independent cross-check of the driver, and a guard that the
// benchmark harness works.
func TestPeersAgree(t *testing.T) {
	w := setup(t, Tree{BigSize: 3<<20 + 12345, SmallFiles: 300, PerDir: 50}, t.TempDir())
	defer w.close()
	var ref map[string][]byte
	for _, p := range w.peers {
		cl, root, err := p.connect(256 << 10)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		got := map[string][]byte{}
		buf := make([]byte, p.ioCount(256<<10))
		err = walkTree(root, p.readdirCount(256<<10), "", func(path string) error {
			_, data, err := readAll(root, path, buf, true)
			got[path] = data
			return err
		})
		cl.Close()
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if len(got) != 301 {
			t.Errorf("%s: %d files, want 301", p.name, len(got))
		}
		if ref == nil {
			ref = got
			continue
		}
		for path, data := range ref {
			if !bytes.Equal(got[path], data) {
				t.Errorf("%s: %s differs (%d vs %d bytes)", p.name, path, len(got[path]), len(data))
			}
		}
	}
}

var (
	benchOnce  sync.Once
	benchWorld *world
	benchErr   string
)

// benchSetup makes the 1 GiB + 20,000-file image once for all benchmarks.
func benchSetup(b *testing.B) *world {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("/var/tmp", "rump9p-bench")
		if err != nil {
			benchErr = err.Error()
			return
		}
		benchErr = "setup failed"
		benchWorld = setup(b, Tree{BigSize: 1 << 30, SmallFiles: 20000, PerDir: 200}, dir)
	})
	if benchWorld == nil {
		b.Fatal(benchErr)
	}
	return benchWorld
}

// BenchmarkSeqRead reads the 1 GiB file through each peer with the
// largest msize each negotiates (rump9p 1 MiB, diod 64 KiB).
func BenchmarkSeqRead(b *testing.B) {
	w := benchSetup(b)
	for _, p := range w.peers {
		b.Run(p.name, func(b *testing.B) {
			cl, root, err := p.connect(1 << 20)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			buf := make([]byte, p.ioCount(1<<20))
			b.SetBytes(1 << 30)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n, _, err := readAll(root, "big", buf, false)
				if err != nil || n != 1<<30 {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
		})
	}
}

// BenchmarkTree walks the 20,000-file tree and reads every file.
func BenchmarkTree(b *testing.B) {
	w := benchSetup(b)
	for _, p := range w.peers {
		b.Run(p.name, func(b *testing.B) {
			cl, root, err := p.connect(1 << 20)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			buf := make([]byte, p.ioCount(1<<20))
			b.ResetTimer()
			files := 0
			for i := 0; i < b.N; i++ {
				err := walkTree(root, p.readdirCount(1<<20), "small", func(path string) error {
					files++
					_, _, err := readAll(root, path, buf, false)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(files)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchWorld != nil {
		benchWorld.close()
		os.RemoveAll(benchWorld.dir)
	}
	os.Exit(code)
}
