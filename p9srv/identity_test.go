package p9srv

import (
	"fmt"
	"testing"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/vnodeops"
)

// identityTree makes, as root in tmp1:
//
//	g      0:4242 0640  readable through group 4242 only
//	o      0:0    0604  readable through "other" only
//	mine   1000:1000 0644
//	pd/    0:777  0777  a plain directory
//	sd/    0:4242 2777  a set-group-ID directory
func identityTree(t *testing.T, root p9.File) {
	t.Helper()
	chown := func(f p9.File, uid, gid uint32, mode p9.FileMode) {
		t.Helper()
		err := f.SetAttr(p9.SetAttrMask{UID: true, GID: true, Permissions: true},
			p9.SetAttr{UID: p9.UID(uid), GID: p9.GID(gid), Permissions: mode})
		if err != nil {
			t.Fatal(err)
		}
	}
	chown(createFile(t, root, "g", []byte("g")), 0, 4242, 0o640)
	chown(createFile(t, root, "o", []byte("o")), 0, 0, 0o604)
	chown(createFile(t, root, "mine", []byte("m")), 1000, 1000, 0o644)
	for _, d := range []struct {
		name string
		gid  uint32
		mode p9.FileMode
	}{{"pd", 777, 0o777}, {"sd", 4242, 0o2777}} {
		if _, err := root.Mkdir(d.name, 0o755, p9.NoUID, p9.NoGID); err != nil {
			t.Fatal(err)
		}
		chown(walk(t, root, d.name), 0, d.gid, d.mode)
	}
	// The library masks set-id bits of Tsetattr's mode; set S_ISGID the
	// way Linux's chmod reaches us (carried past the mask).
	sd := walk(t, root, "sd")
	if err := sd.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777, ATimeNanoSeconds: setIDCarried | 0o2000<<setIDShift}); err != nil {
		t.Fatal(err)
	}
}

// TestIdentityPolicies checks each security.identity mode with a table of
// cases: group access, chown to an own and a foreign group, creates naming
// a held, a foreign and root's gid, set-group-ID directories.
func TestIdentityPolicies(t *testing.T) {
	users := map[uint32]vnodeops.Cred{1000: {GID: 1000, Groups: []uint32{4242}}}
	type op func(t *testing.T, root p9.File) (string, error)
	open := func(name string) op {
		return func(t *testing.T, root p9.File) (string, error) {
			_, f, err := root.Walk([]string{name})
			if err != nil {
				return "", err
			}
			defer f.Close()
			_, _, err = f.Open(p9.ReadOnly)
			return "", err
		}
	}
	chgrp := func(gid uint32) op {
		return func(t *testing.T, root p9.File) (string, error) {
			f := walk(t, root, "mine")
			defer f.Close()
			return "", f.SetAttr(p9.SetAttrMask{GID: true}, p9.SetAttr{GID: p9.GID(gid)})
		}
	}
	// create makes a directory in dir naming gid and returns its group.
	n := 0
	create := func(dir string, gid uint32) op {
		return func(t *testing.T, root p9.File) (string, error) {
			d := walk(t, root, dir)
			defer d.Close()
			n++
			name := fmt.Sprintf("new%d", n)
			if _, err := d.Mkdir(name, 0o755, p9.NoUID, p9.GID(gid)); err != nil {
				return "", err
			}
			_, _, a, err := walk(t, d, name).GetAttr(p9.AttrMaskAll)
			return fmt.Sprint("gid ", a.GID), err
		}
	}
	eacces, eperm := linux.EACCES, linux.EPERM
	for _, tc := range []struct {
		name   string
		uid    uint32
		op     op
		client any // want under IdentityClient: a linux.Errno or a result
		listed any // want under IdentityListed
	}{
		{"group read", 1000, open("g"), nil, nil},
		{"group read unlisted", 2000, open("g"), nil, eacces},
		{"other read", 1000, open("o"), nil, nil},
		{"chgrp own group", 1000, chgrp(4242), nil, nil},
		{"chgrp foreign group", 1000, chgrp(42), nil, eperm},
		{"chgrp by non-owner", 2000, chgrp(4242), eperm, eperm},
		{"create held gid", 1000, create("pd", 4242), "gid 4242", "gid 4242"},
		{"create foreign gid", 1000, create("pd", 42), "gid 42", "gid 777"},
		{"create root gid", 1000, create("pd", 0), "gid 0", "gid 777"},
		{"create unlisted", 2000, create("pd", 2000), "gid 2000", "gid 777"},
		{"create in sgid dir", 1000, create("sd", 1000), "gid 4242", "gid 4242"},
		{"root creates foreign gid", 0, create("pd", 42), "gid 42", "gid 42"},
	} {
		for _, mode := range []struct {
			name string
			opts Options
			want any
		}{
			{"client", Options{}, tc.client},
			{"listed", Options{Identity: IdentityListed, Users: users}, tc.listed},
		} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				k := newKernel(t)
				_, addr := startServer(t, k, mode.opts, false)
				rootCl, _ := dial(t, addr, 0, testMsize)
				identityTree(t, attach(t, rootCl, "tmp1"))
				cl, _ := dial(t, addr, tc.uid, testMsize)
				got, err := tc.op(t, attach(t, cl, "tmp1"))
				switch want := mode.want.(type) {
				case nil:
					if err != nil {
						t.Errorf("got %v, want success", err)
					}
				case linux.Errno:
					wantErr(t, tc.name, err, want)
				case string:
					if err != nil || got != want {
						t.Errorf("got %q (%v), want %q", got, err, want)
					}
				}
			})
		}
	}
}

// TestFtruncateOpenForWriting: a size change through a fid opened for
// writing is allowed whatever the file's mode (POSIX ftruncate), while a
// path truncate (a fid not opened) is checked.
func TestFtruncateOpenForWriting(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 1000, testMsize)
	d := attach(t, cl, "tmp1")
	f, _, _, err := walk(t, d).Create("zero", p9.ReadWrite, 0, p9.NoUID, p9.NoGID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetAttr(p9.SetAttrMask{Size: true, MTime: true, CTime: true}, p9.SetAttr{Size: 10}); err != nil {
		t.Errorf("ftruncate of a mode-0 file opened for writing: %v", err)
	}
	_, _, a, _ := f.GetAttr(p9.AttrMaskAll)
	if a.Size != 10 {
		t.Errorf("size %d, want 10", a.Size)
	}
	wantErr(t, "truncate by path", walk(t, d, "zero").SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 0}), linux.EACCES)
}
