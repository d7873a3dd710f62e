package p2k_test

import (
	"bytes"
	"errors"
	"github.com/rump9p/rump9p/tests/hosttools"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rump9p/rump9p/p2k"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
	_ "github.com/rump9p/rump9p/vnodeops/tmpfs"
)

// needFUSE fails the test where FUSE cannot be mounted.
func needFUSE(t *testing.T) {
	t.Helper()
	hosttools.NeedFUSE(t)
}

type fixture struct {
	k   *rumpcore.Kernel
	srv *p2k.Server
	dir string
	// close unmounts, checks for leaked references and shuts the kernel
	// down, once; cleanup calls it if the test did not.
	close func()
}

// mountTmpfs boots a kernel with a tmpfs at /t and mounts /t at a
// temporary directory. Cleanup unmounts, checks that no vnode reference
// leaked (a plain unmount of /t succeeds) and shuts the kernel down.
func mountTmpfs(t *testing.T, ro bool, opts p2k.Options) *fixture {
	t.Helper()
	return mountSpec(t, rumpcore.MountSpec{Type: "tmpfs", ReadOnly: ro, Options: map[string]string{"size": "16m"}}, opts)
}

// mountSpec is mountTmpfs for any file system spec.
func mountSpec(t *testing.T, spec rumpcore.MountSpec, opts p2k.Options) *fixture {
	t.Helper()
	needFUSE(t)
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Mount("/t", spec); err != nil {
		k.Shutdown()
		t.Fatal(err)
	}
	top := k.Root()
	root, err := top.Lookup(vnodeops.Root, "t")
	top.Release()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Other users reach the mount point (TempDir makes 0700 parents).
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	srv, err := p2k.Mount(root, dir, opts)
	if err != nil {
		k.Shutdown()
		t.Fatalf("p2k.Mount: %v", err)
	}
	f := &fixture{k: k, srv: srv, dir: dir}
	f.close = sync.OnceFunc(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
			srv.UnmountLazy()
			srv.Wait()
		}
		if err := k.Unmount("/t", false); err != nil {
			t.Errorf("kernel unmount after FUSE unmount: %v (a vnode reference leaked)", err)
		}
		if err := k.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	t.Cleanup(f.close)
	return f
}

func (f *fixture) path(rel string) string { return filepath.Join(f.dir, rel) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErrno(t *testing.T, err error, want syscall.Errno, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestFilesAndDirectories(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{})
	data := bytes.Repeat([]byte("rump9p "), 10000)
	must(t, os.WriteFile(f.path("a"), data, 0o644))
	got, err := os.ReadFile(f.path("a"))
	must(t, err)
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
	must(t, os.Truncate(f.path("a"), 7))
	fi, err := os.Stat(f.path("a"))
	must(t, err)
	if fi.Size() != 7 || fi.Mode().Perm() != 0o644 {
		t.Fatalf("after truncate: size %d mode %v", fi.Size(), fi.Mode())
	}
	must(t, os.Chmod(f.path("a"), 0o600))
	must(t, os.Chown(f.path("a"), 1234, 5678))
	mt := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	must(t, os.Chtimes(f.path("a"), mt, mt))
	var st syscall.Stat_t
	must(t, syscall.Stat(f.path("a"), &st))
	if st.Mode&0o7777 != 0o600 || st.Uid != 1234 || st.Gid != 5678 || time.Unix(st.Mtim.Unix()).UTC() != mt {
		t.Fatalf("stat after chmod/chown/utimes: mode %o uid %d gid %d mtime %v", st.Mode, st.Uid, st.Gid, time.Unix(st.Mtim.Unix()))
	}

	must(t, os.MkdirAll(f.path("d/e"), 0o755))
	must(t, os.Symlink("../a", f.path("d/link")))
	if tg, err := os.Readlink(f.path("d/link")); err != nil || tg != "../a" {
		t.Fatalf("readlink: %q %v", tg, err)
	}
	must(t, os.Link(f.path("a"), f.path("d/hard")))
	must(t, syscall.Stat(f.path("d/hard"), &st))
	if st.Nlink != 2 {
		t.Fatalf("nlink after link: %d", st.Nlink)
	}
	must(t, syscall.Mkfifo(f.path("d/fifo"), 0o644))
	ents, err := os.ReadDir(f.path("d"))
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"e", "fifo", "hard", "link"}; !slices.Equal(names, want) {
		t.Fatalf("readdir: %v, want %v", names, want)
	}
	wantErrno(t, syscall.Rmdir(f.path("d")), syscall.ENOTEMPTY, "rmdir of a non-empty directory")
	must(t, os.Rename(f.path("d/hard"), f.path("d/e/moved")))
	must(t, os.Remove(f.path("d/e/moved")))
	must(t, os.Remove(f.path("d/fifo")))
	must(t, os.Remove(f.path("d/link")))
	must(t, os.Remove(f.path("d/e")))
	must(t, os.Remove(f.path("d")))
	wantErrno(t, syscall.Unlink(f.path("nope")), syscall.ENOENT, "unlink of a missing file")
	if _, err := os.Stat(f.path("d")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after rmdir: %v", err)
	}

	var sfs syscall.Statfs_t
	must(t, syscall.Statfs(f.dir, &sfs))
	if sfs.Blocks == 0 || sfs.Namelen != 255 {
		t.Fatalf("statfs: %+v", sfs)
	}
	fd, err := syscall.Open(f.path("a"), syscall.O_RDWR, 0)
	must(t, err)
	must(t, syscall.Fsync(fd))
	must(t, syscall.Fdatasync(fd))
	syscall.Close(fd)
	dfd, err := syscall.Open(f.dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	must(t, err)
	must(t, syscall.Fsync(dfd))
	syscall.Close(dfd)
}

// TestReaddirLarge lists a directory larger than one READDIRPLUS buffer
// and checks that every name comes once and inode numbers match stat.
func TestReaddirLarge(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{})
	const n = 600
	for i := range n {
		must(t, os.WriteFile(f.path(strings.Repeat("x", 40)+"-"+itoa(i)), nil, 0o644))
	}
	ents, err := os.ReadDir(f.dir)
	must(t, err)
	if len(ents) != n {
		t.Fatalf("readdir: %d entries, want %d", len(ents), n)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if seen[e.Name()] {
			t.Fatalf("%s listed twice", e.Name())
		}
		seen[e.Name()] = true
	}
	// Plain getdents (d_ino) against stat.
	fd, err := syscall.Open(f.dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	must(t, err)
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	nb, err := syscall.ReadDirent(fd, buf)
	must(t, err)
	d := (*syscall.Dirent)(unsafe.Pointer(&buf[0]))
	_ = nb
	var st syscall.Stat_t
	must(t, syscall.Stat(f.dir, &st))
	if d.Ino != st.Ino {
		t.Fatalf("d_ino of . = %d, stat says %d", d.Ino, st.Ino)
	}
}

func itoa(i int) string {
	return string([]byte{byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})
}

func TestRenameFlags(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{})
	must(t, os.WriteFile(f.path("a"), []byte("a"), 0o644))
	must(t, os.WriteFile(f.path("b"), []byte("b"), 0o644))
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, f.path("a"), unix.AT_FDCWD, f.path("b"), unix.RENAME_NOREPLACE),
		syscall.EEXIST, "RENAME_NOREPLACE onto an existing file")
	must(t, unix.Renameat2(unix.AT_FDCWD, f.path("a"), unix.AT_FDCWD, f.path("c"), unix.RENAME_NOREPLACE))
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, f.path("b"), unix.AT_FDCWD, f.path("c"), unix.RENAME_EXCHANGE),
		syscall.EINVAL, "RENAME_EXCHANGE")
	if b, _ := os.ReadFile(f.path("c")); string(b) != "a" {
		t.Fatalf("c holds %q after the refused exchange", b)
	}
}

// asUser runs a shell command as uid 1000 with gid 1000 and the given
// supplementary groups and returns its error.
func asUser(t *testing.T, groups []uint32, script string) error {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000, Groups: groups}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("%s: %v: %s", script, err, out)
	}
	return err
}

func TestCallerCredentials(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{AllowOther: true})
	must(t, os.Chmod(f.dir, 0o755))
	must(t, os.Mkdir(f.path("root-only"), 0o700))
	must(t, os.Mkdir(f.path("group"), 0o770))
	must(t, os.Chown(f.path("group"), 0, 600))
	must(t, os.Chmod(f.path("group"), 0o770)) // past the umask
	must(t, os.Mkdir(f.path("open"), 0o777))
	must(t, os.Chmod(f.path("open"), 0o777))

	if err := asUser(t, nil, "ls "+f.path("root-only")); err == nil {
		t.Fatal("uid 1000 listed a 0700 root directory")
	}
	if err := asUser(t, nil, "echo x > "+f.path("group/f")); err == nil {
		t.Fatal("uid 1000 outside group 600 wrote into a 0770 directory of group 600")
	}
	if err := asUser(t, []uint32{600}, "echo x > "+f.path("group/f")); err != nil {
		t.Fatalf("uid 1000 in group 600 could not write into its group's directory: %v", err)
	}
	must(t, asUser(t, nil, "echo y > "+f.path("open/mine")))
	var st syscall.Stat_t
	must(t, syscall.Stat(f.path("open/mine"), &st))
	if st.Uid != 1000 || st.Gid != 1000 {
		t.Fatalf("file made by uid 1000: owner %d:%d", st.Uid, st.Gid)
	}
	if err := asUser(t, nil, "chown 0 "+f.path("open/mine")); err == nil {
		t.Fatal("uid 1000 gave its file away")
	}
	if err := asUser(t, nil, "test -w "+f.path("root-only")); err == nil {
		t.Fatal("access(W_OK) granted to uid 1000 on a 0700 root directory")
	}
}

func TestDefaultPermissions(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{AllowOther: true, DefaultPermissions: true})
	must(t, os.Chmod(f.dir, 0o755))
	must(t, os.WriteFile(f.path("secret"), []byte("s"), 0o600))
	if err := asUser(t, nil, "cat "+f.path("secret")); err == nil {
		t.Fatal("uid 1000 read a 0600 root file with default_permissions")
	}
}

func TestReadOnly(t *testing.T) {
	f := mountTmpfs(t, true, p2k.Options{AttrTimeout: time.Second, EntryTimeout: time.Second})
	wantErrno(t, os.WriteFile(f.path("x"), nil, 0o644), syscall.EROFS, "create on a read-only mount")
	wantErrno(t, syscall.Mkdir(f.path("d"), 0o755), syscall.EROFS, "mkdir on a read-only mount")
}

func TestDirectIOAndMmap(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{})
	// O_DIRECT: an aligned buffer, written and read past the page cache.
	raw := make([]byte, 8192+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&raw[0]))%4096)
	buf := raw[off : off+8192]
	copy(buf, bytes.Repeat([]byte("D"), len(buf)))
	fd, err := syscall.Open(f.path("direct"), syscall.O_CREAT|syscall.O_RDWR|syscall.O_DIRECT, 0o644)
	must(t, err)
	if n, err := syscall.Pwrite(fd, buf, 0); err != nil || n != len(buf) {
		t.Fatalf("O_DIRECT pwrite: %d %v", n, err)
	}
	clear(buf)
	if n, err := syscall.Pread(fd, buf, 0); err != nil || n != len(buf) || buf[100] != 'D' {
		t.Fatalf("O_DIRECT pread: %d %v", n, err)
	}
	syscall.Close(fd)

	// mmap, shared and writable, through the page cache. A page fault on
	// the mapping is not a system call to the Go runtime: should a
	// collection stop the world while this process's FUSE server must
	// answer the fault, both would wait for ever. So the mapping is made
	// by another process (this test binary, run as mmapHelper).
	must(t, os.WriteFile(f.path("m"), make([]byte, 8192), 0o644))
	cmd := exec.Command(os.Args[0], "-test.run=^TestMmapHelper$")
	cmd.Env = append(os.Environ(), mmapHelperEnv+"="+f.path("m"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mmap in a child process: %v\n%s", err, out)
	}
	got, err := os.ReadFile(f.path("m"))
	must(t, err)
	if string(got[5000:5006]) != "mapped" {
		t.Fatalf("mmap write not in the file: %q", got[5000:5006])
	}
}

// mmapHelperEnv names the file TestMmapHelper maps.
const mmapHelperEnv = "P2K_TEST_MMAP_FILE"

// TestMmapHelper is run by TestDirectIOAndMmap as a child process: it
// writes "mapped" at offset 5000 of the file through a shared writable
// mapping and msyncs it. Run alone it has nothing to do.
func TestMmapHelper(t *testing.T) {
	path := os.Getenv(mmapHelperEnv)
	if path == "" {
		return
	}
	fd, err := syscall.Open(path, syscall.O_RDWR, 0)
	must(t, err)
	defer syscall.Close(fd)
	mem, err := syscall.Mmap(fd, 0, 8192, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	must(t, err)
	copy(mem[5000:], "mapped")
	must(t, unix.Msync(mem, unix.MS_SYNC))
	must(t, syscall.Munmap(mem))
}

func TestAppend(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fl, err := os.OpenFile(f.path("log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			defer fl.Close()
			for range 50 {
				fl.Write(bytes.Repeat([]byte{byte('a' + i)}, 100))
			}
		}()
	}
	wg.Wait()
	got, err := os.ReadFile(f.path("log"))
	must(t, err)
	if len(got) != 4*50*100 {
		t.Fatalf("appended %d bytes, want %d", len(got), 4*50*100)
	}
}

func TestLocks(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{})
	must(t, os.WriteFile(f.path("l"), make([]byte, 100), 0o644))
	a, err := os.OpenFile(f.path("l"), os.O_RDWR, 0)
	must(t, err)
	defer a.Close()
	b, err := os.OpenFile(f.path("l"), os.O_RDWR, 0)
	must(t, err)
	defer b.Close()

	// Open file description locks: two owners in one process.
	wr := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 10, Len: 20}
	must(t, unix.FcntlFlock(a.Fd(), unix.F_OFD_SETLK, &wr))
	try := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 25, Len: 10}
	wantErrno(t, unix.FcntlFlock(b.Fd(), unix.F_OFD_SETLK, &try), syscall.EAGAIN, "read lock over a write lock")
	q := try
	must(t, unix.FcntlFlock(b.Fd(), unix.F_OFD_GETLK, &q))
	if q.Type != unix.F_WRLCK || q.Start != 10 || q.Len != 20 {
		t.Fatalf("F_GETLK: %+v", q)
	}
	ok := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: 30, Len: 10}
	must(t, unix.FcntlFlock(b.Fd(), unix.F_OFD_SETLK, &ok))

	// A blocking lock waits for the holder to unlock.
	got := make(chan error, 1)
	go func() {
		w := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
		got <- unix.FcntlFlock(b.Fd(), unix.F_OFD_SETLKW, &w)
	}()
	select {
	case err := <-got:
		t.Fatalf("F_SETLKW returned %v while a conflicting lock was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	un := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: 0}
	must(t, unix.FcntlFlock(a.Fd(), unix.F_OFD_SETLK, &un))
	select {
	case err := <-got:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("F_SETLKW still waiting after the unlock")
	}

	// flock(2) is a separate lock space, released at close.
	c, err := os.Open(f.path("l"))
	must(t, err)
	must(t, syscall.Flock(int(c.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	d, err := os.Open(f.path("l"))
	must(t, err)
	defer d.Close()
	wantErrno(t, syscall.Flock(int(d.Fd()), syscall.LOCK_SH|syscall.LOCK_NB), syscall.EWOULDBLOCK, "flock over flock")
	c.Close()
	// FUSE sends the RELEASE that drops a flock after close(2) returns,
	// so the lock goes a moment later: wait for it, within bounds.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Flock(int(d.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			t.Fatalf("flock after the holder closed its file: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Another process: a shared flock is granted, an exclusive one not.
	if out, err := exec.Command("flock", "-s", "-n", f.path("l"), "true").CombinedOutput(); err != nil {
		t.Fatalf("flock -s -n with a shared lock held: %v %s", err, out)
	}
	if err := exec.Command("flock", "-n", f.path("l"), "true").Run(); err == nil {
		t.Fatal("flock -n (exclusive) granted with a shared lock held")
	}
}

func TestUnlinkedOpenFile(t *testing.T) {
	f := mountTmpfs(t, false, p2k.Options{})
	fl, err := os.Create(f.path("gone"))
	must(t, err)
	_, err = fl.WriteString("still here")
	must(t, err)
	must(t, os.Remove(f.path("gone")))
	buf := make([]byte, 10)
	if _, err := fl.ReadAt(buf, 0); err != nil || string(buf) != "still here" {
		t.Fatalf("read of an unlinked open file: %q %v", buf, err)
	}
	fl.Close()
}

func TestMountPointErrors(t *testing.T) {
	needFUSE(t)
	k, err := rumpcore.Init(rumpcore.Options{})
	must(t, err)
	defer k.Shutdown()
	missing := filepath.Join(t.TempDir(), "missing")
	_, err = p2k.Mount(k.Root(), missing, p2k.Options{})
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("mount on a missing directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(file, nil, 0o644))
	_, err = p2k.Mount(k.Root(), file, p2k.Options{})
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("mount on a file: %v", err)
	}
}

// TestBusyUnmount: Unmount fails with the mount point named while a file
// is open, and a lazy unmount ends the file system once it is closed.
func TestBusyUnmount(t *testing.T) {
	needFUSE(t)
	k, err := rumpcore.Init(rumpcore.Options{})
	must(t, err)
	defer k.Shutdown()
	dir := t.TempDir()
	srv, err := p2k.Mount(k.Root(), dir, p2k.Options{})
	must(t, err)
	fl, err := os.Create(filepath.Join(dir, "open"))
	must(t, err)
	err = srv.Unmount()
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Unmount with an open file: %v", err)
	}
	must(t, srv.UnmountLazy())
	if _, err := fl.WriteString("after detach"); err != nil {
		t.Fatalf("write after lazy unmount: %v", err)
	}
	fl.Close()
	select {
	case <-srv.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("file system still served after the last file closed")
	}
}
