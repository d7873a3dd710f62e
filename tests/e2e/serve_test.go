// Package e2e runs the built rump9p binary as a user would: from the
// command line, with a config file, signals, and two independent 9P
// clients (hugelgupf/p9 and diod's diodls/diodcat).
package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/rump9p/rump9p/tests/hosttools"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/tests/p9raw"
)

var rump9pBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rump9p-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rump9pBin = filepath.Join(dir, "rump9p")
	build := exec.Command("go", "build", "-race", "-o", rump9pBin, "github.com/rump9p/rump9p/cmd/rump9p")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rump9p:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running "rump9p serve".
type server struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

func (s *server) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.Write(p)
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// start runs rump9p with args and waits until it logs that it listens.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	return startBin(t, rump9pBin, args...)
}

// startBin is start with another build of rump9p.
func startBin(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	s.cmd.Stdout, s.cmd.Stderr = s, s
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.log(), "mount with:") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", s.log())
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited early (%v):\n%s", err, s.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s
}

// stop sends sig and returns the exit status.
func (s *server) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not stop on %v:\n%s", sig, s.log())
	}
	return -1
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func dial(t *testing.T, network, addr string) *p9.Client {
	t.Helper()
	return dialAs(t, network, addr, p9.NoUID)
}

// dialAs connects a p9 client whose Tattach carries uid as n_uname (the
// client itself always sends NoUID, which the server maps to nobody).
func dialAs(t *testing.T, network, addr string, uid p9.UID) *p9.Client {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &p9raw.Conn{Conn: nc, Rewrite: p9raw.AttachAs(uint32(uid))}
	cl, err := p9.NewClient(c, p9.WithMessageSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func writeFile(t *testing.T, dir p9.File, name string, data []byte) {
	t.Helper()
	_, d, err := dir.Walk(nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _, _, err := d.Create(name, p9.WriteOnly, 0o644, p9.NoUID, p9.NoGID)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	defer f.Close()
	if n, err := f.WriteAt(data, 0); err != nil || n != len(data) {
		t.Fatalf("write %s: %d %v", name, n, err)
	}
}

func readFile(t *testing.T, dir p9.File, name string) []byte {
	t.Helper()
	_, f, err := dir.Walk([]string{name})
	if err != nil {
		t.Fatalf("walk %s: %v", name, err)
	}
	defer f.Close()
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if n == 0 || err != nil {
			return out
		}
	}
}

func TestServeDefaultOverTCPWithTwoClients(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := start(t, "serve", "--listen", "tcp:"+addr)
	if !strings.Contains(s.log(), fmt.Sprintf("trans=tcp,port=%d", port)) || !strings.Contains(s.log(), "aname=tmp") {
		t.Errorf("mount help missing or wrong:\n%s", s.log())
	}

	cl := dial(t, "tcp", addr)
	root, err := cl.Attach("tmp")
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("rump9p "), 40000) // 280 KB, several messages
	writeFile(t, root, "hello.txt", content)
	if got := readFile(t, root, "hello.txt"); !bytes.Equal(got, content) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(content))
	}

	// diod's own client, an independent implementation of 9P2000.L.
	hosttools.NeedAll(t, "diodcat", "diodls")
	out, err := exec.Command("diodcat", "-s", addr, "-a", "tmp", "-u", "0", "hello.txt").CombinedOutput()
	if err != nil {
		t.Fatalf("diodcat: %v\n%s", err, out)
	}
	if !bytes.Equal(out, content) {
		t.Errorf("diodcat read %d bytes, want %d", len(out), len(content))
	}
	out, err = exec.Command("diodls", "-s", addr, "-a", "tmp", "-u", "0", "-l", "/").CombinedOutput()
	if err != nil {
		t.Fatalf("diodls: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "hello.txt") || !strings.Contains(string(out), fmt.Sprint(len(content))) {
		t.Errorf("diodls -l does not show hello.txt with its size:\n%s", out)
	}

	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status after SIGTERM = %d:\n%s", code, s.log())
	}
	if !strings.Contains(s.log(), "msg=stopped") {
		t.Errorf("no clean stop logged:\n%s", s.log())
	}
}

func TestServeConfigFileUnixSocketAndReload(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "9p.sock")
	cfg := filepath.Join(dir, "rump9p.yaml")
	write := func(body string) {
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("listen: [\"unix:%s\"]\nmounts:\n  - {name: alpha, type: tmpfs}\n  - {name: ro, type: tmpfs, readonly: true}\n", sock))

	out, err := exec.Command(rump9pBin, "config", "check", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "alpha") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("mounts:\n  - {name: x, type: ext5}\nmsize: huge\n"), 0o644)
	out, err = exec.Command(rump9pBin, "config", "check", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "mounts[0].type") || !strings.Contains(string(out), "msize") {
		t.Errorf("config check of a bad file: %v\n%s", err, out)
	}

	s := start(t, "serve", "-c", cfg)
	cl := dial(t, "unix", sock)

	// The root attach shows every mount as a directory.
	root, err := cl.Attach("")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := root.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	ents, err := root.Readdir(0, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "alpha") || !strings.Contains(got, "ro") {
		t.Errorf("root lists %q, want the mounts alpha and ro", got)
	}

	ro, err := cl.Attach("ro")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ro.Create("x", p9.WriteOnly, 0o644, p9.NoUID, p9.NoGID); !isErrno(err, syscall.EROFS) {
		t.Errorf("create on a read-only mount: %v, want EROFS", err)
	}

	// SIGHUP: alpha goes, beta comes, ro stays as it was.
	write(fmt.Sprintf("listen: [\"unix:%s\"]\nmounts:\n  - {name: beta, type: tmpfs}\n  - {name: ro, type: tmpfs, readonly: true}\n", sock))
	s.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.log(), "SIGHUP: mounted") {
		if time.Now().After(deadline) {
			t.Fatalf("reload not logged:\n%s", s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cl2 := dial(t, "unix", sock)
	if _, err := cl2.Attach("beta"); err != nil {
		t.Errorf("attach to the new mount: %v", err)
	}
	if _, err := cl2.Attach("alpha"); err == nil {
		t.Errorf("attach to the removed mount succeeded")
	}
	if strings.Contains(s.log(), "mount=ro msg") || strings.Count(s.log(), "unmounted mount=ro") > 0 {
		t.Errorf("the unchanged mount was touched:\n%s", s.log())
	}
	cl.Close()
	cl2.Close()
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit status after SIGINT = %d:\n%s", code, s.log())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind after a clean stop: %v", err)
	}
}

func TestServeStdio(t *testing.T) {
	cmd := exec.Command(rump9pBin, "serve", "--listen", "stdio")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	cl, err := p9.NewClient(pipeConn{stdout, stdin}, p9.WithMessageSize(64<<10))
	if err != nil {
		t.Fatalf("9P over stdio: %v\n%s", err, logs.String())
	}
	root, err := cl.Attach("tmp")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "f", []byte("over a pipe"))
	if got := readFile(t, root, "f"); string(got) != "over a pipe" {
		t.Errorf("read %q", got)
	}
	// Closing stdin ends the only transport: the server shuts down cleanly.
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after stdin closed: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not exit after stdin closed:\n%s", logs.String())
	}
}

// isErrno reports whether err, as the p9 client returns it, is e.
func isErrno(err error, e syscall.Errno) bool {
	var le linux.Errno
	if errors.As(err, &le) {
		return uintptr(le) == uintptr(e)
	}
	return errors.Is(err, e)
}

// pipeConn is the client's side of the server's stdin and stdout.
type pipeConn struct {
	r io.ReadCloser
	w io.WriteCloser
}

func (c pipeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c pipeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c pipeConn) Close() error {
	c.w.Close()
	return c.r.Close()
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("mounts:\n  - {name: a, type: tmpfs, imgae: x}\n"), 0o644)
	out, err := exec.Command(rump9pBin, "serve", "-c", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("serve accepted a config with an unknown key:\n%s", out)
	}
	if !strings.Contains(string(out), "mounts[0].imgae") {
		t.Errorf("error does not name the bad key:\n%s", out)
	}
}

// TestServeExt2SigtermLeavesCleanImage writes into an ext2 image through
// the server, stops it with SIGTERM, and requires e2fsck to find the image
// clean (marked clean, counts exact) with the data in place (debugfs).
func TestServeExt2SigtermLeavesCleanImage(t *testing.T) {
	hosttools.NeedAll(t, "mke2fs", "e2fsck", "debugfs")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "s")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: [\"unix:%s\"]\nmounts:\n  - {name: disk, type: auto, image: %q}\n", sock, img)), 0o644)
	s := start(t, "serve", "-c", cfg)

	// A second server on the same image must be refused: the image is locked.
	out, err := exec.Command(rump9pBin, "serve", "-c", cfg, "--listen", "unix:"+filepath.Join(dir, "s2")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), img) {
		t.Errorf("second server on a locked image: %v\n%s", err, out)
	}

	cl := dialAs(t, "unix", sock, 0)
	root, err := cl.Attach("disk")
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("ext2 via 9p\n"), 30000)
	writeFile(t, root, "data.txt", content)
	if _, err := root.Mkdir("sub", 0o755, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit status after SIGTERM = %d:\n%s", code, s.log())
	}
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn after SIGTERM: %v\n%s", err, out)
	}
	out, err = exec.Command("debugfs", "-R", "cat /data.txt", img).Output()
	if err != nil || !bytes.Equal(out, content) {
		t.Errorf("debugfs reads %d bytes of data.txt (%v), want %d", len(out), err, len(content))
	}
	out, _ = exec.Command("dumpe2fs", "-h", img).CombinedOutput()
	if !strings.Contains(string(out), "Filesystem state:         clean") {
		t.Errorf("image not marked clean:\n%s", out)
	}
}
