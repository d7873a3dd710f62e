package p9raw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Client is a minimal synchronous 9P2000.L client whose calls return
// errors (Rlerror as a syscall.Errno) instead of failing a test, for
// checks that run outside a test's goroutine or must report what they
// found. Unlike hugelgupf/p9's client it attaches as any uid.
type Client struct {
	Conn  net.Conn
	Msize uint32
	fid   uint32
}

// Attr is the part of Rgetattr the tests use.
type Attr struct {
	QIDVersion uint32
	QIDPath    uint64
	Mode       uint32
	UID, GID   uint32
	Size       uint64
	Mtime      uint64 // seconds
}

// Dirent is one Rreaddir entry.
type Dirent struct {
	QIDPath uint64
	Offset  uint64
	Name    string
}

// clientTag is the tag of every request: one is in flight at a time.
const clientTag = 1

// DialClient connects to addr over network, negotiates msize (at most
// 128 KiB) and attaches to aname as uid; it returns the client and the
// root fid.
func DialClient(network, addr, aname string, uid uint32) (*Client, uint32, error) {
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	c := &Client{Conn: conn, Msize: 128 << 10, fid: 1}
	r, err := c.rpc(Tversion, NoTag, U32(c.Msize), Str("9P2000.L"))
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("version: %w", err)
	}
	if len(r) >= 4 {
		c.Msize = min(c.Msize, binary.LittleEndian.Uint32(r))
	}
	root := c.newFid()
	if _, err := c.rpc(Tattach, clientTag, U32(root), U32(NoFid), Str("root"), Str(aname), U32(uid)); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("attach %q as uid %d: %w", aname, uid, err)
	}
	return c, root, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

func (c *Client) newFid() uint32 { c.fid++; return c.fid }

// rpc sends one request and returns the body of its reply, which must be
// typ+1; Rlerror becomes a syscall.Errno. Each call has 30 s.
func (c *Client) rpc(typ byte, tag uint16, parts ...[]byte) ([]byte, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Conn.Write(Frame(typ, tag, parts...)); err != nil {
		return nil, err
	}
	rt, rtag, body, err := ReadReply(c.Conn)
	if err != nil {
		return nil, err
	}
	if rtag != tag {
		return nil, fmt.Errorf("reply tag %d, want %d", rtag, tag)
	}
	switch rt {
	case typ + 1:
		return body, nil
	case Rlerror:
		if len(body) < 4 {
			return nil, errors.New("short Rlerror")
		}
		return nil, Errno(body)
	}
	return nil, fmt.Errorf("reply type %d to %d", rt, typ)
}

// Walk clones fid to a new fid along names (none: a plain clone).
func (c *Client) Walk(fid uint32, names ...string) (uint32, error) {
	nf := c.newFid()
	parts := [][]byte{U32(fid), U32(nf), binary.LittleEndian.AppendUint16(nil, uint16(len(names)))}
	for _, n := range names {
		parts = append(parts, Str(n))
	}
	r, err := c.rpc(Twalk, clientTag, parts...)
	if err != nil {
		return 0, err
	}
	if len(r) < 2 || int(binary.LittleEndian.Uint16(r)) != len(names) {
		return 0, fmt.Errorf("walk %q: partial", names)
	}
	return nf, nil
}

// Clunk forgets fid.
func (c *Client) Clunk(fid uint32) error {
	_, err := c.rpc(Tclunk, clientTag, U32(fid))
	return err
}

// Getattr asks for the basic attributes of fid.
func (c *Client) Getattr(fid uint32) (Attr, error) {
	r, err := c.rpc(Tgetattr, clientTag, U32(fid), U64(0x3fff))
	if err != nil {
		return Attr{}, err
	}
	// valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8] size[8]
	// blksize[8] blocks[8] atime[16] mtime[16] ...
	if len(r) < 8+13+12+8*5+16+16 {
		return Attr{}, fmt.Errorf("short Rgetattr (%d bytes)", len(r))
	}
	le := binary.LittleEndian
	return Attr{
		QIDVersion: le.Uint32(r[9:]),
		QIDPath:    le.Uint64(r[13:]),
		Mode:       le.Uint32(r[21:]),
		UID:        le.Uint32(r[25:]),
		GID:        le.Uint32(r[29:]),
		Size:       le.Uint64(r[49:]),
		Mtime:      le.Uint64(r[89:]),
	}, nil
}

// Lopen opens fid with Linux open flags.
func (c *Client) Lopen(fid uint32, flags int) error {
	_, err := c.rpc(Tlopen, clientTag, U32(fid), U32(uint32(flags)))
	return err
}

// Write writes all of data at off through an opened fid.
func (c *Client) Write(fid uint32, off uint64, data []byte) error {
	r, err := c.rpc(Twrite, clientTag, U32(fid), U64(off), U32(uint32(len(data))), data)
	if err != nil {
		return err
	}
	if len(r) < 4 || int(binary.LittleEndian.Uint32(r)) != len(data) {
		return errors.New("short Rwrite")
	}
	return nil
}

// ReadAll copies an opened fid from offset 0 to EOF into w.
func (c *Client) ReadAll(fid uint32, w io.Writer) error {
	var off uint64
	for {
		r, err := c.rpc(Tread, clientTag, U32(fid), U64(off), U32(c.Msize-64))
		if err != nil {
			return err
		}
		if len(r) < 4 || int(binary.LittleEndian.Uint32(r)) > len(r)-4 {
			return errors.New("bad Rread")
		}
		n := binary.LittleEndian.Uint32(r)
		if n == 0 {
			return nil
		}
		if _, err := w.Write(r[4 : 4+n]); err != nil {
			return err
		}
		off += uint64(n)
	}
}

// Readdir lists an opened directory fid to the end.
func (c *Client) Readdir(fid uint32) ([]Dirent, error) {
	var out []Dirent
	var off uint64
	for {
		r, err := c.rpc(Treaddir, clientTag, U32(fid), U64(off), U32(32<<10))
		if err != nil {
			return nil, err
		}
		if len(r) < 4 || int(binary.LittleEndian.Uint32(r)) > len(r)-4 {
			return nil, errors.New("bad Rreaddir")
		}
		data := r[4 : 4+binary.LittleEndian.Uint32(r)]
		if len(data) == 0 {
			return out, nil
		}
		for len(data) > 0 {
			// qid[13] offset[8] type[1] name[s]
			if len(data) < 24 {
				return nil, errors.New("truncated dirent")
			}
			nl := int(binary.LittleEndian.Uint16(data[22:]))
			if len(data) < 24+nl {
				return nil, errors.New("truncated dirent name")
			}
			d := Dirent{
				QIDPath: binary.LittleEndian.Uint64(data[5:]),
				Offset:  binary.LittleEndian.Uint64(data[13:]),
				Name:    string(data[24 : 24+nl]),
			}
			out = append(out, d)
			off = d.Offset
			data = data[24+nl:]
		}
	}
}
