package p9srv

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/vnodeops"
)

func TestAttachRootAndMount(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 0, testMsize)

	root := attach(t, cl, "")
	_, _, a, err := root.GetAttr(p9.AttrMaskAll)
	if err != nil || !a.Mode.IsDir() {
		t.Fatalf("root GetAttr: %v %v", a, err)
	}
	// Each mount is a directory of the root.
	d := walk(t, root, "tmp1")
	createFile(t, d, "hello", []byte("world"))

	for _, name := range []string{"/tmp1", "tmp1", "tmp1/", "/tmp1/./", "x/../tmp1"} {
		m := attach(t, cl, name)
		if got := readAll(t, m, "hello"); string(got) != "world" {
			t.Errorf("attach %q: read %q", name, got)
		}
	}
	// A sub directory.
	if _, err := walk(t, root, "tmp1").Mkdir("sub", 0o755, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	sub := attach(t, cl, "tmp1/sub")
	createFile(t, sub, "inner", []byte("x"))
	if got := readAll(t, walk(t, root, "tmp1", "sub"), "inner"); string(got) != "x" {
		t.Errorf("inner: %q", got)
	}
	if _, err := cl.Attach("nonexistent"); err == nil {
		t.Errorf("attach to a missing name succeeded")
	} else {
		wantErr(t, "attach nonexistent", err, linux.ENOENT)
	}
}

func TestUnixSocket(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, true)
	cl, _ := dial(t, addr, 0, testMsize)
	d := attach(t, cl, "tmp1")
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000) // several msizes
	createFile(t, d, "big", data)
	if got := readAll(t, d, "big"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
}

func TestServeConnPipe(t *testing.T) {
	k := newKernel(t)
	s := New(k, Options{})
	cr, sw, _ := os.Pipe()
	sr, cw, _ := os.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(sr, sw) }()
	cl, err := p9.NewClient(pipeRW{cr, cw}, p9.WithMessageSize(testMsize))
	if err != nil {
		t.Fatal(err)
	}
	d := attach(t, cl, "/tmp2")
	createFile(t, d, "f", []byte("via pipes"))
	if got := readAll(t, d, "f"); string(got) != "via pipes" {
		t.Fatalf("got %q", got)
	}
	cl.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeConn: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeConn did not return after the client closed")
	}
}

type pipeRW struct {
	r *os.File
	w *os.File
}

func (p pipeRW) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p pipeRW) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p pipeRW) Close() error                { p.w.Close(); return p.r.Close() }

func TestFileOperations(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 0, testMsize)
	d := attach(t, cl, "tmp1")

	f := createFile(t, d, "a", []byte("hello world"))
	if got := readAll(t, d, "a"); string(got) != "hello world" {
		t.Fatalf("read %q", got)
	}
	if err := f.FSync(); err != nil {
		t.Errorf("FSync: %v", err)
	}
	// Rename within and across directories.
	if err := d.RenameAt("a", d, "b"); err != nil {
		t.Fatalf("RenameAt: %v", err)
	}
	if _, _, err := d.Walk([]string{"a"}); err == nil {
		t.Errorf("old name still there")
	}
	if _, err := d.Mkdir("dir", 0o755, p9.NoUID, p9.NoGID); err != nil {
		t.Fatalf("Mkdir: %v", err)
	}
	sub := walk(t, d, "dir")
	if err := d.RenameAt("b", sub, "c"); err != nil {
		t.Fatalf("RenameAt across: %v", err)
	}
	if got := readAll(t, sub, "c"); string(got) != "hello world" {
		t.Fatalf("after rename: %q", got)
	}
	// Old-style Trename of a walked fid.
	cf := walk(t, sub, "c")
	if err := cf.Rename(d, "e"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	if got := readAll(t, d, "e"); string(got) != "hello world" {
		t.Fatalf("after Trename: %q", got)
	}
	// Link, symlink, readlink.
	ef := walk(t, d, "e")
	if err := d.Link(ef, "e2"); err != nil {
		t.Fatalf("Link: %v", err)
	}
	_, _, a, err := walk(t, d, "e2").GetAttr(p9.AttrMaskAll)
	if err != nil || a.NLink != 2 {
		t.Errorf("nlink after link: %d %v", a.NLink, err)
	}
	if _, err := d.Symlink("e", "sym", p9.NoUID, p9.NoGID); err != nil {
		t.Fatalf("Symlink: %v", err)
	}
	s := walk(t, d, "sym")
	if target, err := s.Readlink(); err != nil || target != "e" {
		t.Errorf("Readlink: %q %v", target, err)
	}
	// Setattr: mode, size, explicit times, now times.
	if err := ef.SetAttr(p9.SetAttrMask{Permissions: true, CTime: true}, p9.SetAttr{Permissions: 0o600}); err != nil {
		t.Fatalf("chmod: %v", err)
	}
	if err := ef.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: 5}); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	if err := ef.SetAttr(p9.SetAttrMask{ATime: true, MTime: true, ATimeNotSystemTime: true, MTimeNotSystemTime: true},
		p9.SetAttr{ATimeSeconds: 1000, ATimeNanoSeconds: 5, MTimeSeconds: 2000, MTimeNanoSeconds: 7}); err != nil {
		t.Fatalf("utimes: %v", err)
	}
	_, _, a, err = ef.GetAttr(p9.AttrMaskAll)
	if err != nil || a.Mode.Permissions() != 0o600 || a.Size != 5 || a.ATimeSeconds != 1000 || a.ATimeNanoSeconds != 5 ||
		a.MTimeSeconds != 2000 || a.MTimeNanoSeconds != 7 {
		t.Errorf("after setattr: %v %v", a, err)
	}
	before := time.Now().Unix()
	if err := ef.SetAttr(p9.SetAttrMask{ATime: true, MTime: true}, p9.SetAttr{}); err != nil {
		t.Fatalf("touch: %v", err)
	}
	_, _, a, _ = ef.GetAttr(p9.AttrMaskAll)
	if int64(a.MTimeSeconds) < before || int64(a.ATimeSeconds) < before {
		t.Errorf("now times not applied: %v", a)
	}
	if err := ef.SetAttr(p9.SetAttrMask{UID: true, GID: true}, p9.SetAttr{UID: 42, GID: 43}); err != nil {
		t.Fatalf("chown as root: %v", err)
	}
	_, _, a, _ = ef.GetAttr(p9.AttrMaskAll)
	if a.UID != 42 || a.GID != 43 {
		t.Errorf("chown: %d:%d", a.UID, a.GID)
	}
	// Open with O_TRUNC, then O_APPEND writes at the end.
	tf := walk(t, d, "e")
	if _, _, err := tf.Open(p9.WriteOnly | dotlTrunc); err != nil {
		t.Fatalf("open O_TRUNC: %v", err)
	}
	if _, _, a, _ := walk(t, d, "e").GetAttr(p9.AttrMaskAll); a.Size != 0 {
		t.Errorf("size after O_TRUNC: %d", a.Size)
	}
	tf.WriteAt([]byte("abc"), 0)
	af := walk(t, d, "e")
	if _, _, err := af.Open(p9.WriteOnly | dotlAppend); err != nil {
		t.Fatalf("open O_APPEND: %v", err)
	}
	if _, err := af.WriteAt([]byte("def"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, "e"); string(got) != "abcdef" {
		t.Errorf("append: %q", got)
	}
	// Mknod: fifo works, a device as non-root is refused (below, uid 1000).
	if _, err := d.Mknod("fifo", p9.ModeNamedPipe|0o644, 0, 0, p9.NoUID, p9.NoGID); err != nil {
		t.Errorf("mknod fifo: %v", err)
	} else if _, _, a, _ := walk(t, d, "fifo").GetAttr(p9.AttrMaskAll); !a.Mode.IsNamedPipe() {
		t.Errorf("fifo mode %o", a.Mode)
	}
	if _, err := d.Mknod("null", p9.ModeCharacterDevice|0o666, 1, 3, p9.NoUID, p9.NoGID); err != nil {
		t.Errorf("mknod chr as root: %v", err)
	} else if _, _, a, _ := walk(t, d, "null").GetAttr(p9.AttrMaskAll); a.RDev != p9.Dev(mkdev(1, 3)) {
		t.Errorf("rdev %x", a.RDev)
	}
	// Statfs.
	st, err := d.StatFS()
	if err != nil || st.Type != v9fsMagic || st.NameLength == 0 {
		t.Errorf("StatFS: %+v %v", st, err)
	}
	// Unlink and rmdir (AT_REMOVEDIR); a non-empty dir is ENOTEMPTY, not EEXIST.
	if _, err := sub.Mkdir("inner", 0o755, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "rmdir non-empty", d.UnlinkAt("dir", atRemoveDir), linux.ENOTEMPTY)
	wantErr(t, "unlink dir without AT_REMOVEDIR", sub.UnlinkAt("inner", 0), linux.EISDIR)
	if err := sub.UnlinkAt("inner", atRemoveDir); err != nil {
		t.Errorf("rmdir: %v", err)
	}
	if err := d.UnlinkAt("dir", atRemoveDir); err != nil {
		t.Errorf("rmdir dir: %v", err)
	}
	for _, n := range []string{"e", "e2", "sym", "fifo"} {
		if err := d.UnlinkAt(n, 0); err != nil {
			t.Errorf("unlink %s: %v", n, err)
		}
	}
	wantErr(t, "unlink missing", d.UnlinkAt("e", 0), linux.ENOENT)
	// The open-unlinked file still answers getattr.
	if _, _, _, err := tf.GetAttr(p9.AttrMaskAll); err != nil {
		t.Errorf("getattr of open-unlinked file: %v", err)
	}
}

func TestWalkAcrossMounts(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 0, testMsize)
	root := attach(t, cl, "")
	createFile(t, walk(t, root, "tmp2"), "f2", []byte("two"))
	qids, f, err := root.Walk([]string{"tmp1"})
	if err != nil || len(qids) != 1 || qids[0].Type != p9.TypeDir {
		t.Fatalf("walk tmp1: %v %v", qids, err)
	}
	f.Close()
	// Multi-component walk through the root file system into a mount.
	qids, f, err = root.Walk([]string{"tmp2", "f2"})
	if err != nil || len(qids) != 2 {
		t.Fatalf("walk tmp2/f2: %v %v", qids, err)
	}
	f.Close()
	// The library refuses ".." on the wire; Linux never sends it.
	if _, _, err := walk(t, root, "tmp1").Walk([]string{".."}); err == nil {
		t.Errorf("walk .. accepted by the library")
	}

	// ".." at the File level crosses mount points back.
	s := New(k, Options{})
	top := directRoot(t, s, 0)
	_, m, _, _, err := top.WalkGetAttr([]string{"tmp2"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mq := m.(*file).qid
	rq := top.qid
	if mq.Path>>inoBits == rq.Path>>inoBits {
		t.Errorf("mount root QID %x in the root file system's mount %x", mq.Path, rq.Path)
	}
	_, up, _, _, err := m.WalkGetAttr([]string{".."})
	if err != nil {
		t.Fatalf("walk ..: %v", err)
	}
	defer up.Close()
	if up.(*file).qid.Path != rq.Path {
		t.Errorf(".. of /tmp2 is %x, want the root %x", up.(*file).qid.Path, rq.Path)
	}
	_, again, _, _, err := up.WalkGetAttr([]string{"tmp2", "f2"})
	if err != nil {
		t.Fatalf("walk back down: %v", err)
	}
	again.Close()
}

// directRoot returns a File for the kernel root bound to uid, as an attach
// would make it, without a network connection.
func directRoot(t testing.TB, s *Server, uid uint32) *file {
	t.Helper()
	c, err := s.register(nil)
	if err != nil {
		t.Fatal(err)
	}
	ar, err := (&attacher{c: c}).Attach()
	if err != nil {
		t.Fatal(err)
	}
	_, f, _, _, err := ar.WalkGetAttr([]string{c.marker + fmt.Sprint(uid)})
	ar.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		s.unregister(c)
	})
	return f.(*file)
}

func TestReaddirSmallCounts(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 0, testMsize)
	d := attach(t, cl, "tmp1")
	if _, err := d.Mkdir("many", 0o755, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	dir := walk(t, d, "many")
	const n = 2000
	for i := 0; i < n; i++ {
		mk := walk(t, dir)
		f, _, _, err := mk.Create(fmt.Sprintf("file-%04d", i), p9.WriteOnly, 0o644, p9.NoUID, p9.NoGID)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		f.Close()
	}
	od := walk(t, d, "many")
	if _, _, err := od.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	list := func(count uint32) []string {
		var names []string
		seen := map[string]bool{}
		off := uint64(0)
		for calls := 0; ; calls++ {
			if calls > 10*n {
				t.Fatalf("readdir does not end")
			}
			ents, err := od.Readdir(off, count)
			if err != nil {
				t.Fatalf("Readdir(%d, %d): %v", off, count, err)
			}
			if len(ents) == 0 {
				break
			}
			size := 0
			for _, e := range ents {
				if seen[e.Name] {
					t.Fatalf("%q returned twice", e.Name)
				}
				seen[e.Name] = true
				names = append(names, e.Name)
				size += direntOverhead + len(e.Name)
				off = e.Offset
				if e.Name != "." && e.Name != ".." && uint8(e.Type) != vnodeops.DT_REG {
					t.Fatalf("%q type %d, want DT_REG", e.Name, e.Type)
				}
			}
			if size > int(count) {
				t.Fatalf("batch of %d bytes for count %d", size, count)
			}
		}
		return names
	}
	for _, count := range []uint32{40, 100, 8192} {
		names := list(count)
		if len(names) != n+2 {
			t.Fatalf("count %d: %d entries, want %d", count, len(names), n+2)
		}
		sort.Strings(names)
		if names[0] != "." || names[1] != ".." || names[2] != "file-0000" || names[n+1] != fmt.Sprintf("file-%04d", n-1) {
			t.Fatalf("count %d: names %v...", count, names[:3])
		}
	}
	// Offset 0 rewinds; a count too small for one entry is EINVAL, not
	// a premature end.
	ents, err := od.Readdir(0, 30)
	if err != nil || len(ents) != 1 || ents[0].Name != "." {
		t.Errorf("rewind: %v %v", ents, err)
	}
	_, err = od.Readdir(ents[0].Offset, direntOverhead+1)
	wantErr(t, "tiny count", err, linux.EINVAL)
}

func TestCredentials(t *testing.T) {
	k := newKernel(t)
	users := map[uint32]vnodeops.Cred{1000: {UID: 1000, GID: 100, Groups: []uint32{500}}}
	_, addr := startServer(t, k, Options{Identity: IdentityListed, Users: users}, false)
	alice, _ := dial(t, addr, 1000, testMsize)
	bob, _ := dial(t, addr, 2000, testMsize)

	ad := attach(t, alice, "tmp1")
	if _, err := ad.Mkdir("private", 0o700, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	_, _, a, err := walk(t, ad, "private").GetAttr(p9.AttrMaskAll)
	if err != nil || a.UID != 1000 || a.GID != 100 {
		t.Errorf("owner of alice's dir: %d:%d %v", a.UID, a.GID, err)
	}
	pd := walk(t, ad, "private")
	createFile(t, pd, "secret", []byte("s"))

	bd := attach(t, bob, "tmp1")
	if _, _, err := bd.Walk([]string{"private", "secret"}); err == nil {
		t.Errorf("bob walked into alice's 0700 dir")
	} else {
		wantErr(t, "bob walk", err, linux.EACCES)
	}
	bp := walk(t, bd, "private")
	wantErr(t, "bob mkdir", func() error { _, err := bp.Mkdir("x", 0o755, p9.NoUID, p9.NoGID); return err }(), linux.EACCES)
	_, _, err = bp.Open(p9.ReadOnly)
	wantErr(t, "bob opendir", err, linux.EACCES)
	// Bob's files are bob's (GID = nobody's without a Users entry).
	bf := createFile(t, bd, "bobs", nil)
	_, _, a, _ = bf.GetAttr(p9.AttrMaskAll)
	if a.UID != 2000 || a.GID != NobodyGID {
		t.Errorf("owner of bob's file: %d:%d", a.UID, a.GID)
	}
	// Bob cannot chmod alice's dir: EPERM reaches the client as EPERM.
	wantErr(t, "bob chmod", bp.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o777}), linux.EPERM)
	wantErr(t, "bob mknod chr", func() error {
		_, err := bd.Mknod("null", p9.ModeCharacterDevice|0o666, 1, 3, p9.NoUID, p9.NoGID)
		return err
	}(), linux.EPERM)

	// The gid Linux passes on create owns the file; a gid that is not one
	// of the user's groups does not grant group access to the directory.
	if _, err := pd.Mkdir("g500", 0o755, p9.NoUID, 500); err != nil {
		t.Fatal(err)
	}
	_, _, a, _ = walk(t, pd, "g500").GetAttr(p9.AttrMaskAll)
	if a.GID != 500 {
		t.Errorf("gid of a create with gid 500: %d", a.GID)
	}
	if _, err := ad.Mkdir("shared", 0o775, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	sh := walk(t, ad, "shared") // owned 1000:100, group-writable
	bs := walk(t, bd, "shared")
	wantErr(t, "bob claiming gid 100", func() error { _, err := bs.Mkdir("x", 0o755, p9.NoUID, 100); return err }(), linux.EACCES)
	if _, err := sh.Mkdir("ok", 0o755, p9.NoUID, 100); err != nil {
		t.Errorf("alice in her group: %v", err)
	}

	// One connection, two attaches with different uids (access=user).
	cl, uc := dial(t, addr, 1000, testMsize)
	a1 := attach(t, cl, "tmp1")
	uc.uid.Store(2000)
	a2 := attach(t, cl, "tmp1")
	if _, _, err := a1.Walk([]string{"private", "secret"}); err != nil {
		t.Errorf("uid 1000 attach: %v", err)
	}
	if _, _, err := a2.Walk([]string{"private", "secret"}); err == nil {
		t.Errorf("uid 2000 attach on the same connection walked into the 0700 dir")
	}
}

func TestAttachUIDFromUname(t *testing.T) {
	for _, tc := range []struct {
		uname  string
		nuname uint32
		want   uint32
	}{
		{"", 1000, 1000},
		{"bob", 0, 0},
		{"1234", noUID, 1234},
		{"bob", noUID, nobody},
		{"", noUID, nobody},
		{"-1", noUID, nobody},
		{"4294967295", noUID, nobody},
	} {
		if got := attachUID(tc.uname, tc.nuname); got != tc.want {
			t.Errorf("attachUID(%q, %d) = %d, want %d", tc.uname, tc.nuname, got, tc.want)
		}
	}
}

func TestSquash(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{Squash: &vnodeops.Cred{UID: 3000, GID: 3000}}, false)
	cl, _ := dial(t, addr, 0, testMsize) // claims root
	d := attach(t, cl, "tmp1")
	if _, err := d.Mkdir("sq", 0o755, p9.NoUID, 0); err != nil {
		t.Fatal(err)
	}
	_, _, a, _ := walk(t, d, "sq").GetAttr(p9.AttrMaskAll)
	if a.UID != 3000 || a.GID != 3000 {
		t.Errorf("squashed owner %d:%d, want 3000:3000", a.UID, a.GID)
	}
	// The root file system's root is 0755 root: no create there.
	r := attach(t, cl, "")
	wantErr(t, "squashed mkdir in /", func() error { _, err := r.Mkdir("x", 0o755, p9.NoUID, p9.NoGID); return err }(), linux.EACCES)
	wantErr(t, "squashed chown", walk(t, d, "sq").SetAttr(p9.SetAttrMask{UID: true}, p9.SetAttr{UID: 0}), linux.EPERM)
}

func TestReadOnly(t *testing.T) {
	k := newKernel(t)
	t.Run("mount", func(t *testing.T) {
		_, addr := startServer(t, k, Options{}, false)
		cl, _ := dial(t, addr, 0, testMsize)
		d := attach(t, cl, "ro")
		wantErr(t, "create on ro mount", func() error {
			_, _, _, err := walk(t, d).Create("x", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
			return err
		}(), linux.EROFS)
		wantErr(t, "mkdir on ro mount", func() error { _, err := d.Mkdir("x", 0o755, p9.NoUID, p9.NoGID); return err }(), linux.EROFS)
		wantErr(t, "chmod on ro mount", d.SetAttr(p9.SetAttrMask{Permissions: true}, p9.SetAttr{Permissions: 0o700}), linux.EROFS)
		st, err := d.StatFS()
		if err != nil {
			t.Errorf("statfs: %v", err)
		}
		_ = st
	})
	t.Run("server", func(t *testing.T) {
		// Make a file first through a writable server.
		_, waddr := startServer(t, k, Options{}, false)
		wc, _ := dial(t, waddr, 0, testMsize)
		createFile(t, attach(t, wc, "tmp2"), "keep", []byte("data"))

		_, addr := startServer(t, k, Options{ReadOnly: true}, false)
		cl, _ := dial(t, addr, 0, testMsize)
		d := attach(t, cl, "tmp2")
		if got := readAll(t, d, "keep"); string(got) != "data" {
			t.Errorf("read on ro server: %q", got)
		}
		wantErr(t, "create", func() error {
			_, _, _, err := walk(t, d).Create("x", p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID)
			return err
		}(), linux.EROFS)
		_, _, err := walk(t, d, "keep").Open(p9.ReadWrite)
		wantErr(t, "open rw", err, linux.EROFS)
		_, _, err = walk(t, d, "keep").Open(p9.ReadOnly | dotlTrunc)
		wantErr(t, "open trunc", err, linux.EROFS)
		wantErr(t, "setattr", walk(t, d, "keep").SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{}), linux.EROFS)
		wantErr(t, "unlink", d.UnlinkAt("keep", 0), linux.EROFS)
		wantErr(t, "rename", d.RenameAt("keep", d, "k2"), linux.EROFS)
		wantErr(t, "symlink", func() error { _, err := d.Symlink("a", "b", p9.NoUID, p9.NoGID); return err }(), linux.EROFS)
		wantErr(t, "link", d.Link(walk(t, d, "keep"), "k3"), linux.EROFS)
	})
}

func TestConnectionLimit(t *testing.T) {
	k := newKernel(t)
	s, addr := startServer(t, k, Options{MaxConnections: 1}, false)
	cl, _ := dial(t, addr, 0, testMsize)
	d := attach(t, cl, "tmp1")

	nc, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := p9.NewClient(nc, p9.WithMessageSize(testMsize)); err == nil {
		t.Errorf("second connection was served")
	}
	// The first keeps working.
	createFile(t, d, "still", []byte("ok"))
	// Once it is gone another is admitted.
	cl.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connection not released")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cl2, _ := dial(t, addr, 0, testMsize)
	if got := readAll(t, attach(t, cl2, "tmp1"), "still"); string(got) != "ok" {
		t.Errorf("got %q", got)
	}
}

func TestFidLimit(t *testing.T) {
	k := newKernel(t)
	const max = 8
	_, addr := startServer(t, k, Options{MaxFidsPerConn: max}, false)
	cl, _ := dial(t, addr, 0, testMsize)
	other, _ := dial(t, addr, 0, testMsize)
	d := attach(t, cl, "tmp1") // one fid (and two exempt ancestors)
	var files []p9.File
	var err error
	for i := 0; i < 2*max; i++ {
		var f p9.File
		_, f, err = d.Walk(nil)
		if err != nil {
			break
		}
		files = append(files, f)
	}
	wantErr(t, "walk past the fid limit", err, linux.EMFILE)
	if len(files) != max-1 {
		t.Fatalf("%d clones before EMFILE", len(files))
	}
	// Another connection is unaffected.
	od := attach(t, other, "tmp1")
	for i := 0; i < max-1; i++ {
		walk(t, od)
	}
	// Clunking frees a slot.
	files[0].Close()
	f, err := walk2(d)
	if err != nil {
		t.Errorf("walk after clunk: %v", err)
	} else {
		f.Close()
	}
	for _, f := range files[1:] {
		f.Close()
	}
}

func walk2(d p9.File) (p9.File, error) {
	_, f, err := d.Walk(nil)
	return f, err
}

func TestMalformedAndOversized(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{Msize: 8192}, false)
	good, _ := dial(t, addr, 0, 8192)
	gd := attach(t, good, "tmp1")

	// msize is clamped.
	nc, msize := rawVersion(t, addr, 1<<20)
	if msize != 8192 {
		t.Errorf("negotiated msize %d, want 8192", msize)
	}
	// A frame bigger than msize closes that connection.
	nc.Write(rawFrame(msgTread, 1, make([]byte, 9000)))
	expectClosed(t, nc)

	// A frame shorter than its header.
	nc, _ = rawVersion(t, addr, 8192)
	nc.Write([]byte{3, 0, 0, 0, 110, 0, 0})
	expectClosed(t, nc)

	// A truncated Tattach.
	nc, _ = rawVersion(t, addr, 8192)
	nc.Write(rawFrame(msgTattach, 1, le32(1), le32(noUID), []byte{200, 0}))
	expectClosed(t, nc)

	// A message before Tversion.
	nc, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(rawFrame(msgTattach, 1, le32(1), le32(noUID), str9(""), str9(""), le32(0)))
	expectClosed(t, nc)

	// An unknown message type is answered with an error; the connection
	// stays.
	nc, _ = rawVersion(t, addr, 8192)
	nc.Write(rawFrame(250, 7, []byte("junk")))
	typ, body, err := readReply(nc)
	if err != nil || typ != 7 || binary.LittleEndian.Uint32(body) == 0 {
		t.Errorf("unknown type: reply %d %v", typ, err)
	}

	// The well-behaved client is unaffected.
	createFile(t, gd, "fine", []byte("yes"))
	if got := readAll(t, gd, "fine"); string(got) != "yes" {
		t.Errorf("got %q", got)
	}
}

func TestReadCountClamped(t *testing.T) {
	// A client that believes msize is larger than the server's clamp asks
	// for more than fits: the server answers a short read, not a fault.
	k := newKernel(t)
	_, addr := startServer(t, k, Options{Msize: 8192}, false)
	small, _ := dial(t, addr, 0, 8192)
	createFile(t, attach(t, small, "tmp1"), "big", bytes.Repeat([]byte{7}, 30000))
	big, _ := dial(t, addr, 0, testMsize)
	f := walk(t, attach(t, big, "tmp1"), "big")
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 20000)
	n, err := f.ReadAt(buf, 0)
	if err != nil || n == 0 || n > 8192-replyOverhead {
		t.Errorf("ReadAt: %d, %v", n, err)
	}
}

func TestMarkerCannotBeForged(t *testing.T) {
	k := newKernel(t)
	s, addr := startServer(t, k, Options{}, false)
	// Alice makes a private directory.
	alice, _ := dial(t, addr, 1000, testMsize)
	ad := attach(t, alice, "tmp1")
	if _, err := ad.Mkdir("private", 0o700, p9.NoUID, p9.NoGID); err != nil {
		t.Fatal(err)
	}
	// Mallory (uid 2000) puts marker-like names claiming uid 0 in aname.
	mallory, _ := dial(t, addr, 2000, testMsize)
	for _, aname := range []string{
		"\x00rump9p-00000000000000000000000000000000-0/tmp1/private",
		"\x00rump9p-00000000000000000000000000000000-0",
		"/\x00rump9p-x-0/tmp1",
	} {
		if f, err := mallory.Attach(aname); err == nil {
			f.Close()
			t.Errorf("attach %q succeeded", aname)
		}
	}
	// Even the real marker of another connection is only a name below
	// the bound root.
	s.mu.Lock()
	var marker string
	for c := range s.conns {
		marker = c.marker
		break
	}
	s.mu.Unlock()
	if f, err := mallory.Attach(marker + "0/tmp1/private"); err == nil {
		f.Close()
		t.Errorf("attach with a real marker succeeded")
	}
	md := attach(t, mallory, "tmp1")
	if _, _, err := md.Walk([]string{marker + "0"}); err == nil {
		t.Errorf("walk to a marker name succeeded")
	}
	if _, _, err := md.Walk([]string{"private"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := md.Walk([]string{"private", "x"}); !isErr(err, linux.EACCES) {
		t.Errorf("mallory into alice's dir: %v, want EACCES", err)
	}

	// At the File level: the unbound root refuses every other name, and a
	// bound File treats the marker as a plain name.
	top := directRoot(t, s, 2000)
	c := top.c
	ar, _ := (&attacher{c: c}).Attach()
	defer ar.Close()
	for _, name := range []string{"tmp1", "", marker + "0", c.marker + "x", c.marker + "99999999999"} {
		if _, f, _, _, err := ar.WalkGetAttr([]string{name}); err == nil {
			f.Close()
			t.Errorf("unbound root walked %q", name)
		}
	}
	if _, _, err := ar.Open(p9.ReadOnly); err == nil {
		t.Errorf("unbound root opened")
	}
	if _, f, _, _, err := top.WalkGetAttr([]string{c.marker + "0"}); err == nil {
		f.Close()
		t.Errorf("bound root walked its own marker")
	}
}

func isErr(err error, want linux.Errno) bool {
	e, ok := err.(linux.Errno)
	return ok && e == want
}

func TestQIDs(t *testing.T) {
	k := newKernel(t)
	_, addr := startServer(t, k, Options{}, false)
	cl, _ := dial(t, addr, 0, testMsize)
	root := attach(t, cl, "")
	var qs []p9.QID
	for _, m := range []string{"tmp1", "tmp2"} {
		d := walk(t, root, m)
		createFile(t, d, "same", nil)
		q, _, _, err := walk(t, d, "same").GetAttr(p9.AttrMaskAll)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	if qs[0].Path == qs[1].Path {
		t.Errorf("two mounts share QID path %x", qs[0].Path)
	}
	if qs[0].Path&inoMask != qs[1].Path&inoMask {
		t.Logf("inode numbers differ (%x, %x); uniqueness still checked", qs[0].Path&inoMask, qs[1].Path&inoMask)
	}
	// Version: non-zero, changes after a write, stable without one.
	d := walk(t, root, "tmp1")
	f := createFile(t, d, "v", []byte("1"))
	q1, _, _, _ := f.GetAttr(p9.AttrMaskAll)
	q1b, _, _, _ := walk(t, d, "v").GetAttr(p9.AttrMaskAll)
	if q1.Version == 0 || q1.Version != q1b.Version {
		t.Errorf("versions %d, %d", q1.Version, q1b.Version)
	}
	time.Sleep(2 * time.Millisecond)
	f.WriteAt([]byte("22"), 0)
	q2, _, _, _ := f.GetAttr(p9.AttrMaskAll)
	if q2.Version == 0 || q2.Version == q1.Version {
		t.Errorf("version after write %d (before %d)", q2.Version, q1.Version)
	}
	if q2.Type != p9.TypeRegular {
		t.Errorf("type %v", q2.Type)
	}
	// Unit checks of the path layout and the fold.
	s := New(k, Options{})
	if p := s.qidPath(3, 5); p != 3<<48|5 {
		t.Errorf("qidPath(3,5) = %x", p)
	}
	if a, b := s.qidPath(1, 1<<50), s.qidPath(2, 1<<50); a == b || a>>48 != 1 {
		t.Errorf("folded paths %x %x", a, b)
	}
	for _, a := range []vnodeops.Attr{{}, {Mtime: 1}, {Size: 1}} {
		if qidVersion(&a) == 0 {
			t.Errorf("zero version for %+v", a)
		}
	}
}

func TestShutdown(t *testing.T) {
	k := newKernel(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(k, Options{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	cl, _ := dial(t, l.Addr(), 0, testMsize)
	d := attach(t, cl, "tmp1")
	createFile(t, d, "x", []byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, _, err := d.Walk([]string{"x"}); err == nil {
		t.Errorf("request served after Shutdown")
	}
	if err := s.ServeConn(bytes.NewReader(nil), io.Discard); err != ErrServerClosed {
		t.Errorf("ServeConn after Shutdown: %v", err)
	}
}

// TestNoReferenceLeaks: once a client is gone, no vnode of the mount it
// used is referenced, so the mount can be unmounted without force.
func TestNoReferenceLeaks(t *testing.T) {
	k := newKernel(t)
	s, addr := startServer(t, k, Options{MaxFidsPerConn: 12}, false)
	func() {
		cl, _ := dial(t, addr, 1000, testMsize)
		d, err := cl.Attach("tmp1")
		if err != nil {
			t.Fatal(err)
		}
		f := createFile(t, d, "a", []byte("data"))
		f.Close()
		d.Mkdir("dir", 0o755, p9.NoUID, p9.NoGID)
		d.Symlink("a", "s", p9.NoUID, p9.NoGID)
		d.Walk([]string{"missing"})
		d.Walk([]string{"dir", "missing"})
		var held []p9.File
		for i := 0; i < 20; i++ { // up to EMFILE
			if _, f, err := d.Walk([]string{"a"}); err == nil {
				held = append(held, f)
			}
		}
		if len(held) > 0 {
			held[0].Open(p9.ReadWrite)
		}
		od, _ := cl.Attach("tmp1/dir")
		_ = od
		cl.Close() // without clunking anything
	}()
	ls := newRawSession(t, addr, "tmp1")
	ls.open(2, "a")
	ls.lock(2, p9.WriteLock, 0, 0, 1)
	ls.Try(30, le32(1), le32(9), str9("")) // fails: EINVAL, no fid
	ls.Nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connections not released")
		}
		sleepMs(10)
	}
	if err := k.Unmount("/tmp1", false); err != nil {
		t.Errorf("Unmount after the clients left: %v", err)
	}
	if len(s.locks.m) != 0 {
		t.Errorf("locks left: %v", s.locks.m)
	}
}
