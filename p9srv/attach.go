package p9srv

import (
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hugelgupf/p9/fsimpl/templatefs"
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// ident is the identity a fid tree acts with; immutable.
type ident struct {
	cred     vnodeops.Cred
	squashed bool // Options.Squash: client-sent gids are ignored
}

// attacher gives the library the unbound root of one connection.
type attacher struct{ c *conn }

// Attach returns an attachRoot holding a reference to the kernel root.
func (a *attacher) Attach() (p9.File, error) {
	v := a.c.srv.k.Root()
	if v == nil {
		return nil, linux.EIO
	}
	a.c.acquire(true)
	return &attachRoot{c: a.c, v: v}, nil
}

// attachRoot is the File the library starts every attach from. It is
// never installed as a client's fid: the frame reader makes every attach
// name start with the connection's marker, and walking that component is
// the only thing attachRoot does; it yields the kernel root bound to the
// uid that follows the marker. Every other request is refused.
type attachRoot struct {
	templatefs.NotImplementedFile
	templatefs.NoopRenamed
	templatefs.NilSyncer

	c      *conn
	v      *rumpcore.Vnode // one reference, dropped by Close
	closed atomic.Bool
}

// noAuthName follows the marker in the attach the frame reader makes of a
// Tauth; it can never be a uid.
const noAuthName = "noauth"

// pathFollows ends the marker component when the attach name goes on
// below the root (see bind).
const pathFollows = "."

// bind returns the credential the marker component name carries, and
// whether the attach walks on below the bound root (the frame reader
// appends pathFollows then), which makes the bound root an ancestor kept
// by the library rather than the client's fid.
func (r *attachRoot) bind(name string) (id *ident, ancestor bool, err error) {
	rest, ok := strings.CutPrefix(name, r.c.marker)
	if !ok {
		return nil, false, linux.EACCES
	}
	if rest == noAuthName {
		return nil, false, linux.ENOENT // a Tauth: no authentication required
	}
	rest, ancestor = strings.CutSuffix(rest, pathFollows)
	uid, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return nil, false, linux.EACCES
	}
	return r.c.srv.credFor(uint32(uid)), ancestor, nil
}

// Walk implements p9.File.
func (r *attachRoot) Walk(names []string) ([]p9.QID, p9.File, error) {
	qids, f, _, _, err := r.WalkGetAttr(names)
	return qids, f, err
}

// WalkGetAttr implements p9.File: only the marker component is accepted.
func (r *attachRoot) WalkGetAttr(names []string) ([]p9.QID, p9.File, p9.AttrMask, p9.Attr, error) {
	if len(names) != 1 {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, linux.EACCES
	}
	id, ancestor, err := r.bind(names[0])
	if err != nil {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, err
	}
	a, err := r.v.Getattr()
	if err != nil {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, errno(err)
	}
	if err := r.c.acquire(ancestor); err != nil {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, err
	}
	f := &file{c: r.c, v: r.v.Ref(), id: id, exempt: ancestor}
	f.qid = r.c.srv.qidOf(f.v, &a)
	return []p9.QID{f.qid}, f, attrMask, toP9Attr(&a), nil
}

// GetAttr implements p9.File: the library asks for the root's attributes
// for Rattach.
func (r *attachRoot) GetAttr(p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	a, err := r.v.Getattr()
	if err != nil {
		return p9.QID{}, p9.AttrMask{}, p9.Attr{}, errno(err)
	}
	return r.c.srv.qidOf(r.v, &a), attrMask, toP9Attr(&a), nil
}

// Close implements p9.File; idempotent.
func (r *attachRoot) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.v.Release()
		r.c.release(true)
	}
	return nil
}

// Refuse everything else with EACCES rather than the template's ENOSYS.

func (r *attachRoot) StatFS() (p9.FSStat, error) { return p9.FSStat{}, linux.EACCES }
func (r *attachRoot) Open(p9.OpenFlags) (p9.QID, uint32, error) {
	return p9.QID{}, 0, linux.EACCES
}
func (r *attachRoot) SetXattr(string, []byte, p9.XattrFlags) error { return linux.EACCES }
func (r *attachRoot) GetXattr(string) ([]byte, error)              { return nil, linux.EACCES }
func (r *attachRoot) ListXattrs() ([]string, error)                { return nil, linux.EACCES }
func (r *attachRoot) RemoveXattr(string) error                     { return linux.EACCES }
func (r *attachRoot) Lock(int, p9.LockType, p9.LockFlags, uint64, uint64, string) (p9.LockStatus, error) {
	return p9.LockStatusError, linux.EACCES
}
