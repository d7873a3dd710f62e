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

func smallConfig(t *testing.T) Config {
	bin, err := buildRump9p()
	if b := os.Getenv("RUMP9P_BENCH_BIN"); b != "" {
		bin, err = b, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Tree:     Tree{BigSize: 3<<20 + 12345, SmallFiles: 300, PerDir: 50, WideFiles: 400, WriteRoom: 4 << 20},
		Sizes:    Sizes{Creates: 100, WriteSize: 2<<20 + 777, Readers: 3, Getattrs: 200},
		Reps:     1,
		Networks: []string{"unix", "tcp"},
		Msize:    256 << 10,
		Dir:      t.TempDir(),
		Server:   Options{Rump9p: bin, Cache: "16M"},
	}
}

// TestCompareSmall runs every workload once on each server and transport
// on a small tree: the harness works and both servers answer every
// workload without error, with the same amount of work done (no timing
// is checked).
func TestCompareSmall(t *testing.T) {
	cfg := smallConfig(t)
	res, err := Compare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range Workloads {
		for _, network := range cfg.Networks {
			a, okA := res.Median(w.Name, network, "rump9p")
			b, okB := res.Median(w.Name, network, "diod")
			if !okA || !okB {
				t.Errorf("%s over %s: no sample", w.Name, network)
				continue
			}
			if a.N != b.N {
				t.Errorf("%s over %s: rump9p did %d, diod %d", w.Name, network, a.N, b.N)
			}
		}
	}
	var tab bytes.Buffer
	res.Table(&tab)
	t.Logf("\n%s", tab.String())
	for _, network := range cfg.Networks {
		if ts := res.Transport[network]; ts.BytesPerSec <= 0 || ts.RoundTrip <= 0 {
			t.Errorf("%s alone: %+v", network, ts)
		}
	}
}

// TestPeersAgree reads the small tree through rump9p (ext2 driver) and
// through diod (Linux's ext2 on a loop device) and requires the same
// bytes: an independent cross-check of the driver.
func TestPeersAgree(t *testing.T) {
	cfg := smallConfig(t)
	src := filepath.Join(cfg.Dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := makeTree(src, cfg.Tree); err != nil {
		t.Fatal(err)
	}
	var ref map[string][]byte
	for _, name := range []string{"rump9p", "diod"} {
		dir := filepath.Join(cfg.Dir, name)
		os.MkdirAll(dir, 0o755)
		img := filepath.Join(dir, "ext2.img")
		if err := makeImage(src, img, cfg.Tree); err != nil {
			t.Fatal(err)
		}
		var s *Server
		var err error
		if name == "rump9p" {
			s, err = StartRump9p(cfg.Server, img, dir)
		} else {
			s, err = StartDiod(img, dir)
		}
		if err != nil {
			t.Fatal(err)
		}
		got := readTree(t, s)
		s.Stop()
		if len(got) != cfg.Tree.SmallFiles+1 {
			t.Errorf("%s: %d files, want %d", name, len(got), cfg.Tree.SmallFiles+1)
		}
		if ref == nil {
			ref = got
			continue
		}
		for path, data := range ref {
			if !bytes.Equal(got[path], data) {
				t.Errorf("%s: %s differs (%d vs %d bytes)", name, path, len(got[path]), len(data))
			}
		}
	}
}

// readTree reads small/ and big through s.
func readTree(t *testing.T, s *Server) map[string][]byte {
	c, err := s.Connect("unix", 256<<10)
	if err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	defer c.Close()
	got := map[string][]byte{}
	buf := make([]byte, c.IOCount)
	err = walkTree(c.Root, c.ReaddirCount, "", func(path string) error {
		if path == "/big" || filepath.Dir(filepath.Dir(path)) == "/small" {
			var data []byte
			_, err := readFile(c.Root, path, buf, 0, -1, &data)
			got[path] = data
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	return got
}

func TestMain(m *testing.M) {
	ServeEchoIfAsked()
	os.Exit(m.Run())
}

// TestCompareFUSESmall runs every FUSE workload once on "rump9p mount" and
// on fuse2fs; CompareFUSE itself requires e2fsck -fn clean on both images
// after the writes.
func TestCompareFUSESmall(t *testing.T) {
	cfg := smallConfig(t)
	res, err := CompareFUSE(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range PathWorkloads {
		a, okA := res.Median(w.Name, "fuse", "rump9p")
		b, okB := res.Median(w.Name, "fuse", "fuse2fs")
		if !okA || !okB || a.N != b.N {
			t.Errorf("%s: rump9p %+v, fuse2fs %+v", w.Name, a, b)
		}
	}
	var tab bytes.Buffer
	res.Table(&tab)
	t.Logf("\n%s", tab.String())
}
