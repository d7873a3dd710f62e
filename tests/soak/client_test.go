package soak

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/tests/p9raw"
)

// dial connects a 9P client to sock and attaches to the mount "fs" as
// root (see rewrite).
func dial(sock string, msize uint32) (*p9.Client, p9.File, error) {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, err
	}
	cl, err := p9.NewClient(&p9raw.Conn{Conn: nc, Rewrite: rewrite}, p9.WithMessageSize(msize))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	root, err := cl.Attach("fs")
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return cl, root, nil
}

// isErrno reports whether err, as the p9 client returns it, is e.
func isErrno(err error, e syscall.Errno) bool {
	var le linux.Errno
	if errors.As(err, &le) {
		return uintptr(le) == uintptr(e)
	}
	return errors.Is(err, e)
}

// walk walks from dir along a slash-separated path ("" clones dir).
func walk(dir p9.File, path string) (p9.File, error) {
	var names []string
	if path != "" {
		names = strings.Split(path, "/")
	}
	_, f, err := dir.Walk(names)
	return f, err
}

// each runs one request; a worker's times it (worker.do).
type each func(func() error) error

func untimed(f func() error) error { return f() }

// open walks from dir to path and opens the new fid with flags, making
// each request through do (untimed if nil). The caller closes the fid.
func open(dir p9.File, path string, flags p9.OpenFlags, do each) (p9.File, error) {
	if do == nil {
		do = untimed
	}
	var f p9.File
	if err := do(func() (err error) { f, err = walk(dir, path); return }); err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	if err := do(func() error { _, _, err := f.Open(flags); return err }); err != nil {
		do(f.Close)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// readAll reads a whole file through a fresh fid, in requests of chunk
// bytes, made through do (untimed if nil).
func readAll(dir p9.File, path string, chunk int, do each) ([]byte, error) {
	if do == nil {
		do = untimed
	}
	f, err := open(dir, path, p9.ReadOnly, do)
	if err != nil {
		return nil, err
	}
	defer do(f.Close)
	var out []byte
	buf := make([]byte, chunk)
	for {
		var n int
		err := do(func() (err error) { n, err = f.ReadAt(buf, int64(len(out))); return })
		out = append(out, buf[:n]...)
		if err == io.EOF || (err == nil && n == 0) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read %s at %d: %w", path, len(out), err)
		}
	}
}

// readdirAll lists a directory through a fresh fid, without "." and "..".
func readdirAll(dir p9.File, path string, do each) (map[string]p9.QIDType, error) {
	if do == nil {
		do = untimed
	}
	d, err := open(dir, path, p9.ReadOnly, do)
	if err != nil {
		return nil, err
	}
	defer do(d.Close)
	names := map[string]p9.QIDType{}
	var off uint64
	for {
		var ents p9.Dirents
		if err := do(func() (err error) { ents, err = d.Readdir(off, 8<<10); return }); err != nil {
			return nil, fmt.Errorf("readdir %s at %d: %w", path, off, err)
		}
		if len(ents) == 0 {
			return names, nil
		}
		for _, e := range ents {
			off = e.Offset
			if e.Name == "." || e.Name == ".." {
				continue
			}
			if _, dup := names[e.Name]; dup {
				return nil, fmt.Errorf("readdir %s lists %q twice", path, e.Name)
			}
			names[e.Name] = e.QID.Type
		}
	}
}

// The hugelgupf/p9 v0.4.1 client sends every Tlock with fid 0: its
// clientFile.Lock builds the message without the fid (client_file.go), so
// a server answers EBADF or locks whatever fid 0 is. Until the library is
// fixed, lock passes the fid in the client_id, "fid=N/soak", and the
// connection's rewrite (fixTlock) moves it into place.

const (
	msgTlock = 52
	fidMark  = "fid="
	lockID   = "soak" // the client_id the server sees
)

// lock sends Tlock on f's own fid.
func lock(f p9.File, pid int, typ p9.LockType, start, length uint64) (p9.LockStatus, error) {
	fid := reflect.ValueOf(f).Elem().FieldByName("fid").Uint()
	return f.Lock(pid, typ, 0, start, length, fidMark+strconv.FormatUint(fid, 10)+"/"+lockID)
}

// fixTlock rewrites a Tlock frame made by lock: the fid from the client_id
// goes into the fid field, and the client_id becomes lockID.
//
//	size[4] Tlock tag[2] fid[4] type[1] flags[4] start[8] length[8] proc_id[4] client_id[s]
func fixTlock(frame []byte) []byte {
	const idAt = 7 + 4 + 1 + 4 + 8 + 8 + 4
	if len(frame) < idAt+2 || frame[4] != msgTlock {
		return frame
	}
	id := frame[idAt+2:]
	num, rest, ok := bytes.Cut(bytes.TrimPrefix(id, []byte(fidMark)), []byte("/"))
	if !ok || !bytes.HasPrefix(id, []byte(fidMark)) {
		return frame
	}
	fid, err := strconv.ParseUint(string(num), 10, 32)
	if err != nil {
		panic(fmt.Sprintf("fixTlock: client_id %q", id))
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(idAt+2+len(rest)))
	out = append(out, frame[4:7]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(fid))
	out = append(out, frame[11:idAt]...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(rest)))
	return append(out, rest...)
}

// rewrite is what dial's connections do to outgoing frames: attach as
// root (the client would send NoUID, that is nobody) and fix Tlock.
func rewrite(frame []byte) []byte { return fixTlock(p9raw.AttachAs(0)(frame)) }
