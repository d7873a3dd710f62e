package p9raw

import (
	"encoding/binary"
	"net"
	"sync"
)

// Conn passes every outgoing frame through Rewrite. The client may write
// one frame in several calls, so frames are reassembled first.
type Conn struct {
	net.Conn
	Rewrite func(frame []byte) []byte

	mu      sync.Mutex
	pending []byte
}

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, b...)
	for len(c.pending) >= 4 {
		size := int(binary.LittleEndian.Uint32(c.pending))
		if len(c.pending) < size {
			break
		}
		if _, err := c.Conn.Write(c.Rewrite(c.pending[:size])); err != nil {
			return 0, err
		}
		c.pending = c.pending[size:]
	}
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return len(b), nil
}

// AttachAs returns a Rewrite that sets the n_uname of every Tattach to
// uid (the last field of the frame).
func AttachAs(uid uint32) func([]byte) []byte {
	return func(frame []byte) []byte {
		if len(frame) > 11 && frame[4] == Tattach {
			frame = append([]byte(nil), frame...)
			binary.LittleEndian.PutUint32(frame[len(frame)-4:], uid)
		}
		return frame
	}
}

// Diod returns a Rewrite for diod, which refuses "9P2000.L.Google.N" and
// needs a uid in Tattach: Tversion asks for plain "9P2000.L", and Tattach
// carries uid.
func Diod(uid uint32) func([]byte) []byte {
	attach := AttachAs(uid)
	return func(frame []byte) []byte {
		if frame[4] == Tversion && len(frame) >= 13 { // msize[4] version[s]
			const v = "9P2000.L"
			out := binary.LittleEndian.AppendUint32(nil, uint32(7+4+2+len(v)))
			out = append(out, frame[4:11]...)
			out = binary.LittleEndian.AppendUint16(out, uint16(len(v)))
			return append(out, v...)
		}
		return attach(frame)
	}
}
