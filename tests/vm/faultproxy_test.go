package vm

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

// envFault names a deliberate server bug to inject between the guest and the
// server, to prove that the suite catches it (the run must then FAIL):
//
//	drop-dirent   Rreaddir loses the entry named f4321 (in w/many)
//	qid-version-0 every QID the server returns has version 0
//
// The proxy rewrites replies (server to client) only.
const envFault = "RUMP9P_VM_FAULT"

// 9P2000.L reply types that carry QIDs.
const (
	rLopen    = 13
	rLcreate  = 15
	rSymlink  = 17
	rMknod    = 19
	rGetattr  = 25
	rReaddir  = 41
	rMkdir    = 73
	rAttach   = 105
	rWalk     = 111
	qidLength = 13
)

// faultProxy listens on network/addr and relays every connection to
// upstream, passing each server reply through mutate.
type faultProxy struct {
	l        net.Listener
	upstream [2]string
	mutate   func(msg []byte) []byte
	wg       sync.WaitGroup
}

// startFaultProxy returns the address the guest should use instead of
// upstream, or upstream itself when no fault is requested.
func startFaultProxy(t *testing.T, network, upstream, listenAddr string) string {
	t.Helper()
	fault := os.Getenv(envFault)
	if fault == "" {
		return upstream
	}
	var mutate func([]byte) []byte
	switch fault {
	case "drop-dirent":
		mutate = dropDirent("f4321")
	case "qid-version-0":
		mutate = zeroQIDVersions
	default:
		t.Fatalf("%s=%q: want drop-dirent or qid-version-0", envFault, fault)
	}
	l, err := net.Listen(network, listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{l: l, upstream: [2]string{network, upstream}, mutate: mutate}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	t.Logf("fault %q injected by a proxy on %s %s", fault, network, l.Addr())
	return l.Addr().String()
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial(p.upstream[0], p.upstream[1])
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
		go func() { defer p.wg.Done(); p.replies(c, s); c.Close() }()
	}
}

// replies copies framed 9P messages from s to c through p.mutate.
func (p *faultProxy) replies(c io.Writer, s io.Reader) {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n < 7 || n > 16<<20 {
			return
		}
		msg := make([]byte, n)
		copy(msg, hdr[:])
		if _, err := io.ReadFull(s, msg[4:]); err != nil {
			return
		}
		msg = p.mutate(msg)
		binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
		if _, err := c.Write(msg); err != nil {
			return
		}
	}
}

// dirents calls fn with the offset of each entry of an Rreaddir message.
func dirents(msg []byte, fn func(off, end int, name string)) {
	if len(msg) < 11 {
		return
	}
	end := 11 + int(binary.LittleEndian.Uint32(msg[7:]))
	if end > len(msg) {
		return
	}
	for off := 11; off+24 <= end; {
		nl := int(binary.LittleEndian.Uint16(msg[off+22:]))
		e := off + 24 + nl
		if e > end {
			return
		}
		fn(off, e, string(msg[off+24:e]))
		off = e
	}
}

func dropDirent(name string) func([]byte) []byte {
	return func(msg []byte) []byte {
		if msg[4] != rReaddir {
			return msg
		}
		var cut [2]int
		dirents(msg, func(off, end int, n string) {
			if n == name {
				cut = [2]int{off, end}
			}
		})
		if cut[1] == 0 {
			return msg
		}
		out := append(append([]byte(nil), msg[:cut[0]]...), msg[cut[1]:]...)
		count := binary.LittleEndian.Uint32(out[7:]) - uint32(cut[1]-cut[0])
		binary.LittleEndian.PutUint32(out[7:], count)
		return out
	}
}

// zeroQIDVersions clears qid.version (bytes 1..4 of a QID) in every reply
// that carries QIDs.
func zeroQIDVersions(msg []byte) []byte {
	zero := func(at int) {
		if at+qidLength <= len(msg) {
			copy(msg[at+1:at+5], []byte{0, 0, 0, 0})
		}
	}
	switch msg[4] {
	case rLopen, rLcreate, rSymlink, rMknod, rMkdir, rAttach:
		zero(7)
	case rGetattr:
		zero(7 + 8)
	case rWalk:
		if len(msg) >= 9 {
			n := int(binary.LittleEndian.Uint16(msg[7:]))
			for i := range n {
				zero(9 + i*qidLength)
			}
		}
	case rReaddir:
		dirents(msg, func(off, _ int, _ string) { zero(off) })
	}
	return msg
}

// faultSocketPath is where the fd transport's proxy listens.
func faultSocketPath(sock string) string {
	return strings.TrimSuffix(sock, ".sock") + "-fault.sock"
}
