package bench

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hugelgupf/p9/linux"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/tests/p9raw"
)

// Sizes of the write and round-trip workloads.
type Sizes struct {
	Creates   int   // files made, stat'ed, renamed and removed
	WriteSize int64 // bytes written (then fsync'ed) by seqwrite
	Readers   int   // connections of the parallel workload
	Getattrs  int   // round trips of the getattr workload
}

// Target is what one workload run works on: a server, over one transport,
// in one repetition.
type Target struct {
	Server  *Server
	Network string
	Msize   uint32
	Tree    Tree
	Sizes   Sizes
	Rep     int
}

// scratch is the directory of this target's create/stat/rename/unlink
// runs, below w/.
func (t *Target) scratch() string { return fmt.Sprintf("%s-%s-%d", t.Server.Name, t.Network, t.Rep) }

// Workload is one measured operation. Run does the work on c and returns
// how many operations (Unit "ops") or bytes (Unit "bytes") it did; Setup,
// if set, runs before and is not timed.
type Workload struct {
	Name  string
	What  string // one line for the table's legend
	Unit  string // "ops", "bytes", or "latency" (ops, reported as µs per op)
	Setup func(c *Client, t *Target) error
	Run   func(c *Client, t *Target) (int64, error)
}

// Workloads are the measured operations, in the order they run (create,
// stat, rename and unlink work on the same files, in that order).
var Workloads = []Workload{
	{Name: "treewalk", What: "readdir of every directory of small/, walk+getattr of each file", Unit: "ops", Run: treeWalk},
	{Name: "treeread", What: "walk+open+read+clunk of each file of small/", Unit: "ops", Run: treeRead},
	{Name: "widedir", What: "readdir of wide/, then walk+getattr of each entry", Unit: "ops", Run: wideDir},
	{Name: "create", What: "Tlcreate+clunk of empty files in one new directory", Unit: "ops", Setup: mkScratch, Run: creates},
	{Name: "stat", What: "walk+getattr+clunk of each created file", Unit: "ops", Run: stats},
	{Name: "rename", What: "walk+Trename+clunk of each created file (diod has no Trenameat)", Unit: "ops", Run: renames},
	{Name: "unlink", What: "walk+Tremove of each renamed file (diod has no Tunlinkat)", Unit: "ops", Run: unlinks},
	{Name: "seqread", What: "read of the file big, msize 1 MiB (diod: 64 KiB)", Unit: "bytes", Run: seqRead},
	{Name: "seqwrite", What: "write of a new file, then Tfsync", Unit: "bytes", Run: seqWrite},
	{Name: "parallel", What: "readers on their own connections, each a part of big", Unit: "bytes", Run: parallelRead},
	{Name: "getattr", What: "Tgetattr round trip on one fid, by a hand-written client (no library cost)", Unit: "latency", Run: getattrs},
}

// walkTree lists dir recursively (Treaddir) and calls fn for each regular
// file's path.
func walkTree(root p9.File, count uint32, dir string, fn func(path string) error) error {
	ents, err := readdirAll(root, count, dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		p := dir + "/" + e.Name
		if e.Type == p9.TypeDir || e.QID.Type == p9.TypeDir {
			if err := walkTree(root, count, p, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// readdirAll reads every entry of the directory at path below root.
func readdirAll(root p9.File, count uint32, path string) ([]p9.Dirent, error) {
	_, d, err := root.Walk(split(path))
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	defer d.Close()
	if _, _, err := d.Open(p9.ReadOnly); err != nil {
		return nil, err
	}
	var ents []p9.Dirent
	var off uint64
	for {
		batch, err := d.Readdir(off, count)
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			return ents, nil
		}
		ents = append(ents, batch...)
		off = batch[len(batch)-1].Offset
	}
}

func split(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// readFile reads the file at path below root from off to off+n (to EOF if
// n < 0) with reads of len(buf) bytes into buf, keeping the content if
// keep is set, and returns how many bytes it read.
func readFile(root p9.File, path string, buf []byte, off, n int64, keep *[]byte) (int64, error) {
	_, f, err := root.Walk(split(path))
	if err != nil {
		return 0, fmt.Errorf("walk %s: %w", path, err)
	}
	defer f.Close()
	if _, _, err := f.Open(p9.ReadOnly); err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	var total int64
	for n < 0 || total < n {
		b := buf
		if n >= 0 && int64(len(b)) > n-total {
			b = b[:n-total]
		}
		got, err := f.ReadAt(b, off+total)
		if keep != nil {
			*keep = append(*keep, b[:got]...)
		}
		total += int64(got)
		if err == io.EOF || (got == 0 && err == nil) {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func treeWalk(c *Client, _ *Target) (int64, error) {
	var n int64
	err := walkTree(c.Root, c.ReaddirCount, "small", func(path string) error {
		_, f, _, _, err := c.Root.WalkGetAttr(split(path))
		if err != nil {
			return err
		}
		n++
		return f.Close()
	})
	return n, err
}

func treeRead(c *Client, _ *Target) (int64, error) {
	var n int64
	buf := make([]byte, c.IOCount)
	err := walkTree(c.Root, c.ReaddirCount, "small", func(path string) error {
		n++
		_, err := readFile(c.Root, path, buf, 0, -1, nil)
		return err
	})
	return n, err
}

func wideDir(c *Client, _ *Target) (int64, error) {
	ents, err := readdirAll(c.Root, c.ReaddirCount, "wide")
	if err != nil {
		return 0, err
	}
	_, d, err := c.Root.Walk([]string{"wide"})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var n int64
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		_, f, _, _, err := d.WalkGetAttr([]string{e.Name})
		if err != nil {
			return n, fmt.Errorf("wide/%s: %w", e.Name, err)
		}
		f.Close()
		n++
	}
	return n, nil
}

// inScratch runs fn with the target's scratch directory open as a fid.
func inScratch(c *Client, t *Target, fn func(d p9.File) (int64, error)) (int64, error) {
	_, d, err := c.Root.Walk([]string{"w", t.scratch()})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return fn(d)
}

func mkScratch(c *Client, t *Target) error {
	_, w, err := c.Root.Walk([]string{"w"})
	if err != nil {
		return err
	}
	defer w.Close()
	_, err = w.Mkdir(t.scratch(), 0o755, 0, 0)
	return err
}

// create makes and opens the file name in dir. Tlcreate turns the fid it
// is sent on into the new file, so it goes on a clone of dir's.
func create(dir p9.File, name string, flags p9.OpenFlags) (p9.File, error) {
	_, nd, err := dir.Walk(nil)
	if err != nil {
		return nil, err
	}
	f, _, _, err := nd.Create(name, flags, 0o644, 0, 0)
	if err != nil {
		nd.Close()
		return nil, err
	}
	return f, nil
}

func createdName(i int) string { return fmt.Sprintf("c%06d", i) }

func creates(c *Client, t *Target) (int64, error) {
	return inScratch(c, t, func(d p9.File) (int64, error) {
		for i := 0; i < t.Sizes.Creates; i++ {
			f, err := create(d, createdName(i), p9.ReadWrite)
			if err != nil {
				return int64(i), err
			}
			f.Close()
		}
		return int64(t.Sizes.Creates), nil
	})
}

func stats(c *Client, t *Target) (int64, error) {
	return inScratch(c, t, func(d p9.File) (int64, error) {
		for i := 0; i < t.Sizes.Creates; i++ {
			_, f, _, _, err := d.WalkGetAttr([]string{createdName(i)})
			if err != nil {
				return int64(i), err
			}
			f.Close()
		}
		return int64(t.Sizes.Creates), nil
	})
}

func renames(c *Client, t *Target) (int64, error) {
	return inScratch(c, t, func(d p9.File) (int64, error) {
		for i := 0; i < t.Sizes.Creates; i++ {
			_, f, err := d.Walk([]string{createdName(i)})
			if err != nil {
				return int64(i), err
			}
			err = f.Rename(d, "r"+createdName(i))
			f.Close()
			if err != nil {
				return int64(i), err
			}
		}
		return int64(t.Sizes.Creates), nil
	})
}

func unlinks(c *Client, t *Target) (int64, error) {
	n, err := inScratch(c, t, func(d p9.File) (int64, error) {
		for i := 0; i < t.Sizes.Creates; i++ {
			if err := remove(d, "r"+createdName(i)); err != nil {
				return int64(i), err
			}
		}
		return int64(t.Sizes.Creates), nil
	})
	if err == nil {
		_, w, werr := c.Root.Walk([]string{"w"})
		if werr != nil {
			return n, werr
		}
		defer w.Close()
		// Linux's rmdir: Tunlinkat, or Tremove where it is missing.
		if err = w.UnlinkAt(t.scratch(), 0x200); err == linux.EOPNOTSUPP { // AT_REMOVEDIR
			err = remove(w, t.scratch())
		}
	}
	return n, err
}

// remove removes name in dir with walk+Tremove (which clunks the fid),
// as Linux does for a server without Tunlinkat, like diod.
func remove(dir p9.File, name string) error {
	_, f, err := dir.Walk([]string{name})
	if err != nil {
		return err
	}
	// p9.File has no Remove; the client's files do.
	r, ok := f.(interface{ Remove() error })
	if !ok {
		f.Close()
		return errors.New("p9 client file without Remove")
	}
	return r.Remove()
}

func seqRead(c *Client, t *Target) (int64, error) {
	n, err := readFile(c.Root, "big", make([]byte, c.IOCount), 0, -1, nil)
	if err == nil && n != t.Tree.BigSize {
		err = fmt.Errorf("read %d bytes of big, want %d", n, t.Tree.BigSize)
	}
	return n, err
}

func seqWrite(c *Client, t *Target) (int64, error) {
	_, w, err := c.Root.Walk([]string{"w"})
	if err != nil {
		return 0, err
	}
	defer w.Close()
	name := "seq-" + t.scratch()
	f, err := create(w, name, p9.WriteOnly)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, c.IOCount)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var off int64
	for off < t.Sizes.WriteSize {
		b := buf[:min(int64(len(buf)), t.Sizes.WriteSize-off)]
		n, err := f.WriteAt(b, off)
		off += int64(n)
		if err != nil {
			f.Close()
			return off, err
		}
	}
	err = f.FSync()
	f.Close()
	if err != nil {
		return off, err
	}
	return off, remove(w, name)
}

func parallelRead(_ *Client, t *Target) (int64, error) {
	k := max(t.Sizes.Readers, 1)
	part := t.Tree.BigSize / int64(k)
	clients := make([]*Client, k)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range clients {
		c, err := t.Server.Connect(t.Network, t.Msize)
		if err != nil {
			return 0, err
		}
		clients[i] = c
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var errs []error
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := readFile(c.Root, "big", make([]byte, c.IOCount), int64(i)*part, part, nil)
			mu.Lock()
			total += n
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// getattrs times Tgetattr round trips on a connection of its own, spoken
// by hand (tests/p9raw): one write and one read per request, so that the
// figure is the server's and the transport's, not a client library's.
func getattrs(_ *Client, t *Target) (int64, error) {
	c, root, err := p9raw.DialClient(t.Network, t.Server.addrs[t.Network], t.Server.aname, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	for i := 0; i < t.Sizes.Getattrs; i++ {
		if _, err := c.Getattr(root); err != nil {
			return int64(i), err
		}
	}
	return int64(t.Sizes.Getattrs), nil
}
