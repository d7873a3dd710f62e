package p9srv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// 9P message types the frame reader looks into (9P2000.L, see
// github.com/hugelgupf/p9/p9/p9.go and Linux include/net/9p/9p.h).
const (
	msgTreaddir     = 40
	msgTxattrcreate = 32
	msgTversion     = 100
	msgTattach      = 104
	msgTauth        = 102
	msgTsetattr     = 26
	msgTread        = 116
	msgTflush       = 108
	msgTlock        = 52
	msgRlock        = 53
	msgTgetlock     = 54
	msgRgetlock     = 55
	msgRlerror      = 7
	noTag           = 0xFFFF
)

const (
	headerLen = 7 // size[4] type[1] tag[2]
	// replyOverhead is the header of Rread and Rreaddir: size[4] type[1]
	// tag[2] count[4].
	replyOverhead = 11
	// xattrSizeMax is Linux's XATTR_SIZE_MAX: the largest value a client
	// may set. A larger size announced in Txattrcreate is lowered to one
	// byte more (the library buffers the value in memory), so that such a
	// value is refused (E2BIG) at Tclunk and never stored cut short.
	xattrSizeMax = 64 << 10
	// noUID is n_uname's "no uid" value.
	noUID = 0xFFFFFFFF
	// readBufSize is the buffered reader under each connection: small
	// messages arrive several to a read, large payloads bypass it.
	readBufSize = 64 << 10
)

// Errors that close a connection.
var (
	errMalformed = errors.New("malformed 9P message")
	errProtocol  = errors.New("9P protocol violation")
)

// errSessionEnd ends one library session at a Tversion on a live
// connection; the connection goes on with a new session (see conn.serve).
var errSessionEnd = errors.New("9P session reset by Tversion")

type errTooLarge struct{ size, msize uint32 }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("9P message of %d bytes exceeds msize %d", e.size, e.msize)
}

// frameReader is the read side of a connection as the p9 library sees it.
// It follows the 9P framing (size[4] type[1] tag[2] body, little endian)
// and passes messages through unchanged, without copying their payloads,
// except that it:
//
//   - closes the connection (returns an error) on a frame shorter than its
//     header, a frame larger than the negotiated msize, a first message
//     that is not Tversion, or a Tattach it cannot parse;
//   - ends the library's session (returns io.EOF to it) at a Tversion
//     after a successful one, keeping that Tversion to open the next
//     session with: version(5) says a new Tversion resets the session,
//     and Linux sends one on the same stream at every mount of a
//     virtio-serial port (see conn.serve);
//   - turns a Tgetlock, which the library does not handle, into a Tlock
//     that file.Lock recognises as a test (see getlock.go);
//   - lowers Tversion's msize to the server's clamp, and answers an msize
//     below 4096 with "unknown" (by rewriting it to 0);
//   - rewrites every Tattach's aname to carry the uid behind the
//     connection's marker (see the package documentation);
//   - lowers the count of Tread and Treaddir so the reply fits in msize
//     (the library would fault on a larger one), and the size that
//     Txattrcreate announces to 64 KiB + 1 (the library buffers it);
//   - after a Tversion, reads nothing more until the server has answered
//     it (the library would handle a pipelined Tread before its buffers
//     exist), and takes the negotiated msize from that answer;
//   - redirects a Tflush whose old tag is itself or another Tflush in
//     flight to a free tag (the library's flush waits for its old tag, so
//     such a flush would never end and would hold the connection open).
//
// It is used by one goroutine at a time (the library serialises receiving).
type frameReader struct {
	c *conn
	r *bufio.Reader
	// cl closes the underlying stream, or is nil.
	cl io.Closer

	maxMsize uint32 // the server's clamp

	// replay is a Tversion read at the end of the last session, to be
	// delivered first in the next one; ending is set from then until the
	// next session starts.
	replay []byte
	ending atomic.Bool

	// The version state is set from the Rversion the server sends (see
	// frameWriter); after passing a Tversion on, the reader waits for its
	// reply, as the library must not handle anything while it negotiates.
	vmu       sync.Mutex
	msize     uint32        // frames larger than this close the connection
	versioned bool          // a Tversion has succeeded
	gate      chan struct{} // non-nil while a Tversion awaits its reply
	vtag      uint16        // that Tversion's tag
	// inflight maps the tag of every request passed on and not yet
	// answered to whether it is a Tflush: the library's Tflush waits for
	// its old tag, so a Tflush of a Tflush (or of itself) could wait
	// forever and hold the connection open.
	inflight map[uint16]bool
	// getlocks holds the tags of Tgetlocks passed on as Tlock; the
	// writer turns their Rlock into an Rgetlock.
	getlocks map[uint16]struct{}
	// cost is the memory each request in flight may hold (flow.go), and
	// held their sum; drained has a token when a request was answered.
	cost    map[uint16]int64
	held    int64
	drained chan struct{}

	hdr     [headerLen]byte
	buf     []byte // a buffered (possibly rewritten) frame
	pending []byte // what is left of buf to deliver
	body    int64  // bytes of a passed-through body left to deliver

	errMu sync.Mutex
	err   error // the error that ended the stream, sticky
}

func newFrameReader(c *conn, r io.Reader) *frameReader {
	fr := &frameReader{
		c:        c,
		r:        bufio.NewReaderSize(r, readBufSize),
		maxMsize: c.srv.msize,
		msize:    c.srv.msize,
		inflight: make(map[uint16]bool),
		getlocks: make(map[uint16]struct{}),
		cost:     make(map[uint16]int64),
		drained:  make(chan struct{}, 1),
	}
	if cl, ok := r.(io.Closer); ok {
		fr.cl = cl
	}
	return fr
}

// nextSession prepares the reader for a new library session after the
// last one ended at a Tversion: the negotiated state is forgotten and
// that Tversion is delivered first. It reports false if the connection
// is over instead (no Tversion is waiting, the stream failed, or the
// server is stopping).
func (fr *frameReader) nextSession() bool {
	if !fr.ending.Load() || fr.replay == nil || fr.c.stopping.Load() {
		return false
	}
	fr.errMu.Lock()
	failed := fr.err != nil
	fr.errMu.Unlock()
	if failed {
		return false
	}
	fr.settleAll()
	fr.vmu.Lock()
	fr.msize = fr.maxMsize
	fr.versioned = false
	fr.gate = nil
	clear(fr.inflight)
	clear(fr.getlocks)
	fr.vmu.Unlock()
	fr.pending, fr.body = nil, 0
	fr.ending.Store(false)
	return true
}

// readFull fills p from the replayed Tversion, then from the stream.
func (fr *frameReader) readFull(p []byte) error {
	if len(fr.replay) > 0 {
		n := copy(p, fr.replay)
		fr.replay = fr.replay[n:]
		p = p[n:]
		if len(fr.replay) == 0 {
			fr.replay = nil
		}
	}
	if len(p) == 0 {
		return nil
	}
	_, err := io.ReadFull(fr.r, p)
	return err
}

// versionReply records the server's answer to the pending Tversion (ok
// with the negotiated msize, or a refusal) and lets the reader go on.
func (fr *frameReader) versionReply(ok bool, msize uint32) {
	fr.vmu.Lock()
	defer fr.vmu.Unlock()
	if fr.gate == nil {
		return
	}
	fr.versioned = ok
	if ok {
		fr.msize = msize
	}
	close(fr.gate)
	fr.gate = nil
}

// replied is called by frameWriter for every reply sent.
func (fr *frameReader) replied(typ byte, tag uint16, body []byte) {
	fr.vmu.Lock()
	delete(fr.inflight, tag)
	delete(fr.getlocks, tag)
	fr.settle(tag)
	waiting, vtag := fr.gate != nil, fr.vtag
	fr.vmu.Unlock()
	if !waiting {
		return
	}
	switch {
	case typ == msgTversion+1 && tag == vtag:
		// msize[4] version[s]
		ok := false
		var m uint32
		if len(body) >= 6 {
			m = binary.LittleEndian.Uint32(body)
			n := int(binary.LittleEndian.Uint16(body[4:]))
			ok = len(body) >= 6+n && string(body[6:6+n]) != "unknown" && m >= minMsize && m <= fr.maxMsize
		}
		fr.versionReply(ok, m)
	case typ == msgRlerror && (tag == vtag || tag == noTag):
		fr.versionReply(false, 0)
	}
}

// Close is called by the library at the end of each session; the stream
// outlives a session, so conn.serve closes it (closeStream) when the
// connection ends.
func (fr *frameReader) Close() error { return nil }

// closeStream closes the underlying stream.
func (fr *frameReader) closeStream() error {
	if fr.cl != nil {
		return fr.cl.Close()
	}
	return nil
}

// failure returns the error that ended the stream, nil for a clean end.
func (fr *frameReader) failure() error {
	fr.errMu.Lock()
	defer fr.errMu.Unlock()
	if errors.Is(fr.err, io.EOF) {
		return nil
	}
	return fr.err
}

func (fr *frameReader) fail(err error) error {
	fr.errMu.Lock()
	defer fr.errMu.Unlock()
	if fr.err == nil {
		if fr.c.stopping.Load() {
			// Shutdown interrupted the read: a clean end.
			err = io.EOF
		}
		fr.err = err
	}
	return fr.err
}

// Read implements io.Reader.
func (fr *frameReader) Read(p []byte) (int, error) {
	for {
		if len(p) == 0 {
			return 0, nil
		}
		if len(fr.pending) > 0 {
			n := copy(p, fr.pending)
			fr.pending = fr.pending[n:]
			return n, nil
		}
		if fr.body > 0 {
			if int64(len(p)) > fr.body {
				p = p[:fr.body]
			}
			n, err := fr.r.Read(p)
			fr.body -= int64(n)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, fr.fail(err)
			}
			return n, nil
		}
		fr.errMu.Lock()
		err := fr.err
		fr.errMu.Unlock()
		if err != nil {
			return 0, err
		}
		if fr.ending.Load() {
			return 0, io.EOF
		}
		if err := fr.next(); err != nil {
			if err == errSessionEnd {
				return 0, io.EOF
			}
			return 0, fr.fail(err)
		}
	}
}

// next reads the next frame's header and decides what to deliver.
func (fr *frameReader) next() error {
	fr.vmu.Lock()
	gate := fr.gate
	fr.vmu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-fr.c.done:
		}
	}
	if fr.c.stopping.Load() {
		return io.EOF
	}
	if err := fr.readFull(fr.hdr[:]); err != nil {
		return err // io.EOF between messages is the clean end
	}
	size := binary.LittleEndian.Uint32(fr.hdr[0:4])
	typ := fr.hdr[4]
	fr.vmu.Lock()
	msize, versioned := fr.msize, fr.versioned
	fr.vmu.Unlock()
	if size < headerLen {
		return errMalformed
	}
	if size > msize {
		return errTooLarge{size, msize}
	}
	if !versioned && typ != msgTversion {
		return fmt.Errorf("%w: message type %d before Tversion", errProtocol, typ)
	}
	if versioned && typ == msgTversion {
		// A new session: end the library's, keep the Tversion for the
		// next one (conn.serve).
		frame, err := fr.readFrame(size)
		if err != nil {
			return err
		}
		fr.replay = append([]byte(nil), frame...)
		fr.ending.Store(true)
		return errSessionEnd
	}
	tag := binary.LittleEndian.Uint16(fr.hdr[5:])
	switch typ {
	case msgTversion, msgTattach, msgTauth, msgTsetattr, msgTread, msgTreaddir, msgTxattrcreate, msgTflush, msgTgetlock:
		frame, err := fr.readFrame(size)
		if err != nil {
			return err
		}
		frame, err = fr.rewrite(typ, frame, msize)
		if err != nil {
			return err
		}
		fr.pending = frame
	default:
		fr.buf = append(fr.buf[:0], fr.hdr[:]...)
		fr.pending = fr.buf
		fr.body = int64(size) - headerLen
	}
	if !fr.admit(tag, requestCost(typ, size, fr.pending, msize)) {
		return io.EOF // stopping
	}
	fr.vmu.Lock()
	fr.inflight[tag] = typ == msgTflush
	fr.vmu.Unlock()
	return nil
}

// readFrame reads the body of the frame whose header is in fr.hdr and
// returns the whole frame (in fr.buf).
func (fr *frameReader) readFrame(size uint32) ([]byte, error) {
	if cap(fr.buf) < int(size) {
		fr.buf = make([]byte, size, max(int(size), 512))
	}
	frame := fr.buf[:size]
	copy(frame, fr.hdr[:])
	if err := fr.readFull(frame[headerLen:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return frame, nil
}

// rewrite applies the rules of frameReader to one buffered frame.
func (fr *frameReader) rewrite(typ byte, frame []byte, msize uint32) ([]byte, error) {
	body := frame[headerLen:]
	switch typ {
	case msgTversion:
		// msize[4] version[s]
		if len(body) < 4 {
			return nil, errMalformed
		}
		m := binary.LittleEndian.Uint32(body)
		switch {
		case m < minMsize:
			m = 0 // the library answers "unknown"
		case m > fr.maxMsize:
			m = fr.maxMsize
		}
		binary.LittleEndian.PutUint32(body, m)
		fr.vmu.Lock()
		fr.versioned = false // a Tversion starts a new session
		fr.gate = make(chan struct{})
		fr.vtag = binary.LittleEndian.Uint16(frame[5:])
		fr.vmu.Unlock()
	case msgTread, msgTreaddir:
		// fid[4] offset[8] count[4]
		if len(body) >= 16 {
			if limit := msize - replyOverhead; binary.LittleEndian.Uint32(body[12:]) > limit {
				binary.LittleEndian.PutUint32(body[12:], limit)
			}
		}
	case msgTxattrcreate:
		// fid[4] name[s] attr_size[8] flags[4]
		if len(body) >= 6 {
			off := 6 + int(binary.LittleEndian.Uint16(body[4:]))
			if len(body) >= off+8 && binary.LittleEndian.Uint64(body[off:]) > xattrSizeMax+1 {
				binary.LittleEndian.PutUint64(body[off:], xattrSizeMax+1)
			}
		}
	case msgTflush:
		if err := fr.redirectFlush(frame); err != nil {
			return nil, err
		}
	case msgTattach:
		return fr.rewriteAttach(frame, msize)
	case msgTgetlock:
		return fr.rewriteGetlock(frame, msize)
	case msgTauth:
		return fr.rewriteAuth(frame, msize)
	case msgTsetattr:
		carrySetIDBits(body)
	}
	return frame, nil
}
