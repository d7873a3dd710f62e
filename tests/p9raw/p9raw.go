// Package p9raw speaks 9P2000.L by hand, for tests that need what a
// client library does not send: malformed or pipelined messages, Tlock
// and Tgetlock on a chosen fid, xattr walks, a second Tversion on a live
// connection. It also adapts connections for the hugelgupf/p9 client
// (Conn), which always attaches with NoUID and asks for
// 9P2000.L.Google.7.
//
// Wire format (9P2000.L; Linux include/net/9p/9p.h): every message is
// size[4] type[1] tag[2] body, little endian; a string is len[2] bytes.
package p9raw

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// Message types used by the tests (Linux include/net/9p/9p.h).
const (
	Rlerror     = 7
	Tstatfs     = 8
	Tlopen      = 12
	Tlcreate    = 14
	Tgetattr    = 24
	Tsetattr    = 26
	Txattrwalk  = 30
	Txattrcreat = 32
	Treaddir    = 40
	Tfsync      = 50
	Tlock       = 52
	Tgetlock    = 54
	Tversion    = 100
	Tauth       = 102
	Tattach     = 104
	Tflush      = 108
	Twalk       = 110
	Tread       = 116
	Twrite      = 118
	Tclunk      = 120
	Tremove     = 122
)

// NoTag is the tag of a Tversion; NoFid and NoUID the "none" values.
const (
	NoTag = 0xFFFF
	NoFid = 0xFFFFFFFF
	NoUID = 0xFFFFFFFF
)

// U32, U64 and Str encode a body field.
func U32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func U64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func Str(s string) []byte {
	return append(binary.LittleEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// Frame builds one message of type typ with tag from body parts.
func Frame(typ byte, tag uint16, parts ...[]byte) []byte {
	n := 7
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	out = binary.LittleEndian.AppendUint32(out, uint32(n))
	out = append(out, typ)
	out = binary.LittleEndian.AppendUint16(out, tag)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ErrBadSize is returned for a reply whose size field cannot be right.
var ErrBadSize = errors.New("p9raw: bad reply size")

// ReadReply reads one message and returns its type, tag and body.
func ReadReply(r io.Reader) (typ byte, tag uint16, body []byte, err error) {
	var hdr [7]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if size < 7 || size > 1<<24 {
		return 0, 0, nil, ErrBadSize
	}
	body = make([]byte, size-7)
	_, err = io.ReadFull(r, body)
	return hdr[4], binary.LittleEndian.Uint16(hdr[5:]), body, err
}

// Session is one connection spoken by hand, one request at a time.
type Session struct {
	T   testing.TB
	Nc  net.Conn
	Tag uint16 // the tag of the last request sent
}

// Dial connects, sets a deadline against hangs, and negotiates msize.
func Dial(t testing.TB, network, addr string, msize uint32) (*Session, uint32) {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	s := &Session{T: t, Nc: nc}
	return s, s.Version(msize)
}

// Version sends a Tversion for 9P2000.L and returns the msize the server
// answers (0 for "unknown"); replies to earlier tags are skipped.
func (s *Session) Version(msize uint32) uint32 {
	s.T.Helper()
	if _, err := s.Nc.Write(Frame(Tversion, NoTag, U32(msize), Str("9P2000.L"))); err != nil {
		s.T.Fatal(err)
	}
	for {
		typ, _, body, err := ReadReply(s.Nc)
		if err != nil {
			s.T.Fatalf("Rversion: %v", err)
		}
		if typ == Tversion+1 && len(body) >= 4 {
			return binary.LittleEndian.Uint32(body)
		}
	}
}

// Attach attaches fid to aname as uid.
func (s *Session) Attach(fid uint32, aname string, uid uint32) {
	s.T.Helper()
	s.Call(Tattach, U32(fid), U32(NoFid), Str(""), Str(aname), U32(uid))
}

// Try sends one request and returns the reply's type and body.
func (s *Session) Try(typ byte, parts ...[]byte) (byte, []byte) {
	s.T.Helper()
	s.Tag++
	if s.Tag == NoTag {
		s.Tag = 1
	}
	if _, err := s.Nc.Write(Frame(typ, s.Tag, parts...)); err != nil {
		s.T.Fatal(err)
	}
	rt, _, body, err := ReadReply(s.Nc)
	if err != nil {
		s.T.Fatalf("reply to %d: %v", typ, err)
	}
	return rt, body
}

// Call is Try that fails the test on Rlerror.
func (s *Session) Call(typ byte, parts ...[]byte) []byte {
	s.T.Helper()
	rt, body := s.Try(typ, parts...)
	if rt == Rlerror {
		s.T.Fatalf("request %d: Rlerror %v", typ, Errno(body))
	}
	return body
}

// Errno decodes an Rlerror body.
func Errno(body []byte) syscall.Errno {
	if len(body) < 4 {
		return 0
	}
	return syscall.Errno(binary.LittleEndian.Uint32(body))
}
