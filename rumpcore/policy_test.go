package rumpcore

import (
	"errors"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/vnodeops"
)

// The permission policy, case by case, as a kernel's would be tested.
func TestSetattrPolicy(t *testing.T) {
	const now = 1_700_000_000_000_000_000
	var (
		root   = vnodeops.Root
		owner  = vnodeops.Cred{UID: 1000, GID: 1000, Groups: []uint32{50}}
		other  = vnodeops.Cred{UID: 2000, GID: 2000}
		client = vnodeops.Cred{UID: 1000, GID: 1000, AnyGroup: true}
		file   = vnodeops.Attr{Mode: vnodeops.S_IFREG | 0o6755, UID: 1000, GID: 1000}
		dir    = vnodeops.Attr{Mode: vnodeops.S_IFDIR | 0o2755, UID: 1000, GID: 1000}
		fifo   = vnodeops.Attr{Mode: vnodeops.S_IFIFO | 0o644, UID: 1000, GID: 1000}
	)
	eacces := errors.New("write access denied")
	granted := func() error { return nil }
	denied := func() error { return eacces }
	set := func(mask vnodeops.SetAttrMask, f func(*vnodeops.SetAttr)) vnodeops.SetAttr {
		sa := vnodeops.SetAttr{Mask: mask}
		if f != nil {
			f(&sa)
		}
		return sa
	}
	chmod := func(m uint32) vnodeops.SetAttr {
		return set(vnodeops.SetMode, func(sa *vnodeops.SetAttr) { sa.Mode = m })
	}
	chgrp := func(g uint32) vnodeops.SetAttr {
		return set(vnodeops.SetGID, func(sa *vnodeops.SetAttr) { sa.GID = g })
	}
	chown := func(u uint32) vnodeops.SetAttr {
		return set(vnodeops.SetUID, func(sa *vnodeops.SetAttr) { sa.UID = u })
	}
	times := func(at, mt int64) vnodeops.SetAttr {
		return set(vnodeops.SetAtime|vnodeops.SetMtime, func(sa *vnodeops.SetAttr) { sa.Atime, sa.Mtime = at, mt })
	}
	size := set(vnodeops.SetSize, func(sa *vnodeops.SetAttr) { sa.Size = 10 })

	for _, tc := range []struct {
		name   string
		cred   vnodeops.Cred
		a      vnodeops.Attr
		sa     vnodeops.SetAttr
		access func() error // nil: opened for writing
		err    error
		mode   uint32 // want sa.Mode, when SetMode is in the result
	}{
		{"owner chmod", owner, file, chmod(0o600), denied, nil, 0o600},
		{"other chmod", other, file, chmod(0o600), granted, syscall.EPERM, 0},
		{"root chmod", root, file, chmod(0o4700), denied, nil, 0o4700},
		{"chmod g+s outside the group", other, vnodeops.Attr{Mode: vnodeops.S_IFREG | 0o644, UID: 2000, GID: 1000}, chmod(0o2755), denied, nil, 0o755},
		{"chmod g+s as a member", owner, vnodeops.Attr{Mode: vnodeops.S_IFREG | 0o644, UID: 1000, GID: 50}, chmod(0o2755), denied, nil, 0o2755},
		{"chmod g+s, any group", client, vnodeops.Attr{Mode: vnodeops.S_IFREG | 0o644, UID: 1000, GID: 42}, chmod(0o2755), denied, nil, 0o2755},
		{"chmod drops the type bits", owner, file, chmod(vnodeops.S_IFDIR | 0o644), denied, nil, 0o644},
		{"owner chown", owner, file, chown(2000), granted, syscall.EPERM, 0},
		{"chown to self", owner, file, chown(1000), granted, nil, 0},
		{"root chown clears set-id", root, file, chown(2000), denied, nil, 0o755},
		{"root chown of a directory keeps set-gid", root, dir, chown(2000), denied, nil, 0},
		{"chgrp to an own group clears set-id", owner, file, chgrp(50), denied, nil, 0o755},
		{"chgrp to a foreign group", owner, file, chgrp(42), denied, syscall.EPERM, 0},
		{"chgrp, any group", client, file, chgrp(42), denied, nil, 0o755},
		{"chgrp by a non-owner", other, file, chgrp(2000), granted, syscall.EPERM, 0},
		{"owner sets times", owner, file, times(5, 6), denied, nil, 0},
		{"other sets times", other, file, times(5, 6), granted, syscall.EPERM, 0},
		{"other touches with write access", other, file, times(UtimeNow, UtimeNow), granted, nil, 0},
		{"other touches without", other, file, times(UtimeNow, UtimeNow), denied, eacces, 0},
		{"other touches through an open fd", other, file, times(UtimeNow, UtimeNow), nil, nil, 0},
		{"other sets one time, one now", other, file, times(UtimeNow, 6), granted, syscall.EPERM, 0},
		{"truncate with write access", other, file, size, granted, nil, 0},
		{"truncate without", other, file, size, denied, eacces, 0},
		{"ftruncate of an open fd", other, file, size, nil, nil, 0},
		{"truncate a directory", root, dir, size, granted, syscall.EISDIR, 0},
		{"truncate a fifo", root, fifo, size, granted, syscall.EINVAL, 0},
		{"owner chflags", owner, file, set(vnodeops.SetFlags, nil), denied, nil, 0},
		{"other chflags", other, file, set(vnodeops.SetFlags, nil), granted, syscall.EPERM, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := setattrPolicy(tc.cred, tc.a, tc.sa, now, tc.access)
			if !errors.Is(err, tc.err) && err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got.Mask&vnodeops.SetMode != 0 && got.Mode != tc.mode {
				t.Errorf("mode %o, want %o", got.Mode, tc.mode)
			}
			if got.Mask&vnodeops.SetMode == 0 && tc.mode != 0 {
				t.Errorf("no mode change, want %o", tc.mode)
			}
			if got.Mask&vnodeops.SetAtime != 0 && tc.sa.Atime == UtimeNow && got.Atime != now {
				t.Errorf("atime %d, want now", got.Atime)
			}
		})
	}
}

func TestEntryPolicy(t *testing.T) {
	sticky := vnodeops.Attr{Mode: vnodeops.S_IFDIR | 0o1777, UID: 0}
	plain := vnodeops.Attr{Mode: vnodeops.S_IFDIR | 0o777, UID: 0}
	mine := vnodeops.Attr{Mode: vnodeops.S_IFREG | 0o644, UID: 1000}
	u1000, u2000 := vnodeops.Cred{UID: 1000, GID: 1000}, vnodeops.Cred{UID: 2000, GID: 2000}
	for _, tc := range []struct {
		name string
		cred vnodeops.Cred
		dir  vnodeops.Attr
		want bool
	}{
		{"owner in a sticky dir", u1000, sticky, false},
		{"stranger in a sticky dir", u2000, sticky, true},
		{"root in a sticky dir", vnodeops.Root, sticky, false},
		{"directory owner", u2000, vnodeops.Attr{Mode: vnodeops.S_IFDIR | 0o1777, UID: 2000}, false},
		{"stranger in a plain dir", u2000, plain, false},
	} {
		if got := stickyDenied(tc.cred, tc.dir, mine); got != tc.want {
			t.Errorf("stickyDenied %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	sgidDir := vnodeops.Attr{Mode: vnodeops.S_IFDIR | 0o2775, GID: 42}
	if uid, gid := newOwner(u1000, sgidDir); uid != 1000 || gid != 42 {
		t.Errorf("owner in a set-gid dir: %d:%d, want 1000:42", uid, gid)
	}
	if uid, gid := newOwner(u1000, plain); uid != 1000 || gid != 1000 {
		t.Errorf("owner in a plain dir: %d:%d, want 1000:1000", uid, gid)
	}
	given := u1000
	given.NewFileGID, given.HasNewFileGID = 77, true
	if uid, gid := newOwner(given, plain); uid != 1000 || gid != 77 {
		t.Errorf("owner with a group given by the front: %d:%d, want 1000:77", uid, gid)
	}
	if uid, gid := newOwner(given, sgidDir); uid != 1000 || gid != 42 {
		t.Errorf("a set-gid dir over a given group: %d:%d, want 1000:42", uid, gid)
	}
	if given.InGroup(77) {
		t.Errorf("a given file group must grant nothing")
	}
	if m := clearSGID(u1000, 42, 0o2755); m != 0o755 {
		t.Errorf("set-gid for a non-member: %o", m)
	}
	if m := clearSGID(vnodeops.Cred{UID: 1000, GID: 1000, Groups: []uint32{42}}, 42, 0o2755); m != 0o2755 {
		t.Errorf("set-gid for a member: %o", m)
	}
}
