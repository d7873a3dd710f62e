package conformance

import (
	"bytes"
	"sync"
	"syscall"
)

func mountCases() []testCase {
	return []testCase{
		{name: "NestedMount", fn: testNestedMount},
		{name: "CrossMountEXDEV", fn: testCrossMount},
		{name: "UnmountBusy", fn: testUnmountBusy},
		{name: "UnmountForce", fn: testUnmountForce},
		{name: "UnmountForceDuringIO", fn: testUnmountForceDuringIO},
	}
}

func testNestedMount(e *env) {
	e.writeFile("outer-marker", []byte("outer"), 0o644)
	e.mkdir("inner", 0o755)
	e.writeFile("inner/hidden", []byte("covered"), 0o644)
	e.mount(e.path("inner"), false)
	// The inner file system is fresh: the covered file is hidden.
	if e.exists("inner/hidden") {
		e.fatalf("a file of the covered directory shows through the mount")
	}
	e.writeFile("inner/inner-marker", []byte("inner"), 0o644)
	// ".." of the inner root is the outer directory holding the mount point.
	e.checkContent("inner/../outer-marker", []byte("outer"))
	if got, want := e.stat("inner/..").Ino, e.stat("").Ino; got != want {
		e.fatalf("inner/.. has inode %d, want the outer root's %d", got, want)
	}
	e.ok(e.p.Chdir(e.path("inner")), "chdir into the inner mount")
	fd, err := e.p.Open("../outer-marker", 0, 0)
	e.ok(err, "open ../outer-marker from the inner root")
	e.ok(e.p.Close(fd), "close")
	fd, err = e.p.Open("inner-marker", 0, 0)
	e.ok(err, "open a file relative to the inner root")
	e.ok(e.p.Close(fd), "close")
	e.ok(e.p.Chdir("/"), "chdir /")
	// Both are listed where they should be.
	if got := userNames(e.readdir("", 20)); !equalStrings(got, []string{"inner", "outer-marker"}) {
		e.fatalf("outer root lists %q", got)
	}
	if got := userNames(e.readdir("inner", 20)); !equalStrings(got, []string{"inner-marker"}) {
		e.fatalf("inner root lists %q", got)
	}
	// Statvfs of the inner mount is its own.
	st, err := e.p.Statvfs(e.path("inner"))
	e.ok(err, "statvfs inner")
	if st.Blocks == 0 {
		e.t.Errorf("inner statvfs has 0 blocks")
	}
	// The outer mount is busy while the inner one is mounted.
	e.want(e.k.Unmount(e.mnt, false), "unmount of a mount with another mounted below it", syscall.EBUSY)
	// Removing or renaming the mount point is refused.
	e.want(e.p.Rmdir(e.path("inner")), "rmdir of a mount point", syscall.EBUSY, syscall.ENOTEMPTY)
	e.want(e.p.Rename(e.path("inner"), e.path("moved")), "rename of a mount point", syscall.EBUSY, syscall.EXDEV)
	// Unmounting the inner one uncovers the old content.
	e.ok(e.k.Unmount(e.path("inner"), false), "unmount inner")
	e.checkContent("inner/hidden", []byte("covered"))
	if e.exists("inner/inner-marker") {
		e.fatalf("the inner file system's file is visible after unmount")
	}
	e.want(e.k.Unmount(e.path("inner"), false), "unmount of a directory that is not a mount point", syscall.EINVAL)
	// And "/.." stays at the namespace root.
	a, err := e.p.Stat("/..")
	e.ok(err, "stat /..")
	r, err := e.p.Stat("/")
	e.ok(err, "stat /")
	if a.Ino != r.Ino {
		e.fatalf("/.. has inode %d, / has %d", a.Ino, r.Ino)
	}
	// ".." of the outer mount root is the namespace root.
	if _, err := e.p.Stat(e.mnt + "/../" + e.mnt[1:] + "/outer-marker"); err != nil {
		e.fatalf("stat through %s/..: %v", e.mnt, errName(err))
	}
}

func testCrossMount(e *env) {
	e.writeFile("f", []byte("outer"), 0o644)
	e.mkdir("d", 0o755)
	e.mount(e.path("inner"), false)
	e.writeFile("inner/g", []byte("inner"), 0o644)
	e.want(e.p.Rename(e.path("f"), e.path("inner/f")), "rename of a file across mounts", syscall.EXDEV)
	e.want(e.p.Rename(e.path("inner/g"), e.path("g")), "rename of a file out of a mount", syscall.EXDEV)
	e.want(e.p.Rename(e.path("d"), e.path("inner/d")), "rename of a directory across mounts", syscall.EXDEV)
	if e.caps.HardLinks {
		e.want(e.p.Link(e.path("f"), e.path("inner/f")), "link across mounts", syscall.EXDEV)
		e.want(e.p.Link(e.path("inner/g"), e.path("g")), "link out of a mount", syscall.EXDEV)
	}
	// Across mounts, also to and from the namespace root file system.
	e.want(e.p.Rename(e.path("f"), "/f"), "rename to the root file system", syscall.EXDEV)
	e.checkContent("f", []byte("outer"))
	e.checkContent("inner/g", []byte("inner"))
	if e.exists("inner/f") || e.exists("inner/d") {
		e.fatalf("a failed cross-mount rename made an entry")
	}
	// A symbolic link may point across mounts.
	if e.caps.Symlinks {
		e.ok(e.p.Symlink("../f", e.path("inner/up")), "symlink across mounts")
		e.checkContent("inner/up", []byte("outer"))
	}
}

func testUnmountBusy(e *env) {
	e.writeFile("f", []byte("busy"), 0o644)
	fd, err := e.p.Open(e.path("f"), syscall.O_RDONLY, 0)
	e.ok(err, "open")
	e.want(e.k.Unmount(e.mnt, false), "unmount with an open file", syscall.EBUSY)
	e.want(e.p.Unmount(e.mnt, false), "Proc.Unmount with an open file", syscall.EBUSY)
	// Still mounted and working.
	if got := e.pread(e.p, fd, 4, 0); string(got) != "busy" {
		e.fatalf("read after a refused unmount: %q", got)
	}
	e.ok(e.p.Close(fd), "close")
	// A working directory inside keeps it busy too.
	q := e.user(0, 0)
	e.ok(q.Chdir(e.path("")), "chdir into the mount")
	e.want(e.k.Unmount(e.mnt, false), "unmount with a working directory inside", syscall.EBUSY)
	e.ok(q.Chdir("/"), "chdir out")
	// Not a mount point.
	e.mkdir("d", 0o755)
	e.want(e.k.Unmount(e.path("d"), false), "unmount of a plain directory", syscall.EINVAL)
	e.want(e.k.Unmount("/nonexistent", false), "unmount of a missing path", syscall.ENOENT, syscall.EINVAL)
	e.want(e.k.Unmount("/", false), "unmount of the namespace root", syscall.EINVAL, syscall.EBUSY)
	// Once idle it unmounts; the mount point is an empty directory again.
	e.ok(e.k.Unmount(e.mnt, false), "unmount when idle")
	if _, err := e.p.Stat(e.path("f")); err == nil {
		e.fatalf("the file system's file is visible after unmount")
	}
	for _, mi := range e.k.Mounts() {
		if mi.Path == e.mnt {
			e.fatalf("Mounts() still lists %s after unmount", e.mnt)
		}
	}
	// A fresh mount at the same place works.
	e.mount(e.mnt, false)
	e.writeFile("again", []byte("x"), 0o644)
	e.checkContent("again", []byte("x"))
}

func testUnmountForce(e *env) {
	e.writeFile("f", []byte("forced"), 0o644)
	fd, err := e.p.Open(e.path("f"), syscall.O_RDWR, 0)
	e.ok(err, "open")
	e.ok(e.k.Unmount(e.mnt, true), "forced unmount with an open file")
	// The descriptor no longer reaches the file system.
	_, err = e.p.Pread(fd, make([]byte, 4), 0)
	e.want(err, "read through a descriptor of a force-unmounted file system", syscall.EIO, syscall.EBADF, syscall.ENXIO)
	_, err = e.p.Pwrite(fd, []byte("x"), 0)
	e.want(err, "write through a descriptor of a force-unmounted file system", syscall.EIO, syscall.EBADF, syscall.ENXIO)
	e.p.Close(fd) // its result does not matter, but it must not panic
	if _, err := e.p.Stat(e.path("f")); err == nil {
		e.fatalf("the file is reachable after a forced unmount")
	}
	for _, mi := range e.k.Mounts() {
		if mi.Path == e.mnt {
			e.fatalf("Mounts() still lists %s after a forced unmount", e.mnt)
		}
	}
}

// testUnmountForceDuringIO force-unmounts while goroutines read, write and
// list: each call either works or fails with EIO (or EBADF, ENOENT once
// the path is gone), nothing panics or races.
func testUnmountForceDuringIO(e *env) {
	e.mkdir("d", 0o755)
	data := pattern(64<<10, 30)
	e.writeFile("d/f", data, 0o644)
	var wg sync.WaitGroup
	var x errs
	stop := make(chan struct{})
	ok := func(err error) bool {
		return err == nil || isErr(err, syscall.EIO, syscall.EBADF, syscall.ENOENT, syscall.ENXIO)
	}
	var ready sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			signal := func() { once.Do(ready.Done) }
			defer signal() // also on an early return
			p := e.user(0, 0)
			fd, err := p.Open(e.path("d/f"), syscall.O_RDWR, 0)
			if err != nil {
				x.add("worker %d: open: %v", w, errName(err))
				return
			}
			defer p.Close(fd)
			buf := make([]byte, len(data))
			for i := 0; ; i++ {
				if i == 10 {
					signal()
				}
				if i >= 10 {
					select {
					case <-stop:
						return
					default:
					}
				}
				switch w {
				case 0:
					n, err := p.Pread(fd, buf, 0)
					if !ok(err) {
						x.add("reader: %v", errName(err))
						return
					}
					if err == nil && !bytes.Equal(buf[:n], data[:n]) {
						x.add("reader: wrong data before the unmount")
						return
					}
				case 1:
					off := (i % 16) * 4096
					if _, err := p.Pwrite(fd, data[off:off+4096], int64(off)); !ok(err) {
						x.add("writer: %v", errName(err))
						return
					}
				case 2:
					if _, err := p.Stat(e.path("d/f")); !ok(err) {
						x.add("stat: %v", errName(err))
						return
					}
					fd2, err := p.Open(e.path("d"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
					if err == nil {
						_, err = p.Getdents(fd2, 3)
						p.Close(fd2)
					}
					if !ok(err) {
						x.add("lister: %v", errName(err))
						return
					}
				}
			}
		}()
	}
	// Once each has done some work, pull the file system away.
	ready.Wait()
	e.ok(e.k.Unmount(e.mnt, true), "forced unmount during I/O")
	close(stop)
	wg.Wait()
	x.report(e)
	if _, err := e.p.Stat(e.path("d/f")); err == nil {
		e.fatalf("file reachable after the forced unmount")
	}
}
