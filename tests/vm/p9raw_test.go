package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// rawClient is a minimal synchronous 9P2000.L client for the host-side
// check. It exists because the host must attach as root (n_uname 0) to read
// what root wrote in the guest, and github.com/hugelgupf/p9's Attach cannot
// pass a uid. Message layouts: the 9P2000.L protocol (diod's protocol.md,
// linux/net/9p/protocol.c).
type rawClient struct {
	conn  net.Conn
	msize uint32
	fid   uint32
}

const (
	mRlerror  = 7
	mTlopen   = 12
	mTgetattr = 24
	mTreaddir = 40
	mTversion = 100
	mTattach  = 104
	mTwalk    = 110
	mTread    = 116
	mTwrite   = 118
	mTclunk   = 120
	noFid     = ^uint32(0)
	tag       = 1
)

// rawAttr is the part of Rgetattr the check uses.
type rawAttr struct {
	qidVersion uint32
	qidPath    uint64
	mode       uint32
	uid, gid   uint32
	size       uint64
	mtime      uint64
}

// rawDirent is one Rreaddir entry.
type rawDirent struct {
	qidPath uint64
	offset  uint64
	name    string
}

func dialRaw(addr, aname string, uid uint32) (*rawClient, uint32, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, 0, err
	}
	c := &rawClient{conn: conn, msize: 128 << 10, fid: 1}
	r, err := c.rpc(mTversion, func(b []byte) []byte {
		b = le32(b, c.msize)
		return str(b, "9P2000.L")
	}, 0xffff)
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("version: %w", err)
	}
	if m := binary.LittleEndian.Uint32(r); m < c.msize {
		c.msize = m
	}
	root := c.newFid()
	if _, err := c.rpc(mTattach, func(b []byte) []byte {
		b = le32(b, root)
		b = le32(b, noFid)
		b = str(b, "root")
		b = str(b, aname)
		return le32(b, uid)
	}, tag); err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("attach %q as uid %d: %w", aname, uid, err)
	}
	return c, root, nil
}

func (c *rawClient) Close() error { return c.conn.Close() }

func (c *rawClient) newFid() uint32 { c.fid++; return c.fid }

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }
func str(b []byte, s string) []byte  { return append(le16(b, uint16(len(s))), s...) }

// rpc sends message typ with the body built by fill and returns the body of
// the reply, which must be typ+1; Rlerror becomes a syscall.Errno.
func (c *rawClient) rpc(typ uint8, fill func([]byte) []byte, tg uint16) ([]byte, error) {
	msg := fill(le16([]byte{0, 0, 0, 0, typ}, tg))
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(msg); err != nil {
		return nil, err
	}
	var hdr [7]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if size < 7 || size > c.msize+64 {
		return nil, fmt.Errorf("reply size %d", size)
	}
	body := make([]byte, size-7)
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint16(hdr[5:]); got != tg {
		return nil, fmt.Errorf("reply tag %d, want %d", got, tg)
	}
	switch hdr[4] {
	case typ + 1:
		return body, nil
	case mRlerror:
		if len(body) < 4 {
			return nil, errors.New("short Rlerror")
		}
		return nil, syscall.Errno(binary.LittleEndian.Uint32(body))
	}
	return nil, fmt.Errorf("reply type %d to %d", hdr[4], typ)
}

// walk clones fid to a new fid along names (nil: a plain clone).
func (c *rawClient) walk(fid uint32, names ...string) (uint32, error) {
	nf := c.newFid()
	r, err := c.rpc(mTwalk, func(b []byte) []byte {
		b = le32(b, fid)
		b = le32(b, nf)
		b = le16(b, uint16(len(names)))
		for _, n := range names {
			b = str(b, n)
		}
		return b
	}, tag)
	if err != nil {
		return 0, err
	}
	if len(r) < 2 || int(binary.LittleEndian.Uint16(r)) != len(names) {
		return 0, fmt.Errorf("walk %q: partial", names)
	}
	return nf, nil
}

func (c *rawClient) clunk(fid uint32) error {
	_, err := c.rpc(mTclunk, func(b []byte) []byte { return le32(b, fid) }, tag)
	return err
}

func (c *rawClient) getattr(fid uint32) (rawAttr, error) {
	r, err := c.rpc(mTgetattr, func(b []byte) []byte { return le64(le32(b, fid), 0x3fff) }, tag)
	if err != nil {
		return rawAttr{}, err
	}
	// valid[8] qid[13] mode[4] uid[4] gid[4] nlink[8] rdev[8] size[8]
	// blksize[8] blocks[8] atime[16] mtime[16] ...
	if len(r) < 8+13+12+8*5+16+16 {
		return rawAttr{}, fmt.Errorf("short Rgetattr (%d bytes)", len(r))
	}
	le := binary.LittleEndian
	return rawAttr{
		qidVersion: le.Uint32(r[9:]),
		qidPath:    le.Uint64(r[13:]),
		mode:       le.Uint32(r[21:]),
		uid:        le.Uint32(r[25:]),
		gid:        le.Uint32(r[29:]),
		size:       le.Uint64(r[49:]),
		mtime:      le.Uint64(r[89:]),
	}, nil
}

func (c *rawClient) lopen(fid uint32) error { return c.lopenFlags(fid, syscall.O_RDONLY) }

func (c *rawClient) lopenFlags(fid uint32, flags int) error {
	_, err := c.rpc(mTlopen, func(b []byte) []byte { return le32(le32(b, fid), uint32(flags)) }, tag)
	return err
}

// write writes data at off through an opened fid.
func (c *rawClient) write(fid uint32, off uint64, data []byte) error {
	r, err := c.rpc(mTwrite, func(b []byte) []byte {
		return append(le32(le64(le32(b, fid), off), uint32(len(data))), data...)
	}, tag)
	if err != nil {
		return err
	}
	if len(r) < 4 || int(binary.LittleEndian.Uint32(r)) != len(data) {
		return errors.New("short Rwrite")
	}
	return nil
}

// readAll reads an opened fid from offset 0 to EOF.
func (c *rawClient) readAll(fid uint32, w io.Writer) error {
	var off uint64
	for {
		r, err := c.rpc(mTread, func(b []byte) []byte { return le32(le64(le32(b, fid), off), c.msize-64) }, tag)
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

// readdir lists an opened directory fid to the end.
func (c *rawClient) readdir(fid uint32) ([]rawDirent, error) {
	var out []rawDirent
	var off uint64
	for {
		r, err := c.rpc(mTreaddir, func(b []byte) []byte { return le32(le64(le32(b, fid), off), 32<<10) }, tag)
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
			d := rawDirent{
				qidPath: binary.LittleEndian.Uint64(data[5:]),
				offset:  binary.LittleEndian.Uint64(data[13:]),
				name:    string(data[24 : 24+nl]),
			}
			out = append(out, d)
			off = d.offset
			data = data[24+nl:]
		}
	}
}
