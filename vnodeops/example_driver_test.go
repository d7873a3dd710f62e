package vnodeops_test

import (
	"fmt"
	"syscall"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// A read-only driver implements vnodeops.Vnode and stops there: the kernel
// answers EROFS for every write, because the vnodes have no Writer. This
// one serves a root directory holding one file, "motd".
const (
	rootIno = 1
	motdIno = 2
	motd    = "served by a ten-method driver\n"
)

type helloFS struct{}

func (helloFS) Root() uint64 { return rootIno }

func (helloFS) VGet(ino uint64) (vnodeops.Vnode, error) {
	if ino != rootIno && ino != motdIno {
		return nil, syscall.ENOENT
	}
	return helloNode{ino}, nil
}

func (helloFS) Statvfs() (vnodeops.Statvfs, error) {
	return vnodeops.Statvfs{Bsize: 512, Files: 2, Namemax: 255, Flags: vnodeops.StRdonly}, nil
}
func (helloFS) Sync() error        { return nil }
func (helloFS) Unmount(bool) error { return nil }

type helloNode struct{ ino uint64 }

var _ vnodeops.Vnode = helloNode{}

func (n helloNode) Lookup(name string) (uint64, error) {
	switch {
	case n.ino != rootIno:
		return 0, syscall.ENOTDIR
	case name == "..":
		return rootIno, nil
	case name == "motd":
		return motdIno, nil
	}
	return 0, syscall.ENOENT
}

func (n helloNode) Getattr() (vnodeops.Attr, error) {
	if n.ino == rootIno {
		return vnodeops.Attr{Ino: rootIno, Mode: vnodeops.S_IFDIR | 0o555, Nlink: 2}, nil
	}
	return vnodeops.Attr{Ino: motdIno, Mode: vnodeops.S_IFREG | 0o444, Nlink: 1, Size: uint64(len(motd))}, nil
}

func (n helloNode) Access(want uint32, cred vnodeops.Cred) error {
	if want&vnodeops.AccessWrite != 0 {
		return syscall.EROFS
	}
	a, _ := n.Getattr()
	return vnodeops.CheckAccess(a, want, cred)
}

func (n helloNode) Read(p []byte, off int64) (int, error) {
	if n.ino == rootIno {
		return 0, syscall.EISDIR
	}
	if off >= int64(len(motd)) {
		return 0, nil
	}
	return copy(p, motd[off:]), nil
}

// Readdir's cookies: 0 starts, each entry's Next resumes after it.
func (n helloNode) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	if n.ino != rootIno {
		return syscall.ENOTDIR
	}
	ents := []vnodeops.Dirent{
		{Name: ".", Ino: rootIno, Type: vnodeops.DT_DIR, Next: 1},
		{Name: "..", Ino: rootIno, Type: vnodeops.DT_DIR, Next: 2},
		{Name: "motd", Ino: motdIno, Type: vnodeops.DT_REG, Next: 3},
	}
	for _, e := range ents[min(cookie, 3):] {
		if !fn(e) {
			break
		}
	}
	return nil
}

func (helloNode) Open(int) error            { return nil }
func (helloNode) Close(int) error           { return nil }
func (helloNode) Readlink() (string, error) { return "", syscall.EINVAL }
func (helloNode) Inactive() error           { return nil }
func (helloNode) Reclaim() error            { return nil }

// Write a driver: a read-only one needs only the ten methods of
// vnodeops.Vnode. A driver for images registers itself with
// vnodeops.Register (a Driver with Probe and Mount); an FS made in code
// mounts with Kernel.MountFS.
func Example_driver() {
	k, _ := rumpcore.Init(rumpcore.Options{})
	defer k.Shutdown()
	if err := k.MountFS("/hello", "hello", helloFS{}, true); err != nil {
		panic(err)
	}
	p := k.NewProc(vnodeops.Cred{UID: 1000, GID: 1000})
	fd, _ := p.Open("/hello/motd", syscall.O_RDONLY, 0)
	buf := make([]byte, 100)
	n, _ := p.Read(fd, buf)
	fmt.Print(string(buf[:n]))
	p.Close(fd)

	_, err := p.Open("/hello/new", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	fmt.Println("create:", err)
	// Output:
	// served by a ten-method driver
	// create: read-only file system
}
