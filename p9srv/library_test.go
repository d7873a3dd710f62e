package p9srv

import (
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/hugelgupf/p9/fsimpl/templatefs"
	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
)

// The attach-uid rewrite (attachname.go) is safe only because of two
// behaviours of hugelgupf/p9 v0.4.1 that nothing else pins: Tattach walks
// the attach name from the File that Attacher.Attach returns one component
// per Walk call, and a name may hold any byte, NUL included (the marker
// starts with one). These tests fail if a future version changes either.

// recordingDir is a directory that records every Walk and accepts any
// name.
type recordingDir struct {
	templatefs.NotImplementedFile
	templatefs.NilCloser
	templatefs.NilSyncer
	templatefs.NoopRenamed
	mu    *sync.Mutex
	walks *[][]string
}

func (d *recordingDir) Walk(names []string) ([]p9.QID, p9.File, error) {
	d.mu.Lock()
	*d.walks = append(*d.walks, slices.Clone(names))
	d.mu.Unlock()
	qids := make([]p9.QID, len(names))
	for i := range qids {
		qids[i] = p9.QID{Type: p9.TypeDir, Path: uint64(i + 1)}
	}
	return qids, d, nil
}

func (d *recordingDir) GetAttr(p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	return p9.QID{Type: p9.TypeDir}, p9.AttrMask{Mode: true}, p9.Attr{Mode: p9.ModeDirectory | 0o755}, nil
}

func (d *recordingDir) WalkGetAttr(names []string) ([]p9.QID, p9.File, p9.AttrMask, p9.Attr, error) {
	qids, f, err := d.Walk(names)
	if err != nil {
		return nil, nil, p9.AttrMask{}, p9.Attr{}, err
	}
	_, mask, attr, err := d.GetAttr(p9.AttrMaskAll)
	return qids, f, mask, attr, err
}

func (d *recordingDir) Open(p9.OpenFlags) (p9.QID, uint32, error) {
	return p9.QID{}, 0, linux.ENOSYS
}

type recordingAttacher struct{ root *recordingDir }

func (a recordingAttacher) Attach() (p9.File, error) { return a.root, nil }

func TestLibraryWalksAttachNamesByComponent(t *testing.T) {
	var mu sync.Mutex
	var walks [][]string
	root := &recordingDir{mu: &mu, walks: &walks}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go p9.NewServer(recordingAttacher{root}).Serve(l)

	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cl, err := p9.NewClient(nc, p9.WithMessageSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const marker = "\x00rump9p-0123-1000."
	if _, err := cl.Attach(marker + "/a/b\x00c/d"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := [][]string{{marker}, {"a"}, {"b\x00c"}, {"d"}}
	var got [][]string
	for _, w := range walks {
		if len(w) > 0 { // the library may also clone with an empty walk
			got = append(got, w)
		}
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("the library walked the attach name as %q, want one component per Walk, NUL kept: %q", got, want)
	}
}
