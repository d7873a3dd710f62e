package p9srv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// fuzzConn returns a connection state for frame reader tests.
func fuzzConn(t testing.TB) *conn {
	s := New(nil, Options{Msize: 8192})
	c, err := s.register(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.unregister(c) })
	return c
}

// drain reads everything the frame reader delivers, in reads of varying
// sizes as the library makes them, and answers each Tversion as the
// library would (the reader waits for that answer).
func drain(fr *frameReader, sizes []byte) ([]byte, error) {
	var out bytes.Buffer
	parsed := 0
	for i := 0; ; i++ {
		n := 7
		if len(sizes) > 0 {
			n = int(sizes[i%len(sizes)])%97 + 1
		}
		buf := make([]byte, n)
		m, err := fr.Read(buf)
		out.Write(buf[:m])
		for b := out.Bytes()[parsed:]; len(b) >= 7; b = out.Bytes()[parsed:] {
			size := int(binary.LittleEndian.Uint32(b))
			if size < 7 || size > len(b) {
				break
			}
			if b[4] == msgTversion && size >= 11 {
				msize := binary.LittleEndian.Uint32(b[7:])
				version := "9P2000.L"
				if msize == 0 {
					version = "unknown"
				}
				fr.replied(msgTversion+1, binary.LittleEndian.Uint16(b[5:]), append(le32(msize), str9(version)...))
			}
			parsed += size
		}
		if err != nil {
			return out.Bytes(), err
		}
		if out.Len() > 1<<22 {
			return out.Bytes(), errors.New("runaway")
		}
	}
}

// checkFrames parses what the reader delivered: whole frames, each within
// msize, and every Tattach's aname behind the connection's marker.
func checkFrames(t *testing.T, c *conn, out []byte) {
	t.Helper()
	for len(out) >= 7 {
		size := int(binary.LittleEndian.Uint32(out))
		if size < 7 || size > int(c.srv.msize) {
			t.Fatalf("delivered frame of size %d", size)
		}
		if size > len(out) {
			return // the stream ended inside a passed-through body
		}
		if out[4] == msgTattach {
			a, err := parseAttach(out[7:size])
			if err != nil {
				t.Fatalf("delivered an unparsable Tattach: %v", err)
			}
			if !strings.HasPrefix(a.aname, c.marker) {
				t.Fatalf("Tattach aname %q without the marker", a.aname)
			}
			rest := strings.TrimPrefix(a.aname, c.marker)
			if strings.Contains(rest, c.marker) && !strings.Contains(rest, "/") {
				t.Fatalf("marker repeated in %q", a.aname)
			}
		}
		out = out[size:]
	}
}

func TestFrameReaderRewrites(t *testing.T) {
	c := fuzzConn(t)
	in := bytes.Join([][]byte{
		rawFrame(msgTversion, 0xFFFF, le32(1<<20), str9("9P2000.L")),
		rawFrame(msgTattach, 1, le32(1), le32(noUID), str9("1000"), str9("/tmp1//x/../sub/"), le32(noUID)),
		rawFrame(msgTread, 2, le32(2), le64(0), le32(1<<20)),
		rawFrame(msgTxattrcreate, 3, le32(2), str9("user.a"), le64(1<<40), le32(0)),
		rawFrame(118, 4, le32(2), le64(0), le32(3), []byte("abc")),
	}, nil)
	fr := newFrameReader(c, bytes.NewReader(in))
	out, err := drain(fr, []byte{7, 3, 50})
	if err != io.EOF || fr.failure() != nil {
		t.Fatalf("drain: %v / %v", err, fr.failure())
	}
	// Tversion: msize clamped.
	if m := binary.LittleEndian.Uint32(out[7:]); m != 8192 {
		t.Errorf("Tversion msize %d", m)
	}
	out = out[binary.LittleEndian.Uint32(out):]
	a, err := parseAttach(out[7:binary.LittleEndian.Uint32(out)])
	if err != nil || a.aname != c.marker+"1000"+pathFollows+"/tmp1/sub" || a.uname != "1000" || a.nuname != noUID {
		t.Errorf("Tattach: %+v %v", a, err)
	}
	out = out[binary.LittleEndian.Uint32(out):]
	if n := binary.LittleEndian.Uint32(out[7+12:]); n != 8192-replyOverhead {
		t.Errorf("Tread count %d", n)
	}
	out = out[binary.LittleEndian.Uint32(out):]
	if n := binary.LittleEndian.Uint64(out[7+4+8:]); n != xattrSizeMax+1 {
		t.Errorf("Txattrcreate size %d", n)
	}
	out = out[binary.LittleEndian.Uint32(out):]
	if !bytes.Equal(out, rawFrame(118, 4, le32(2), le64(0), le32(3), []byte("abc"))) {
		t.Errorf("Twrite changed: %q", out)
	}
}

func TestFrameReaderRejects(t *testing.T) {
	version := rawFrame(msgTversion, 0xFFFF, le32(8192), str9("9P2000.L"))
	attach := rawFrame(msgTattach, 1, le32(1), le32(noUID), str9(""), str9(""), le32(0))
	for name, in := range map[string][]byte{
		"short frame":      append(append([]byte{}, version...), 6, 0, 0, 0, 110, 0),
		"oversized":        append(append([]byte{}, version...), le32(8193)...),
		"before version":   attach,
		"truncated attach": append(append([]byte{}, version...), rawFrame(msgTattach, 1, le32(1), le32(2), []byte{5, 0, 'a'})...),
		"truncated body":   append(append([]byte{}, version...), rawFrame(118, 1, make([]byte, 100))[:50]...),
	} {
		fr := newFrameReader(fuzzConn(t), bytes.NewReader(in))
		_, err := drain(fr, nil)
		if err == nil || err == io.EOF || fr.failure() == nil {
			t.Errorf("%s: err %v, failure %v", name, err, fr.failure())
		}
	}
	// A Tversion in a live session ends the library's session (EOF) and
	// is delivered first in the next one, msize clamped as ever.
	fr := newFrameReader(fuzzConn(t), bytes.NewReader(bytes.Join([][]byte{version, attach, rawFrame(msgTversion, 9, le32(1<<20), str9("9P2000.L")), attach}, nil)))
	if _, err := drain(fr, nil); err != io.EOF || fr.failure() != nil {
		t.Fatalf("session end: %v / %v", err, fr.failure())
	}
	if !fr.nextSession() {
		t.Fatal("no next session")
	}
	out, err := drain(fr, nil)
	if err != io.EOF || len(out) < 11 || out[4] != msgTversion || binary.LittleEndian.Uint16(out[5:]) != 9 || binary.LittleEndian.Uint32(out[7:]) != 8192 {
		t.Fatalf("next session starts with %x (%v)", out[:min(len(out), 11)], err)
	}
	if fr.nextSession() {
		t.Fatal("a next session after a plain end of stream")
	}
	// A tiny msize is answered "unknown" (msize rewritten to 0).
	fr = newFrameReader(fuzzConn(t), bytes.NewReader(rawFrame(msgTversion, 0xFFFF, le32(100), str9("9P2000.L"))))
	out, _ = drain(fr, nil)
	if len(out) < 11 || binary.LittleEndian.Uint32(out[7:]) != 0 {
		t.Errorf("tiny msize not zeroed: %x", out)
	}
}

func FuzzFrameReader(f *testing.F) {
	version := rawFrame(msgTversion, 0xFFFF, le32(8192), str9("9P2000.L"))
	f.Add(bytes.Join([][]byte{version, rawFrame(msgTattach, 1, le32(1), le32(noUID), str9("0"), str9("tmp1"), le32(noUID))}, nil), []byte{7})
	f.Add(bytes.Join([][]byte{version, rawFrame(msgTread, 2, le32(2), le64(0), le32(1<<30))}, nil), []byte{3, 90})
	f.Add([]byte{7, 0, 0, 0, msgTversion, 0, 0}, []byte{1})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		c := fuzzConn(t)
		fr := newFrameReader(c, bytes.NewReader(data))
		out, _ := drain(fr, sizes)
		checkFrames(t, c, out)
	})
}

// panicCatcher is a slog handler that records library handler panics.
type panicCatcher struct{ hit *atomic.Pointer[string] }

func (h panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h panicCatcher) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		m := r.Message
		h.hit.Store(&m)
	}
	return nil
}
func (h panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicCatcher) WithGroup(string) slog.Handler      { return h }

// FuzzServeConn feeds whole request streams to a server over a real
// kernel: no panic, in the frame reader or in a handler.
func FuzzServeConn(f *testing.F) {
	version := rawFrame(msgTversion, 0xFFFF, le32(8192), str9("9P2000.L"))
	att := rawFrame(msgTattach, 1, le32(1), le32(noUID), str9(""), str9("tmp1"), le32(0))
	f.Add(bytes.Join([][]byte{version, att,
		rawFrame(14, 2, le32(1), str9("f"), le32(2), le32(0o644), le32(0)),
		rawFrame(118, 3, le32(1), le64(0), le32(3), []byte("abc")),
		rawFrame(116, 4, le32(1), le64(0), le32(100)),
		rawFrame(40, 5, le32(1), le64(0), le32(100)),
	}, nil))
	f.Add(bytes.Join([][]byte{version, att,
		rawFrame(msgTwalk, 2, le32(1), le32(2), []byte{0, 0}),
		rawFrame(msgTlopen, 3, le32(2), le32(0)),
		rawFrame(40, 4, le32(2), le64(0), le32(8000)),
		rawFrame(msgTlock, 5, le32(2), []byte{1}, le32(0), le64(0), le64(0), le32(1), str9("c")),
		rawFrame(30, 6, le32(1), le32(3), str9("")),
		rawFrame(76, 7, le32(1), str9("f"), le32(0)),
	}, nil))
	k := newKernel(f)
	var hit atomic.Pointer[string]
	s := New(k, Options{Msize: 8192, MaxFidsPerConn: 64, Logger: slog.New(panicCatcher{&hit})})
	f.Fuzz(func(t *testing.T, data []byte) {
		s.ServeConn(bytes.NewReader(data), io.Discard)
		if m := hit.Swap(nil); m != nil {
			t.Fatalf("handler panic: %s", *m)
		}
	})
}

func TestFlushOfFlushRedirected(t *testing.T) {
	c := fuzzConn(t)
	in := bytes.Join([][]byte{
		rawFrame(msgTversion, 0xFFFF, le32(8192), str9("9P2000.L")),
		rawFrame(msgTflush, 5, []byte{5, 0}),    // itself
		rawFrame(msgTflush, 6, []byte{5, 0}),    // an in-flight flush
		rawFrame(msgTwalk, 7, make([]byte, 10)), // an ordinary request
		rawFrame(msgTflush, 8, []byte{7, 0}),    // may wait for it
	}, nil)
	fr := newFrameReader(c, bytes.NewReader(in))
	out, _ := drain(fr, nil)
	var olds []uint16
	for len(out) >= 7 {
		size := binary.LittleEndian.Uint32(out)
		if out[4] == msgTflush {
			olds = append(olds, binary.LittleEndian.Uint16(out[7:]))
		}
		out = out[size:]
	}
	if len(olds) != 3 || olds[0] == 5 || olds[1] == 5 || olds[1] == 6 || olds[2] != 7 {
		t.Errorf("flush old tags %v", olds)
	}
}
