package p9srv

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/hugelgupf/p9/p9"
)

// Tgetlock (fcntl F_GETLK) is not handled by hugelgupf/p9: it answers
// Rlerror, which Linux turns into EIO. The frame reader passes a Tgetlock
// on as a Tlock on the same fid whose client_id carries the connection's
// marker, "getlock/", the request's tag in hex and the real client_id;
// file.Lock sees the marker, tests the lock table without changing it and
// keeps the answer under that tag (conn.getlockResults); the frame writer
// then replaces the library's Rlock for that tag with an Rgetlock built
// from the kept answer. Errors (a bad fid, say) reach the client as the
// library's Rlerror, unchanged. A client cannot forge the marker: it is
// random per connection and never sent.
//
// Wire formats (9P2000.L, Linux include/net/9p/9p.h, fs/9p/vfs_file.c):
//
//	Tgetlock tag[2] fid[4] type[1] start[8] length[8] proc_id[4] client_id[s]
//	Rgetlock tag[2] type[1] start[8] length[8] proc_id[4] client_id[s]
//	Tlock    tag[2] fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s]
//
// with type 0 read, 1 write, 2 unlock; length 0 means "to the end".

// getlockPrefix follows the marker in a rewritten Tgetlock's client_id.
const getlockPrefix = "getlock/"

// getlockResult is the answer to one Tgetlock: the lock that blocks the
// request, or Unlock when nothing does.
type getlockResult struct {
	typ           p9.LockType
	start, length uint64
	pid           int32
	client        string
}

// rewriteGetlock returns the Tlock frame that stands for a Tgetlock (see
// above). A Tgetlock too short to parse, or one whose rewrite would not
// fit msize, is passed on as it is: the library answers it with Rlerror.
func (fr *frameReader) rewriteGetlock(frame []byte, msize uint32) ([]byte, error) {
	const fixed = 4 + 1 + 8 + 8 + 4 // fid type start length proc_id
	body := frame[headerLen:]
	if len(body) < fixed+2 {
		return frame, nil
	}
	n := int(binary.LittleEndian.Uint16(body[fixed:]))
	if len(body) < fixed+2+n {
		return frame, nil
	}
	tag := binary.LittleEndian.Uint16(frame[5:])
	client := fr.c.marker + getlockPrefix + strconv.FormatUint(uint64(tag), 16) + "/" + string(body[fixed+2:fixed+2+n])
	size := headerLen + fixed + 4 + 2 + len(client)
	if len(client) > 0xFFFF || uint32(size) > msize {
		return frame, nil
	}
	out := make([]byte, 0, size)
	out = binary.LittleEndian.AppendUint32(out, uint32(size))
	out = append(out, msgTlock)
	out = binary.LittleEndian.AppendUint16(out, tag)
	out = append(out, body[:5]...)                 // fid type
	out = binary.LittleEndian.AppendUint32(out, 0) // flags
	out = append(out, body[5:fixed]...)            // start length proc_id
	out = binary.LittleEndian.AppendUint16(out, uint16(len(client)))
	out = append(out, client...)
	fr.vmu.Lock()
	fr.getlocks[tag] = struct{}{}
	fr.vmu.Unlock()
	fr.buf = out
	return out, nil
}

// isGetlock reports whether tag is a Tgetlock passed on as Tlock.
func (fr *frameReader) isGetlock(tag uint16) bool {
	fr.vmu.Lock()
	defer fr.vmu.Unlock()
	_, ok := fr.getlocks[tag]
	return ok
}

// parseGetlockClient reports whether client is a rewritten Tgetlock's
// client_id on connection c, and returns its tag and the real client_id.
func (c *conn) parseGetlockClient(client string) (tag uint16, real string, ok bool) {
	rest, ok := strings.CutPrefix(client, c.marker+getlockPrefix)
	if !ok {
		return 0, "", false
	}
	hex, real, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, "", false
	}
	t, err := strconv.ParseUint(hex, 16, 16)
	if err != nil {
		return 0, "", false
	}
	return uint16(t), real, true
}

// keepGetlock stores the answer to the Tgetlock with tag.
func (c *conn) keepGetlock(tag uint16, r getlockResult) {
	c.glMu.Lock()
	defer c.glMu.Unlock()
	if c.getlockResults == nil {
		c.getlockResults = make(map[uint16]getlockResult)
	}
	c.getlockResults[tag] = r
}

// getlockReply returns the Rgetlock frame for tag and forgets the answer.
// Without a kept answer (file.Lock failed, which the library reports as
// Rlerror, not Rlock) it answers "unlocked".
func (c *conn) getlockReply(tag uint16) []byte {
	c.glMu.Lock()
	r, ok := c.getlockResults[tag]
	delete(c.getlockResults, tag)
	c.glMu.Unlock()
	if !ok {
		r = getlockResult{typ: p9.Unlock}
	}
	size := headerLen + 1 + 8 + 8 + 4 + 2 + len(r.client)
	out := make([]byte, 0, size)
	out = binary.LittleEndian.AppendUint32(out, uint32(size))
	out = append(out, msgRgetlock)
	out = binary.LittleEndian.AppendUint16(out, tag)
	out = append(out, byte(r.typ))
	out = binary.LittleEndian.AppendUint64(out, r.start)
	out = binary.LittleEndian.AppendUint64(out, r.length)
	out = binary.LittleEndian.AppendUint32(out, uint32(r.pid))
	out = binary.LittleEndian.AppendUint16(out, uint16(len(r.client)))
	return append(out, r.client...)
}

// testLock answers a Tgetlock for owner on [start, end) of key: the first
// lock of another owner that conflicts with a lock of kind write, or a
// result of type Unlock.
func (t *lockTable) testLock(key lockKey, owner lockOwner, write bool, start, end uint64) getlockResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.m[key] {
		if r.owner != owner && overlaps(r, start, end) && (r.write || write) {
			res := getlockResult{typ: p9.ReadLock, start: r.start, pid: r.owner.pid, client: r.owner.client}
			if r.write {
				res.typ = p9.WriteLock
			}
			if r.end != lockEnd(r.start, 0) {
				res.length = r.end - r.start
			}
			return res
		}
	}
	return getlockResult{typ: p9.Unlock}
}
