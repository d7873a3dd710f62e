package p9srv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// Defaults and bounds.
const (
	// DefaultMsize is the msize clamp when Options.Msize is 0.
	DefaultMsize = 1 << 20
	// maxMsize is hugelgupf/p9's own limit.
	maxMsize = 4 << 20
	// minMsize is the smallest msize a client may negotiate; a smaller
	// Tversion is answered "unknown".
	minMsize = 4096
	// nobody is the uid of an attach that names no usable uid.
	nobody = 65534
)

// Identity is how the server knows the groups of the uid a client
// attaches as. 9P2000.L carries the caller's uid but never its groups,
// and without authentication the uid itself is the client's word.
type Identity int

const (
	// IdentityClient (the default) takes the client's word consistently:
	// the uid's credential is {uid, gid = uid} with vnodeops.Cred.AnyGroup
	// set, so an access or chown that only group membership would allow
	// is allowed (a Linux client has already checked it with the caller's
	// real groups), and the gid a create names is used as given. This is
	// no weaker than trusting the uid; Options.Squash or IdentityListed
	// are the ways to enforce.
	IdentityClient Identity = iota
	// IdentityListed takes the gid and groups of a uid from Options.Users
	// (built from the host's /etc/passwd and /etc/group, or from the
	// configuration); an unlisted uid has only NobodyGID. A create by a
	// non-root caller gets the gid it names only if the caller holds it,
	// else the parent directory's gid, as NetBSD does.
	IdentityListed
)

// NobodyGID is the gid of a uid that IdentityListed does not list.
const NobodyGID = 65534

// ErrServerClosed is returned by ServeConn after Shutdown.
var ErrServerClosed = errors.New("p9srv: server closed")

// ErrTooManyConnections is returned by ServeConn when Options.MaxConnections
// connections are being served already.
var ErrTooManyConnections = errors.New("p9srv: too many connections")

// Options configures a Server.
type Options struct {
	// Msize clamps the message size a client may negotiate; 0 means
	// DefaultMsize (1 MiB). Values above 4 MiB (the library's limit) are
	// lowered to it.
	Msize uint32
	// Squash, when set, is the credential of every attach whatever uid the
	// client names, and the owner of every file created.
	Squash *vnodeops.Cred
	// Identity says where a uid's groups come from; see Identity.
	Identity Identity
	// Users maps a uid to its credential (primary gid and groups) under
	// IdentityListed. A uid not in the map gets {UID: uid, GID: NobodyGID}.
	Users map[uint32]vnodeops.Cred
	// ReadOnly makes every write request of the whole server fail with
	// EROFS.
	ReadOnly bool
	// MaxConnections limits the connections served at once; extra
	// connections are closed as soon as they are accepted. 0: no limit.
	MaxConnections int
	// MaxFidsPerConn limits the Files live on one connection: every fid,
	// plus the ancestors the library keeps for walked fids (an attach holds
	// two more: the unbound root and the bound root, and one per attach
	// name component). A walk or create beyond it fails with EMFILE; the
	// connection and the others go on. 0: no limit.
	MaxFidsPerConn int
	// MaxInflight limits the requests of one connection in flight (read
	// and not yet answered); past it the server reads no more from that
	// connection until replies are written. 0: no limit.
	MaxInflight int
	// MaxConnMemory limits the memory the requests in flight on one
	// connection may hold (see flow.go for how a request is costed); a
	// connection with nothing in flight is always admitted one request.
	// 0: no limit.
	MaxConnMemory int64
	// MaxMemory is the same limit across all connections. 0: no limit.
	MaxMemory int64
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger
}

// Server serves a kernel over 9P2000.L. It is safe for concurrent use.
type Server struct {
	k     *rumpcore.Kernel
	opts  Options
	log   *slog.Logger
	msize uint32
	locks lockTable
	mem   *budget // Options.MaxMemory, shared by connections

	nextConn atomic.Uint64
	foldOnce sync.Once

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // connections being served
}

// New returns a server for k. The kernel must outlive the server.
func New(k *rumpcore.Kernel, opts Options) *Server {
	s := &Server{
		k:         k,
		opts:      opts,
		log:       opts.Logger,
		msize:     opts.Msize,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.msize == 0 {
		s.msize = DefaultMsize
	}
	if s.msize > maxMsize {
		s.msize = maxMsize
	}
	if s.msize < minMsize {
		s.msize = minMsize
	}
	s.locks.m = make(map[lockKey][]lockRange)
	s.mem = newBudget(opts.MaxMemory)
	return s
}

// Serve accepts connections on l and serves each with its own p9.Server
// until l is closed or Shutdown is called; then it returns nil. It returns
// the listener's error for any other accept failure. Connections already
// accepted go on being served after Serve returns, until their client
// closes them or Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: wait and retry, as net/http does.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				s.log.Warn("p9srv: accept failed, retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		tuneSocket(nc, s.opts.Msize)
		c, err := s.register(nc)
		if err != nil {
			s.log.Warn("p9srv: connection refused", "remote", nc.RemoteAddr().String(), "err", err)
			nc.Close()
			continue
		}
		go func() {
			defer s.unregister(c)
			c.serve(nc, nc)
		}()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// ServeConn serves one stream (stdio, a pipe pair, a file descriptor) until
// the client closes it, the stream fails, the client sends a malformed or
// oversized message, or Shutdown. If r or w is an io.Closer it is closed at
// the end. It returns nil at a clean end of stream, ErrServerClosed or
// ErrTooManyConnections if the stream was refused, or the error that ended
// the connection.
func (s *Server) ServeConn(r io.Reader, w io.Writer) error {
	c, err := s.register(r)
	if err != nil {
		if cl, ok := r.(io.Closer); ok {
			cl.Close()
		}
		if cl, ok := w.(io.Closer); ok {
			cl.Close()
		}
		return err
	}
	defer s.unregister(c)
	wc, ok := w.(io.WriteCloser)
	if !ok {
		wc = nopWriteCloser{w}
	}
	return c.serve(r, wc)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// Shutdown stops accepting connections, ends every connection once the
// requests it is handling have been answered, and waits for that, or for
// ctx; then it force-closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()

	for _, l := range ls {
		l.Close()
	}
	for _, c := range cs {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.forceClose()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// register admits a new connection whose read side is raw.
func (s *Server) register(raw any) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	if s.opts.MaxConnections > 0 && len(s.conns) >= s.opts.MaxConnections {
		return nil, ErrTooManyConnections
	}
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("p9srv: marker: %w", err)
	}
	c := &conn{
		srv:    s,
		id:     s.nextConn.Add(1),
		marker: "\x00rump9p-" + hex.EncodeToString(rnd[:]) + "-",
		raw:    raw,
		done:   make(chan struct{}),
	}
	c.log = s.log.With("conn", c.id)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c, nil
}

func (s *Server) unregister(c *conn) {
	s.locks.releaseConn(c.id)
	if n := c.files.Load(); n != 0 {
		c.log.Error("p9srv: files still live after the connection ended", "files", n)
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// credFor returns the identity an attach for uid gets.
func (s *Server) credFor(uid uint32) *ident {
	if s.opts.Squash != nil {
		c := *s.opts.Squash
		c.Groups = append([]uint32(nil), c.Groups...)
		return &ident{cred: c, squashed: true}
	}
	if s.opts.Identity == IdentityClient {
		return &ident{cred: vnodeops.Cred{UID: uid, GID: uid, AnyGroup: true}}
	}
	if c, ok := s.opts.Users[uid]; ok {
		c.UID = uid
		c.AnyGroup = false
		c.Groups = append([]uint32(nil), c.Groups...)
		return &ident{cred: c}
	}
	return &ident{cred: vnodeops.Cred{UID: uid, GID: NobodyGID}}
}

// conn is the state of one connection.
type conn struct {
	srv    *Server
	id     uint64
	marker string // per-connection secret prefix of the rewritten attach name
	log    *slog.Logger
	raw    any // the read side, for stopReading and forceClose

	fr     atomic.Pointer[frameReader] // for tests and diagnostics
	files  atomic.Int64                // live Files
	exempt atomic.Int64                // of which exempt from MaxFidsPerConn (see acquire)

	glMu           sync.Mutex
	getlockResults map[uint16]getlockResult // answers to Tgetlocks in flight, by tag
	stopping       atomic.Bool
	done           chan struct{} // closed by stopReading and forceClose
	doneOnce       sync.Once
}

// serve runs the connection until it ends: one p9.Server session after
// another. A Tversion after a successful one ends the session (the frame
// reader returns io.EOF to the library there); the library answers the
// requests it is handling and clunks every fid of the session, which
// closes the files and drops their locks and vnode references; then the
// locks still held through the connection are dropped and a new session
// starts with that Tversion, as version(5) says. The streams are closed
// when the connection ends.
func (c *conn) serve(r io.Reader, w io.WriteCloser) error {
	fr := newFrameReader(c, r)
	c.fr.Store(fr)
	fw := newFrameWriter(fr, w)
	defer fw.closeStream()
	defer fr.closeStream()
	c.log.Debug("p9srv: connection start")
	for session := 1; ; session++ {
		ps := p9.NewServer(&attacher{c: c}, p9.WithServerLogger(libLogger{c.log}))
		ps.Handle(fr, fw)
		if !fr.nextSession() {
			break
		}
		c.srv.locks.releaseConn(c.id)
		if n := c.files.Load(); n != 0 {
			c.log.Error("p9srv: files still live after a session ended", "files", n)
		}
		c.log.Debug("p9srv: session reset by Tversion", "session", session+1)
	}
	fr.settleAll()
	err := fr.failure()
	if err != nil {
		c.log.Info("p9srv: connection closed", "err", err)
	} else {
		c.log.Debug("p9srv: connection end")
	}
	return err
}

// stopReading makes the connection read no further request: requests
// being handled are answered, then the library closes the connection.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	c.doneOnce.Do(func() { close(c.done) })
	switch r := c.raw.(type) {
	case interface{ SetReadDeadline(time.Time) error }:
		if r.SetReadDeadline(time.Now()) == nil {
			return
		}
		if cl, ok := c.raw.(io.Closer); ok {
			cl.Close()
		}
	case io.Closer:
		r.Close()
	}
}

// forceClose closes the connection's read side at once.
func (c *conn) forceClose() {
	c.stopping.Store(true)
	c.doneOnce.Do(func() { close(c.done) })
	if cl, ok := c.raw.(io.Closer); ok {
		cl.Close()
	}
}

// acquire counts a new File on the connection. A File that is a client's
// fid (not exempt) is refused with EMFILE when the connection holds
// MaxFidsPerConn such Files already. Exempt Files are the library's
// ancestors of an attach (the unbound root, and the bound root when the
// attach names a path below it): they live no longer than the fid they
// lead to, so they need no limit of their own.
func (c *conn) acquire(exempt bool) error {
	if exempt {
		c.exempt.Add(1)
		c.files.Add(1)
		return nil
	}
	n := c.files.Add(1) - c.exempt.Load()
	if max := c.srv.opts.MaxFidsPerConn; max > 0 && n > int64(max) {
		c.files.Add(-1)
		return errMFILE
	}
	return nil
}

// release uncounts a File that acquire counted.
func (c *conn) release(exempt bool) {
	if exempt {
		c.exempt.Add(-1)
	}
	c.files.Add(-1)
}

// libLogger gives the library's log lines to slog: handler panics at
// Error, everything else (a line per message) at Debug.
type libLogger struct{ l *slog.Logger }

func (ll libLogger) Printf(format string, v ...any) {
	if strings.HasPrefix(format, "panic") {
		ll.l.Error("p9srv: library: " + fmt.Sprintf(format, v...))
		return
	}
	if !ll.l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	ll.l.Debug("p9srv: library: " + fmt.Sprintf(format, v...))
}

func (ll libLogger) Print(v ...any) {
	if !ll.l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	ll.l.Debug("p9srv: library: " + fmt.Sprint(v...))
}

// tuneSocket sizes a connection's kernel buffers to hold a whole message
// each way: a unix socket's default (about 200 KiB) splits every 1 MiB
// Rread into several wakeups. Failures are harmless and ignored.
func tuneSocket(nc net.Conn, msize uint32) {
	type buffered interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}
	if b, ok := nc.(buffered); ok {
		n := int(max(msize, 1<<20)) * 2
		b.SetReadBuffer(n)
		b.SetWriteBuffer(n)
	}
}
