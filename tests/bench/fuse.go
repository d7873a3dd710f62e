package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rump9p/rump9p/tests/hosttools"
)

// Mount is a FUSE file system over one image, served by one process:
// "rump9p mount" or fuse2fs.
type Mount struct {
	Name   string
	Dir    string // the mount point
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	exited chan error
}

// MountRump9p mounts img on dir read-write with "rump9p mount", with
// attribute and entry timeouts of 1 s, those fuse2fs gets from libfuse
// (rump9p's read-write default is 0: nothing cached, every stat asked).
func MountRump9p(bin, img, dir string) (*Mount, error) {
	return startMount("rump9p", dir, exec.Command(bin, "mount", "-o", "attr_timeout=1,entry_timeout=1", img, dir))
}

// MountFuse2fs mounts img on dir with e2fsprogs' fuse2fs, in the foreground.
func MountFuse2fs(img, dir string) (*Mount, error) {
	return startMount("fuse2fs", dir, exec.Command("fuse2fs", img, dir, "-f"))
}

func startMount(name, dir string, cmd *exec.Cmd) (*Mount, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Mount{Name: name, Dir: dir, cmd: cmd, logs: &bytes.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { m.exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !hosttools.IsMountPoint(dir) {
		select {
		case err := <-m.exited:
			return nil, fmt.Errorf("%s exited before mounting: %v\n%s", name, err, m.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("%s: %s not mounted after 20 s\n%s", name, dir, m.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return m, nil
}

// Stop unmounts and waits for the server to end (rump9p syncs and marks
// the image clean; fuse2fs flushes).
func (m *Mount) Stop() error {
	out, err := exec.Command("fusermount3", "-u", m.Dir).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("fusermount3 -u %s: %v: %s", m.Dir, err, out)
	}
	select {
	case <-m.exited:
	case <-time.After(20 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
		err = fmt.Errorf("%s did not end after its unmount", m.Name)
	}
	return err
}

// CPU is the processor time of the server process so far.
func (m *Mount) CPU() time.Duration { return procCPU(m.cmd.Process.Pid) }

// PathWorkload is one measured operation on a mounted tree, through the
// host kernel's system calls.
type PathWorkload struct {
	Name  string
	What  string
	Unit  string // "ops" or "bytes"
	Setup func(m *Mount, t *PathTarget) error
	Run   func(m *Mount, t *PathTarget) (int64, error)
}

// PathTarget is what one run works on.
type PathTarget struct {
	Tree  Tree
	Sizes Sizes
	Rep   int
}

func (t *PathTarget) scratch(m *Mount) string {
	return filepath.Join(m.Dir, "w", fmt.Sprintf("%s-%d", m.Name, t.Rep))
}

// PathWorkloads are the FUSE comparison's operations. Reads first drop the
// host's page cache of each file (posix_fadvise DONTNEED), so that every
// read reaches the server.
var PathWorkloads = []PathWorkload{
	{Name: "treewalk", What: "readdir of small/ and lstat of each file", Unit: "ops", Run: pathTreeWalk},
	{Name: "treeread", What: "open+read+close of each file of small/", Unit: "ops", Run: pathTreeRead},
	{Name: "create", What: "creat+close of empty files in one new directory", Unit: "ops", Setup: pathMkScratch, Run: pathCreates},
	{Name: "stat", What: "stat of each created file", Unit: "ops", Run: pathStats},
	{Name: "rename", What: "rename of each created file in its directory", Unit: "ops", Run: pathRenames},
	{Name: "unlink", What: "unlink of each renamed file", Unit: "ops", Run: pathUnlinks},
	{Name: "seqread", What: "read of the file big, 1 MiB at a time", Unit: "bytes", Run: pathSeqRead},
	{Name: "seqwrite", What: "write of a new file, 1 MiB at a time, then fsync", Unit: "bytes", Run: pathSeqWrite},
}

func pathTreeWalk(m *Mount, _ *PathTarget) (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(m.Dir, "small"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		_, err = os.Lstat(p)
		return err
	})
	return n, err
}

// readUncached reads the file at p into buf-sized pieces after dropping
// its cached pages, and returns the bytes read.
func readUncached(p string, buf []byte) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return 0, err
	}
	var total int64
	for {
		n, err := f.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func pathTreeRead(m *Mount, _ *PathTarget) (int64, error) {
	var n int64
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(filepath.Join(m.Dir, "small"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		_, err = readUncached(p, buf)
		return err
	})
	return n, err
}

func pathMkScratch(m *Mount, t *PathTarget) error { return os.Mkdir(t.scratch(m), 0o755) }

// eachCreated runs fn on the path of every created file (with prefix).
func eachCreated(m *Mount, t *PathTarget, prefix string, fn func(p string) error) (int64, error) {
	dir := t.scratch(m)
	for i := 0; i < t.Sizes.Creates; i++ {
		if err := fn(filepath.Join(dir, prefix+createdName(i))); err != nil {
			return int64(i), err
		}
	}
	return int64(t.Sizes.Creates), nil
}

func pathCreates(m *Mount, t *PathTarget) (int64, error) {
	return eachCreated(m, t, "", func(p string) error {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	})
}

func pathStats(m *Mount, t *PathTarget) (int64, error) {
	return eachCreated(m, t, "", func(p string) error { _, err := os.Stat(p); return err })
}

func pathRenames(m *Mount, t *PathTarget) (int64, error) {
	return eachCreated(m, t, "", func(p string) error {
		return os.Rename(p, filepath.Join(filepath.Dir(p), "r"+filepath.Base(p)))
	})
}

func pathUnlinks(m *Mount, t *PathTarget) (int64, error) {
	n, err := eachCreated(m, t, "r", os.Remove)
	if err == nil {
		err = os.Remove(t.scratch(m))
	}
	return n, err
}

func pathSeqRead(m *Mount, t *PathTarget) (int64, error) {
	n, err := readUncached(filepath.Join(m.Dir, "big"), make([]byte, 1<<20))
	if err == nil && n != t.Tree.BigSize {
		err = fmt.Errorf("read %d bytes of big, want %d", n, t.Tree.BigSize)
	}
	return n, err
}

func pathSeqWrite(m *Mount, t *PathTarget) (int64, error) {
	p := t.scratch(m) + "-seq"
	f, err := os.Create(p)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var off int64
	for off < t.Sizes.WriteSize {
		n, err := f.Write(buf[:min(int64(len(buf)), t.Sizes.WriteSize-off)])
		off += int64(n)
		if err != nil {
			f.Close()
			return off, err
		}
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Remove(p)
	}
	return off, err
}

// CompareFUSE is Compare for the host front: "rump9p mount" against
// fuse2fs, each on its own copy of the same ext2 image, through the host
// kernel's system calls. cfg.Networks is ignored. After both unmount,
// e2fsck -fn must find both images clean.
func CompareFUSE(cfg Config) (*Result, error) {
	logf := cfg.logf
	imgs, err := makeImages(cfg, logf, "rump9p", "fuse2fs")
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, Networks: []string{"fuse"}, Servers: [2]string{"rump9p", "fuse2fs"}, Samples: map[string][]Sample{}}
	for _, w := range PathWorkloads {
		if cfg.runs(w.Name) {
			res.Workloads = append(res.Workloads, WorkloadInfo{w.Name, w.What, w.Unit})
		}
	}
	var mounts []*Mount
	stopAll := func() error {
		var errs []error
		for _, m := range mounts {
			errs = append(errs, m.Stop())
		}
		mounts = nil
		return errors.Join(errs...)
	}
	defer stopAll()
	for _, name := range []string{"rump9p", "fuse2fs"} {
		mnt := filepath.Join(filepath.Dir(imgs[name]), "mnt")
		var m *Mount
		if name == "rump9p" {
			m, err = MountRump9p(cfg.Server.Rump9p, imgs[name], mnt)
		} else {
			m, err = MountFuse2fs(imgs[name], mnt)
		}
		if err != nil {
			return nil, err
		}
		mounts = append(mounts, m)
	}
	for rep := 0; rep < cfg.Reps; rep++ {
		for _, w := range PathWorkloads {
			if !cfg.runs(w.Name) {
				continue
			}
			for _, m := range mounts {
				t := &PathTarget{Tree: cfg.Tree, Sizes: cfg.Sizes, Rep: rep}
				var setup func() error
				if w.Setup != nil {
					setup = func() error { return w.Setup(m, t) }
				}
				sample, err := timed(setup, func() (int64, error) { return w.Run(m, t) }, m.CPU)
				if err != nil {
					return nil, fmt.Errorf("%s on %s: %w", w.Name, m.Name, err)
				}
				k := key(w.Name, "fuse", m.Name)
				res.Samples[k] = append(res.Samples[k], sample)
				logf("rep %d %-9s %-7s %s", rep+1, w.Name, m.Name, describe(WorkloadInfo{w.Name, w.What, w.Unit}, sample))
			}
		}
	}
	if err := stopAll(); err != nil {
		return nil, err
	}
	for name, img := range imgs {
		if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("e2fsck -fn of the image %s wrote: %v\n%s", name, err, out)
		}
	}
	return res, nil
}
