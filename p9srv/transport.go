package p9srv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strconv"
	"strings"
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
	// may announce in Txattrcreate (the library buffers it in memory).
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
//     Txattrcreate announces to 64 KiB (the library buffers it);
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
			if len(body) >= off+8 && binary.LittleEndian.Uint64(body[off:]) > xattrSizeMax {
				binary.LittleEndian.PutUint64(body[off:], xattrSizeMax)
			}
		}
	case msgTflush:
		// oldtag[2]: never let a flush wait for a flush.
		if len(body) >= 2 {
			tag := binary.LittleEndian.Uint16(frame[5:])
			old := binary.LittleEndian.Uint16(body)
			fr.vmu.Lock()
			isFlush, busy := fr.inflight[old]
			if old == tag || busy && isFlush {
				free := false
				for i := 0; i < 1<<16 && !free; i++ {
					old++
					_, busy := fr.inflight[old]
					free = !busy && old != tag
				}
				if !free {
					fr.vmu.Unlock()
					return nil, fmt.Errorf("%w: no free tag", errProtocol)
				}
				binary.LittleEndian.PutUint16(body, old)
			}
			fr.vmu.Unlock()
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

// Tsetattr body offsets (9P2000.L: fid[4] valid[4] mode[4] uid[4] gid[4]
// size[8] atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8]).
const (
	setattrValid     = 4
	setattrMode      = 8
	setattrAtimeNsec = 36
	setattrLen       = 60
	p9SetattrMode    = 1 // P9_SETATTR_MODE
)

// setIDCarried flags an atime_nsec that carries set-id bits (bit 63), which
// sit at bits 40..51; a real nanosecond count fits in 30 bits.
const (
	setIDCarried = 1 << 63
	setIDShift   = 40
)

// carrySetIDBits copies the S_ISUID/S_ISGID bits of a Tsetattr's mode into
// the high bits of its atime_nsec: the library masks modes with 01777
// before File.SetAttr sees them, but passes the 64-bit nanosecond field
// through. file.SetAttr moves them back. A client that sets these bits
// itself gains nothing: the kernel applies the same ownership rules to
// every mode change.
func carrySetIDBits(body []byte) {
	if len(body) < setattrLen {
		return
	}
	if binary.LittleEndian.Uint32(body[setattrValid:])&p9SetattrMode == 0 {
		return
	}
	bits := uint64(binary.LittleEndian.Uint32(body[setattrMode:]) & 0o6000)
	if bits == 0 {
		return
	}
	ns := binary.LittleEndian.Uint64(body[setattrAtimeNsec:])
	binary.LittleEndian.PutUint64(body[setattrAtimeNsec:], ns|setIDCarried|bits<<setIDShift)
}

// carriedSetIDBits undoes carrySetIDBits: it returns the set-id bits and
// the true nanosecond count.
func carriedSetIDBits(nsec uint64) (bits uint32, ns uint64) {
	if nsec&setIDCarried != 0 {
		bits = uint32(nsec>>setIDShift) & 0o6000
	}
	return bits, nsec & (1<<32 - 1)
}

// rewriteAuth turns a Tauth (afid[4] uname[s] aname[s] n_uname[4]) into a
// Tattach of afid that attachRoot refuses with ENOENT: the library would
// answer ENOSYS, but diod's clients (diodls, diodcat) take only ENOENT as
// "no authentication required", and Linux never sends Tauth.
func (fr *frameReader) rewriteAuth(frame []byte, msize uint32) ([]byte, error) {
	body := frame[headerLen:]
	if len(body) < 4 {
		return nil, errMalformed
	}
	// Read it as a Tattach body: fid = afid, afid = NOFID, the rest as is.
	b := make([]byte, 0, len(body)+4)
	b = append(b, body[:4]...)
	b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFFF)
	a, err := parseAttach(append(b, body[4:]...))
	if err != nil {
		return nil, err
	}
	return fr.encodeAttach(frame, a, fr.c.marker+noAuthName, msize)
}

// rewriteAttach returns the Tattach frame with its aname replaced by
// marker+uid+"/"+cleaned aname.
func (fr *frameReader) rewriteAttach(frame []byte, msize uint32) ([]byte, error) {
	a, err := parseAttach(frame[headerLen:])
	if err != nil {
		return nil, err
	}
	uid := attachUID(a.uname, a.nuname)
	aname := fr.c.marker + strconv.FormatUint(uint64(uid), 10)
	if rest := cleanAttachName(a.aname); rest != "" {
		aname += pathFollows + "/" + rest
	}
	return fr.encodeAttach(frame, a, aname, msize)
}

// encodeAttach returns (in fr.buf) a Tattach with the tag of frame and
// a's fids, uname and n_uname, naming aname.
func (fr *frameReader) encodeAttach(frame []byte, a tattach, aname string, msize uint32) ([]byte, error) {
	if len(aname) > 0xFFFF {
		return nil, fmt.Errorf("%w: attach name too long", errMalformed)
	}
	size := headerLen + 8 + 2 + len(a.uname) + 2 + len(aname) + 4
	if uint32(size) > msize {
		return nil, errTooLarge{uint32(size), msize}
	}
	out := make([]byte, 0, size)
	out = binary.LittleEndian.AppendUint32(out, uint32(size))
	out = append(out, msgTattach)
	out = append(out, frame[5:headerLen]...) // tag
	out = append(out, a.fids[:]...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(a.uname)))
	out = append(out, a.uname...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(aname)))
	out = append(out, aname...)
	out = binary.LittleEndian.AppendUint32(out, a.nuname)
	fr.buf = out
	return out, nil
}

// tattach is a parsed Tattach body.
type tattach struct {
	fids   [8]byte // fid[4] afid[4], passed on as they are
	uname  string
	aname  string
	nuname uint32
}

// parseAttach parses a Tattach body: fid[4] afid[4] uname[s] aname[s]
// n_uname[4]. Trailing bytes are ignored, as the library does.
func parseAttach(b []byte) (tattach, error) {
	var a tattach
	if len(b) < 8 {
		return a, errMalformed
	}
	copy(a.fids[:], b)
	b = b[8:]
	str := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.LittleEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	var ok bool
	if a.uname, ok = str(); !ok {
		return a, errMalformed
	}
	if a.aname, ok = str(); !ok {
		return a, errMalformed
	}
	if len(b) < 4 {
		return a, errMalformed
	}
	a.nuname = binary.LittleEndian.Uint32(b)
	return a, nil
}

// attachUID is the uid an attach names: n_uname, else uname as a decimal
// number, else nobody.
func attachUID(uname string, nuname uint32) uint32 {
	if nuname != noUID {
		return nuname
	}
	if u, err := strconv.ParseUint(uname, 10, 32); err == nil && u != noUID {
		return uint32(u)
	}
	return nobody
}

// cleanAttachName makes an attach name a clean relative path ("" for the
// root): empty and "." components go, ".." is resolved lexically (never
// above the root), so that the library's walk gets only plain names.
func cleanAttachName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// frameWriter is the write side of a connection as the library sees it.
// The library sends a reply as one net.Buffers.WriteTo call (header, then
// fixed part, then payload, each a Write here); frameWriter keeps the
// pieces (without copying: the library keeps them alive until WriteTo
// returns) until the frame is whole and writes it with one
// net.Buffers.WriteTo on the connection, which is a single writev on a
// socket. It shows every reply to the frame reader, which waits for the
// answer to a Tversion. Writes are serialised by the library.
type frameWriter struct {
	fr *frameReader
	w  io.Writer
	cl io.Closer // may be nil

	hdr  [headerLen]byte
	nhdr int
	need int // frame size from the header
	have int
	arr  [4][]byte
	bufs net.Buffers
}

func newFrameWriter(fr *frameReader, w io.Writer) *frameWriter {
	fw := &frameWriter{fr: fr, w: w}
	if cl, ok := w.(io.Closer); ok {
		fw.cl = cl
	}
	fw.bufs = fw.arr[:0]
	return fw
}

// Write implements io.Writer for the library's send; see frameWriter.
func (fw *frameWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if fw.nhdr < headerLen {
			k := copy(fw.hdr[fw.nhdr:], p)
			fw.nhdr += k
			p = p[k:]
			if fw.nhdr < headerLen {
				break
			}
			fw.need = int(binary.LittleEndian.Uint32(fw.hdr[:]))
			fw.have = headerLen
			fw.bufs = append(fw.arr[:0], fw.hdr[:])
		} else {
			k := min(len(p), fw.need-fw.have)
			fw.bufs = append(fw.bufs, p[:k])
			fw.have += k
			p = p[k:]
		}
		if fw.have >= fw.need {
			if err := fw.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (fw *frameWriter) flush() error {
	typ, tag := fw.hdr[4], binary.LittleEndian.Uint16(fw.hdr[5:])
	var body []byte
	if typ == msgTversion+1 && len(fw.bufs) > 1 {
		body = fw.bufs[1]
	}
	bufs := fw.bufs
	fw.bufs = fw.arr[:0]
	fw.nhdr, fw.need, fw.have = 0, 0, 0
	getlock := typ == msgRlock && fw.fr.isGetlock(tag)
	// Account for the reply before writing it: once written, the client
	// may reuse its tag at once.
	fw.fr.replied(typ, tag, body)
	var err error
	switch {
	case fw.fr.ending.Load():
		// The client has started a new session: answers to the old
		// one's requests would reach it under tags it never sent.
	case getlock:
		_, err = fw.w.Write(fw.fr.c.getlockReply(tag))
	default:
		_, err = bufs.WriteTo(fw.w)
	}
	clear(fw.arr[:])
	if err != nil {
		fw.fr.versionReply(false, 0)
	}
	return err
}

// Close is called by the library at the end of each session: it lets a
// reader waiting for an Rversion go on. The stream outlives a session;
// conn.serve closes it (closeStream) when the connection ends.
func (fw *frameWriter) Close() error {
	fw.fr.versionReply(false, 0)
	return nil
}

// closeStream closes the underlying writer.
func (fw *frameWriter) closeStream() error {
	if fw.cl != nil {
		return fw.cl.Close()
	}
	return nil
}
