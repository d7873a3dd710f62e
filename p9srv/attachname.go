package p9srv

import (
	"encoding/binary"
	"fmt"
	"path"
	"strconv"
	"strings"
)

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
