// Package bench measures rump9p against diod, its peer, on the same image
// and with the same 9P client (hugelgupf/p9's): "rump9p serve" with its
// own ext2 driver, and diod serving the same image loop-mounted by the host
// kernel, each over a unix socket and over TCP. The command in
// cmd/rump9p-bench prints the comparison:
//
//	go run ./tests/bench/cmd/rump9p-bench             # as root: diod needs a loop mount
//
// TestCompareSmall runs every workload on a small tree in each test run,
// so the harness cannot rot; timings are never asserted. The tests build
// rump9p from this module, or use $RUMP9P_BENCH_BIN; the command takes
// -rump9p BINARY, to compare an older build.
package bench

import (
	"bytes"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/tests/p9raw"
)

// Tree describes the image's content.
type Tree struct {
	BigSize    int64 // one file "big" of this size
	SmallFiles int   // files of 1-16 KiB under small/dNNN/
	PerDir     int   // small files per directory
	WideFiles  int   // empty files in the one directory wide/
	WriteRoom  int64 // free space the write workloads need
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
	wide := filepath.Join(dir, "wide")
	if err := os.MkdirAll(wide, 0o755); err != nil {
		return err
	}
	for i := 0; i < t.WideFiles; i++ {
		if err := os.WriteFile(filepath.Join(wide, wideName(i)), nil, 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(dir, "w"), 0o777)
}

func wideName(i int) string { return fmt.Sprintf("entry-with-a-longer-name-%06d", i) }

// makeImage builds an ext2 image of src with mke2fs -d.
func makeImage(src, img string, t Tree) error {
	mib := t.BigSize>>20 + t.WriteRoom>>20 + int64(t.SmallFiles)*20/1024 + int64(t.WideFiles)*8/1024 + 64
	mib += mib / 5
	inodes := t.SmallFiles + t.WideFiles + 20000
	out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "4096", "-N", strconv.Itoa(inodes),
		"-d", src, img, fmt.Sprintf("%dM", mib)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mke2fs: %v\n%s", err, out)
	}
	return nil
}

// Server is one 9P server process over one image, listening on a unix
// socket and on TCP.
type Server struct {
	Name  string // "rump9p" or "diod"
	addrs map[string]string
	aname string
	diod  bool
	cmd   *exec.Cmd
	logs  *bytes.Buffer
	stop  func()
}

// diodMsize is the msize diod always negotiates.
const diodMsize = 65536

// Options of the servers.
type Options struct {
	Rump9p string // the rump9p binary
	Cache  string // rump9p's buffer cache budget ("256M")
}

// StartRump9p serves img read-write with the rump9p binary.
func StartRump9p(o Options, img, dir string) (*Server, error) {
	sock := filepath.Join(dir, "rump9p.sock")
	tcp := fmt.Sprintf("127.0.0.1:%d", freePort())
	cfg := filepath.Join(dir, "rump9p.yaml")
	cache := o.Cache
	if cache == "" {
		cache = "256M"
	}
	body := fmt.Sprintf("listen: [%q, %q]\nlog: {level: warn}\ncache: %s\nmounts:\n  - {name: img, type: ext2fs, image: %q}\n",
		"unix:"+sock, "tcp:"+tcp, cache, img)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return nil, err
	}
	s := &Server{Name: "rump9p", aname: "img", addrs: map[string]string{"unix": sock, "tcp": tcp}}
	s.cmd = exec.Command(o.Rump9p, "serve", "-c", cfg)
	s.stop = func() {}
	return s, s.start()
}

// StartDiod loop-mounts img read-write and serves it with diod.
func StartDiod(img, dir string) (*Server, error) {
	mnt := filepath.Join(dir, "loop")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("mount", "-o", "loop", "-t", "ext2", img, mnt).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("loop mount (needs root): %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "diod.sock")
	tcp := fmt.Sprintf("127.0.0.1:%d", freePort())
	s := &Server{Name: "diod", aname: mnt, diod: true, addrs: map[string]string{"unix": sock, "tcp": tcp}}
	s.cmd = exec.Command("diod", "-f", "-n", "-c", "/dev/null", "-L", "stderr", "-l", tcp, "-l", sock, "-e", mnt)
	s.stop = func() { exec.Command("umount", mnt).Run() }
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs s.cmd and waits until both listeners accept.
func (s *Server) start() error {
	s.logs = &bytes.Buffer{}
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		s.stop()
		return err
	}
	after := s.stop
	s.stop = func() {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
		after()
	}
	for network, addr := range s.addrs {
		if err := waitDial(network, addr); err != nil {
			s.Stop()
			return fmt.Errorf("%s did not start: %v\n%s", s.Name, err, s.logs.String())
		}
	}
	return nil
}

// Stop ends the server (rump9p syncs and unmounts; diod's image is
// unmounted after it exits).
func (s *Server) Stop() { s.stop() }

// CPU is the processor time the server process has used so far. Work the
// host kernel does for diod in other threads (the loop device's I/O) is
// not counted.
func (s *Server) CPU() time.Duration { return procCPU(s.cmd.Process.Pid) }

// procCPU is the processor time process pid has used (user and system,
// all threads; /proc/PID/stat fields 14 and 15, in clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// Client is one 9P connection to a server, attached as root.
type Client struct {
	cl   *p9.Client
	Root p9.File
	// IOCount is the Tread/Twrite count to use: the p9 client does not
	// lower it to the negotiated msize, and diod answers EIO past its own.
	IOCount int
	// ReaddirCount is the Treaddir budget: what fits one Rreaddir (Linux
	// uses msize - P9_READDIRHDRSZ (24) too); diod answers EIO to more.
	ReaddirCount uint32
}

// Connect opens a connection to s over network, asking for msize.
func (s *Server) Connect(network string, msize uint32) (*Client, error) {
	c, err := net.Dial(network, s.addrs[network])
	if err != nil {
		return nil, err
	}
	conn := &p9raw.Conn{Conn: c, Rewrite: p9raw.AttachAs(0)}
	if s.diod {
		conn.Rewrite = p9raw.Diod(0)
		msize = min(msize, diodMsize)
	}
	cl, err := p9.NewClient(conn, p9.WithMessageSize(msize))
	if err != nil {
		c.Close()
		return nil, err
	}
	root, err := cl.Attach(s.aname)
	if err != nil {
		cl.Close()
		return nil, err
	}
	rd := msize - 24
	return &Client{cl: cl, Root: root, IOCount: int(rd) &^ 511, ReaddirCount: rd}, nil
}

// Close ends the connection.
func (c *Client) Close() error {
	c.Root.Close()
	return c.cl.Close()
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
