package p9srv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"github.com/rump9p/rump9p/tests/p9raw"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/rumpcore"
	_ "github.com/rump9p/rump9p/vnodeops/tmpfs"
)

const testMsize = 64 << 10

// newKernel boots a kernel with tmpfs mounts /tmp1 and /tmp2 (mode 1777)
// and a read-only tmpfs /ro.
func newKernel(t testing.TB) *rumpcore.Kernel {
	t.Helper()
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	for _, m := range []struct {
		path string
		ro   bool
	}{{"/tmp1", false}, {"/tmp2", false}, {"/ro", true}} {
		spec := rumpcore.MountSpec{Type: "tmpfs", ReadOnly: m.ro, Options: map[string]string{"mode": "1777"}}
		if err := k.Mount(m.path, spec); err != nil {
			t.Fatalf("Mount %s: %v", m.path, err)
		}
	}
	t.Cleanup(func() { k.Shutdown() })
	return k
}

// startServer serves a new server on a TCP listener (unix when unix is
// set) and returns it with the address.
func startServer(t testing.TB, k *rumpcore.Kernel, opts Options, unix bool) (*Server, net.Addr) {
	t.Helper()
	var l net.Listener
	var err error
	if unix {
		l, err = net.Listen("unix", filepath.Join(t.TempDir(), "9p.sock"))
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s := New(k, opts)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, l.Addr()
}

// uidConn is a client connection that puts uid into the n_uname of every
// Tattach it sends (the hugelgupf client always sends NoUID).
type uidConn struct {
	*p9raw.Conn
	uid atomic.Uint32
}

// dial connects a client that attaches as uid (NoUID for the client's
// own choice).
func dial(t testing.TB, addr net.Addr, uid uint32, msize uint32) (*p9.Client, *uidConn) {
	t.Helper()
	nc, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	uc := &uidConn{}
	uc.uid.Store(uid)
	uc.Conn = &p9raw.Conn{Conn: nc, Rewrite: func(f []byte) []byte { return p9raw.AttachAs(uc.uid.Load())(f) }}
	cl, err := p9.NewClient(uc, p9.WithMessageSize(msize))
	if err != nil {
		nc.Close()
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, uc
}

func attach(t testing.TB, cl *p9.Client, name string) p9.File {
	t.Helper()
	f, err := cl.Attach(name)
	if err != nil {
		t.Fatalf("Attach(%q): %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func walk(t testing.TB, f p9.File, names ...string) p9.File {
	t.Helper()
	_, nf, err := f.Walk(names)
	if err != nil {
		t.Fatalf("Walk(%q): %v", names, err)
	}
	t.Cleanup(func() { nf.Close() })
	return nf
}

func wantErr(t testing.TB, what string, err error, want linux.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// createFile creates name in dir with data and returns the opened file.
func createFile(t testing.TB, dir p9.File, name string, data []byte) p9.File {
	t.Helper()
	d := walk(t, dir)
	f, _, _, err := d.Create(name, p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	if len(data) > 0 {
		if n, err := f.WriteAt(data, 0); err != nil || n != len(data) {
			t.Fatalf("WriteAt: %d, %v", n, err)
		}
	}
	return f
}

// readAll reads a whole file through a fresh open.
func readAll(t testing.TB, dir p9.File, name string) []byte {
	t.Helper()
	f := walk(t, dir, name)
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	var out bytes.Buffer
	buf := make([]byte, 8192)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		out.Write(buf[:n])
		off += int64(n)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			t.Fatalf("ReadAt: %v", err)
		}
	}
	return out.Bytes()
}

// Raw 9P helpers for malformed traffic.

var (
	rawFrame = p9raw.Frame
	le32     = p9raw.U32
	le64     = p9raw.U64
	str9     = p9raw.Str
)

// readReply reads one reply frame.
func readReply(r io.Reader) (typ byte, body []byte, err error) {
	typ, _, body, err = p9raw.ReadReply(r)
	return typ, body, err
}

// rawVersion dials and does a Tversion exchange; it returns the conn and
// the negotiated msize.
func rawVersion(t testing.TB, addr net.Addr, msize uint32) (net.Conn, uint32) {
	t.Helper()
	nc, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(rawFrame(msgTversion, 0xFFFF, le32(msize), str9("9P2000.L"))); err != nil {
		t.Fatal(err)
	}
	typ, body, err := readReply(nc)
	if err != nil || typ != msgTversion+1 || len(body) < 4 {
		t.Fatalf("Rversion: type %d, %v", typ, err)
	}
	return nc, binary.LittleEndian.Uint32(body)
}

// expectClosed checks that the server closes nc (after any replies).
func expectClosed(t testing.TB, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := readReply(nc)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open")
		}
		return
	}
}

func sleepMs(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }
