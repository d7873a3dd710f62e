package rumpcore_test

import (
	"fmt"
	"syscall"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
	_ "github.com/rump9p/rump9p/vnodeops/tmpfs" // registers "tmpfs"
)

// Boot a kernel, mount a file system, and make system calls as a process:
// what a Go program does with rump9p without any 9P or FUSE. An image
// mounts the same way with MountSpec{Type: "auto", Image: "disk.img"}.
func Example() {
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		panic(err)
	}
	defer k.Shutdown() // syncs and unmounts everything

	if err := k.Mount("/data", rumpcore.MountSpec{Type: "tmpfs", Options: map[string]string{"size": "16m", "mode": "755"}}); err != nil {
		panic(err)
	}
	p := k.NewProc(vnodeops.Cred{UID: 1000, GID: 1000})
	defer p.Exit()

	// A user may not write in the root-owned mount...
	_, err = p.Open("/data/hello", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	fmt.Println("as uid 1000:", err)

	// ...root may, and can hand a directory over.
	root := k.NewProc(vnodeops.Root)
	defer root.Exit()
	root.Mkdir("/data/home", 0o755)
	root.Chown("/data/home", 1000, 1000)

	fd, _ := p.Open("/data/home/hello", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
	p.Write(fd, []byte("hello, world\n"))
	p.Close(fd)

	a, _ := p.Stat("/data/home/hello")
	fmt.Printf("size %d, mode %o, owner %d\n", a.Size, a.Mode&vnodeops.PermMask, a.UID)
	// Output:
	// as uid 1000: permission denied
	// size 13, mode 644, owner 1000
}
