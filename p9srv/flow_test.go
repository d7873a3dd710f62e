package p9srv

import (
	"encoding/binary"
	"github.com/rump9p/rump9p/tests/p9raw"
	"io"
	"net"
	"testing"
	"time"
)

// inflightOf returns the requests in flight and their cost on the
// server's connections, the largest of each.
func inflightOf(s *Server) (n int, held int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if fr := c.fr.Load(); fr != nil {
			fr.vmu.Lock()
			n, held = max(n, len(fr.inflight)), max(held, fr.held)
			fr.vmu.Unlock()
		}
	}
	return n, held
}

// TestBackpressure: a client that sends many large reads and reads no
// reply is held to the in-flight and memory budgets, while another
// connection is served; once it reads, everything is answered and the
// budgets drain.
func TestBackpressure(t *testing.T) {
	const (
		msize   = 1 << 20
		maxReqs = 8
		connMem = 4 << 20
		allMem  = 6 << 20
		reads   = 2000
	)
	k := newKernel(t)
	s, addr := startServer(t, k, Options{Msize: msize, MaxInflight: maxReqs, MaxConnMemory: connMem, MaxMemory: allMem}, true)
	cl, _ := dial(t, addr, 0, testMsize)
	createFile(t, attach(t, cl, "tmp1"), "big", make([]byte, 4096)) // small replies; each Tread still costs msize

	// Two hogs, so that the server-wide budget binds too.
	var hogs []*rawSession
	for range 2 {
		nc, _ := rawVersion(t, addr, msize)
		h := &rawSession{&p9raw.Session{T: t, Nc: nc}}
		h.Call(msgTattach, le32(1), le32(noUID), str9(""), str9("tmp1"), le32(0))
		h.open(2, "big")
		var burst []byte
		for i := range reads {
			burst = append(burst, rawFrame(msgTread, uint16(i+100), le32(2), le64(0), le32(msize))...)
		}
		go h.Nc.Write(burst) // blocks once the server stops reading
		hogs = append(hogs, h)
	}
	time.Sleep(300 * time.Millisecond)
	n, held := inflightOf(s)
	if n > maxReqs || held > connMem+msize+requestBase+64 {
		t.Errorf("a hog has %d requests (%d bytes) in flight; budget %d requests, %d bytes", n, held, maxReqs, connMem)
	}
	if used := s.mem.inUse(); used > allMem+3*(msize+requestBase+64) {
		t.Errorf("server holds %d bytes for requests in flight; budget %d", used, allMem)
	}
	if n == 0 {
		t.Errorf("no request in flight: the hogs were not served at all")
	}

	// Another connection is served meanwhile.
	other := newRawSession(t, addr, "tmp1")
	other.open(2, "big")
	if body := other.Call(msgTread, le32(2), le64(0), le32(4096)); len(body) < 4 {
		t.Errorf("read of another connection: %x", body)
	}

	// The hogs read their replies: all are answered, in any order.
	for _, h := range hogs {
		h.Nc.SetReadDeadline(time.Now().Add(60 * time.Second))
		seen := map[uint16]bool{}
		for len(seen) < reads {
			typ, tag, err := readTagged(h.Nc)
			if err != nil {
				t.Fatalf("after %d replies: %v", len(seen), err)
			}
			if typ != msgTread+1 || seen[tag] {
				t.Fatalf("reply type %d tag %d (seen %v)", typ, tag, seen[tag])
			}
			seen[tag] = true
		}
		h.Nc.Close()
	}
	other.Nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.mem.inUse() != 0 && time.Now().Before(deadline) {
		sleepMs(10)
	}
	if used := s.mem.inUse(); used != 0 {
		t.Errorf("%d bytes still counted after every connection closed", used)
	}
}

// readTagged reads one reply and returns its type and tag.
func readTagged(nc net.Conn) (byte, uint16, error) {
	var hdr [7]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return 0, 0, err
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if _, err := io.CopyN(io.Discard, nc, int64(size)-7); err != nil {
		return 0, 0, err
	}
	return hdr[4], binary.LittleEndian.Uint16(hdr[5:]), nil
}
