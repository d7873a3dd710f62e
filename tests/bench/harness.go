// Package bench measures rump9p against its peers on the same image and
// the same 9P client: "rump9p serve" with its own ext2 driver, and diod
// serving the image loop-mounted by the host kernel.
//
//	go test ./tests/bench -run XXX -bench . -benchtime 3x
//
// The benchmarks need root (for the loop mount), mke2fs and diod; the
// test command installs the tools. TestPeersAgree runs the same harness
// on a small tree in every test run, so it cannot rot.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/tests/p9raw"
)

// Tree describes the content the benchmarks read.
type Tree struct {
	BigSize    int64 // one file "big" of this size
	SmallFiles int   // files of 1-16 KiB under small/dNNN/
	PerDir     int
}

// makeTree writes t under dir, deterministically.
func makeTree(dir string, t Tree) error {
	rng := rand.New(rand.NewSource(1))
	block := make([]byte, 1<<20)
	rng.Read(block)
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		return err
	}
	for off := int64(0); off < t.BigSize; off += int64(len(block)) {
		n := min(int64(len(block)), t.BigSize-off)
		block[0] = byte(off >> 20) // no two MiB alike
		if _, err := f.Write(block[:n]); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	for i := 0; i < t.SmallFiles; i++ {
		sub := filepath.Join(dir, "small", fmt.Sprintf("d%03d", i/t.PerDir))
		if i%t.PerDir == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
		}
		size := 1024 + rng.Intn(15*1024)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", i)), block[i%1000:i%1000+size], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// makeImage builds an ext2 image of src with mke2fs -d.
func makeImage(src, img string, t Tree) error {
	mib := t.BigSize>>20 + int64(t.SmallFiles)*20/1024 + 64
	mib += mib / 5
	out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "4096", "-N", fmt.Sprint(t.SmallFiles+1024),
		"-d", src, img, fmt.Sprintf("%dM", mib)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mke2fs: %v\n%s", err, out)
	}
	return nil
}

// peer is a running 9P server over the image.
type peer struct {
	name    string
	network string
	addr    string
	aname   string
	diod    bool // needs the diod client dialect
	stop    func()
}

// diodMsize is the msize diod always negotiates.
const diodMsize = 65536

// readdirCount is the Treaddir byte budget for msize: what fits one
// Rreaddir (Linux uses msize - P9_READDIRHDRSZ (24) too); diod answers EIO
// to a larger one.
func (p *peer) readdirCount(msize uint32) uint32 {
	if p.diod {
		msize = min(msize, diodMsize)
	}
	return msize - 24
}

// startRump9p runs the rump9p binary on img (read-only) on network.
func startRump9p(bin, img, dir, network string, port int) (*peer, error) {
	listen := "unix:" + filepath.Join(dir, "rump9p.sock")
	addr := filepath.Join(dir, "rump9p.sock")
	if network == "tcp" {
		addr = fmt.Sprintf("127.0.0.1:%d", port)
		listen = "tcp:" + addr
	}
	cfg := filepath.Join(dir, "rump9p-"+network+".yaml")
	body := fmt.Sprintf("listen: [%q]\nlog: {level: warn}\ncache: 256M\nmounts:\n  - {name: img, type: ext2fs, image: %q, readonly: true}\n", listen, img)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-c", cfg)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &peer{name: "rump9p-" + network, network: network, addr: addr, aname: "img", stop: func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}}
	if err := waitDial(network, addr); err != nil {
		p.stop()
		return nil, fmt.Errorf("rump9p did not start: %v\n%s", err, logs.String())
	}
	return p, nil
}

// startDiod loop-mounts img read-only and serves it with diod over TCP.
func startDiod(img, dir string, port int) (*peer, error) {
	mnt := filepath.Join(dir, "loop")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("mount", "-o", "loop,ro", "-t", "ext2", img, mnt).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("loop mount (needs root): %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command("diod", "-f", "-n", "-c", "/dev/null", "-l", addr, "-e", mnt)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		exec.Command("umount", mnt).Run()
		return nil, err
	}
	p := &peer{name: "diod-tcp", network: "tcp", addr: addr, aname: mnt, diod: true, stop: func() {
		cmd.Process.Kill()
		cmd.Wait()
		exec.Command("umount", mnt).Run()
	}}
	if err := waitDial("tcp", addr); err != nil {
		p.stop()
		return nil, fmt.Errorf("diod did not start: %v\n%s", err, logs.String())
	}
	return p, nil
}

func waitDial(network, addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// connect opens a p9 client to p with msize and attaches as root.
func (p *peer) connect(msize uint32) (*p9.Client, p9.File, error) {
	c, err := net.Dial(p.network, p.addr)
	if err != nil {
		return nil, nil, err
	}
	conn := &p9raw.Conn{Conn: c, Rewrite: p9raw.AttachAs(0)}
	if p.diod {
		conn.Rewrite = p9raw.Diod(0)
	}
	cl, err := p9.NewClient(conn, p9.WithMessageSize(msize))
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	root, err := cl.Attach(p.aname)
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return cl, root, nil
}

// ioCount is the Tread count for msize: the p9 client does not lower it to
// what the server negotiated, and diod answers EIO past its msize.
func (p *peer) ioCount(msize uint32) int {
	return int(p.readdirCount(msize)) &^ 511
}

// readAll reads the file at path below root with reads of len(buf) bytes
// into buf and returns how many bytes it read (and the content if keep is
// set). Callers reuse buf: allocating a read buffer per file would
// measure the allocator.
func readAll(root p9.File, path string, buf []byte, keep bool) (int64, []byte, error) {
	_, f, err := root.Walk(strings.Split(path, "/"))
	if err != nil {
		return 0, nil, fmt.Errorf("walk %s: %w", path, err)
	}
	defer f.Close()
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		return 0, nil, fmt.Errorf("open %s: %w", path, err)
	}
	var total int64
	var content []byte
	for {
		n, err := f.ReadAt(buf, total)
		if keep {
			content = append(content, buf[:n]...)
		}
		total += int64(n)
		if err == io.EOF || (n == 0 && err == nil) {
			return total, content, nil
		}
		if err != nil {
			return total, content, err
		}
	}
}

// walkTree lists dir recursively (Treaddir) and calls fn for each regular
// file's path.
func walkTree(root p9.File, count uint32, dir string, fn func(path string) error) error {
	var names []string
	if dir != "" {
		names = strings.Split(dir, "/")
	}
	_, d, err := root.Walk(names)
	if err != nil {
		return err
	}
	if _, _, err := d.Open(p9.ReadOnly); err != nil {
		d.Close()
		return err
	}
	var ents []p9.Dirent
	var off uint64
	for {
		batch, err := d.Readdir(off, count)
		if err != nil {
			d.Close()
			return err
		}
		if len(batch) == 0 {
			break
		}
		ents = append(ents, batch...)
		off = batch[len(batch)-1].Offset
	}
	d.Close()
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		p := e.Name
		if dir != "" {
			p = dir + "/" + e.Name
		}
		if e.Type == p9.TypeDir || e.QID.Type == p9.TypeDir {
			if err := walkTree(root, count, p, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}
