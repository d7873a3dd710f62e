package conformance

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

func concurrentCases() []testCase {
	return []testCase{
		{name: "ConcurrentFiles", fn: testConcurrentFiles},
		{name: "ConcurrentPwriteOneFile", fn: testConcurrentPwrite},
		{name: "ConcurrentCreateUnlink", fn: testConcurrentCreateUnlink},
		{name: "ConcurrentRenameStat", fn: testConcurrentRename},
	}
}

// errs collects errors from goroutines; the test reports the first few.
type errs struct {
	mu   sync.Mutex
	list []string
}

func (x *errs) add(format string, args ...any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.list = append(x.list, fmt.Sprintf(format, args...))
}

func (x *errs) report(e *env) {
	e.t.Helper()
	for i, s := range x.list {
		if i == 10 {
			e.t.Errorf("... and %d more", len(x.list)-10)
			break
		}
		e.t.Error(s)
	}
	if len(x.list) > 0 {
		e.t.FailNow()
	}
}

// testConcurrentFiles: writers on their own files and readers of a shared
// file run at once.
func testConcurrentFiles(e *env) {
	e.ensureSeed()
	const writers, readers, size, piece = 4, 3, 192 << 10, 3000
	var wg sync.WaitGroup
	var x errs
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.user(0, 0)
			name := e.path(fmt.Sprintf("w%d", w))
			data := pattern(size, byte(100+w))
			fd, err := p.Open(name, syscall.O_CREAT|syscall.O_RDWR, 0o644)
			if err != nil {
				x.add("writer %d: create: %v", w, errName(err))
				return
			}
			defer p.Close(fd)
			for off := 0; off < size; off += piece {
				end := min(off+piece, size)
				if n, err := p.Write(fd, data[off:end]); err != nil || n != end-off {
					x.add("writer %d: write at %d: %d, %v", w, off, n, errName(err))
					return
				}
			}
			got := make([]byte, size)
			if n, err := p.Pread(fd, got, 0); err != nil || n != size || !bytes.Equal(got, data) {
				x.add("writer %d: read back %d bytes, %v, equal %v", w, n, errName(err), bytes.Equal(got, data))
			}
		}()
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.user(0, 0)
			want := SeedData()
			buf := make([]byte, len(want))
			for i := 0; i < 30; i++ {
				fd, err := p.Open(e.path(SeedFile), syscall.O_RDONLY, 0)
				if err != nil {
					x.add("reader %d: open: %v", r, errName(err))
					return
				}
				n, err := p.Pread(fd, buf, 0)
				p.Close(fd)
				if err != nil || n != len(want) || !bytes.Equal(buf, want) {
					x.add("reader %d: read %d bytes, %v", r, n, errName(err))
					return
				}
				if _, err := p.Stat(e.path(SeedInner)); err != nil {
					x.add("reader %d: stat: %v", r, errName(err))
					return
				}
			}
		}()
	}
	wg.Wait()
	x.report(e)
	for w := range writers {
		e.checkContent(fmt.Sprintf("w%d", w), pattern(size, byte(100+w)))
	}
}

// testConcurrentPwrite: goroutines write disjoint ranges of one file with
// Pwrite, half through their own descriptors and half through one shared
// descriptor.
func testConcurrentPwrite(e *env) {
	const workers, span, piece = 8, 64 << 10, 4096 + 17
	e.writeFile("shared", nil, 0o644)
	shared, err := e.p.Open(e.path("shared"), syscall.O_RDWR, 0)
	e.ok(err, "open shared")
	defer e.p.Close(shared)
	var wg sync.WaitGroup
	var x errs
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, fd := e.p, shared
			if w%2 == 0 {
				p = e.user(0, 0)
				var err error
				fd, err = p.Open(e.path("shared"), syscall.O_RDWR, 0)
				if err != nil {
					x.add("worker %d: open: %v", w, errName(err))
					return
				}
				defer p.Close(fd)
			}
			data := pattern(span, byte(200+w))
			base := int64(w * span)
			// Write the range back to front, so that the file grows from
			// several places at once.
			for end := span; end > 0; end -= piece {
				start := max(end-piece, 0)
				if n, err := p.Pwrite(fd, data[start:end], base+int64(start)); err != nil || n != end-start {
					x.add("worker %d: pwrite at %d: %d, %v", w, base+int64(start), n, errName(err))
					return
				}
			}
		}()
	}
	wg.Wait()
	x.report(e)
	want := make([]byte, 0, workers*span)
	for w := range workers {
		want = append(want, pattern(span, byte(200+w))...)
	}
	e.checkContent("shared", want)
}

// testConcurrentCreateUnlink: goroutines create and unlink names in one
// directory, some on their own names and some contending for the same
// names, while another lists it.
func testConcurrentCreateUnlink(e *env) {
	e.mkdir("d", 0o755)
	const owners, contenders, rounds = 3, 3, 60
	var wg sync.WaitGroup
	var x errs
	for o := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.user(0, 0)
			for i := range rounds {
				name := e.path(fmt.Sprintf("d/o%d_%d", o, i))
				fd, err := p.Open(name, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
				if err != nil {
					x.add("owner %d: create %s: %v", o, name, errName(err))
					return
				}
				p.Write(fd, []byte(name))
				p.Close(fd)
				if i%3 != 0 { // keep every third
					if err := p.Unlink(name); err != nil {
						x.add("owner %d: unlink %s: %v", o, name, errName(err))
						return
					}
				}
				if i%10 == 0 {
					dn := e.path(fmt.Sprintf("d/dir%d_%d", o, i))
					if err := p.Mkdir(dn, 0o755); err != nil {
						x.add("owner %d: mkdir: %v", o, errName(err))
						return
					}
					if err := p.Rmdir(dn); err != nil {
						x.add("owner %d: rmdir: %v", o, errName(err))
						return
					}
				}
			}
		}()
	}
	for c := range contenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.user(0, 0)
			for i := range rounds {
				name := e.path(fmt.Sprintf("d/shared%d", i%5))
				fd, err := p.Open(name, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY, 0o644)
				switch {
				case err == nil:
					p.Close(fd)
				case !isErr(err, syscall.EEXIST):
					x.add("contender %d: create: %v", c, errName(err))
					return
				}
				if err := p.Unlink(name); err != nil && !isErr(err, syscall.ENOENT) {
					x.add("contender %d: unlink: %v", c, errName(err))
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	var lister sync.WaitGroup
	lister.Add(1)
	go func() {
		defer lister.Done()
		p := e.user(0, 0)
		for {
			select {
			case <-done:
				return
			default:
			}
			fd, err := p.Open(e.path("d"), syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
			if err != nil {
				x.add("lister: open: %v", errName(err))
				return
			}
			seen := map[string]bool{}
			for {
				ents, err := p.Getdents(fd, 5)
				if err != nil {
					x.add("lister: getdents: %v", errName(err))
					break
				}
				if len(ents) == 0 {
					break
				}
				for _, d := range ents {
					// A shared name removed and made again during the pass
					// is a new entry, which POSIX lets readdir return
					// again; every other name is made once at most.
					if seen[d.Name] && !strings.HasPrefix(d.Name, "shared") {
						x.add("lister: %q listed twice in one pass", d.Name)
					}
					seen[d.Name] = true
				}
			}
			p.Close(fd)
		}
	}()
	wg.Wait()
	close(done)
	lister.Wait()
	x.report(e)
	// Exactly the kept names remain, each with its content.
	var want []string
	for o := range owners {
		for i := 0; i < rounds; i += 3 {
			want = append(want, fmt.Sprintf("o%d_%d", o, i))
		}
	}
	got := names(e.readdir("d", 50))
	var gotOwned []string
	for _, n := range got {
		if n[0] == 'o' {
			gotOwned = append(gotOwned, n)
		} else if len(n) < 6 || n[:6] != "shared" {
			e.fatalf("unexpected entry %q", n)
		}
	}
	wantSorted := names(direntsOf(want))
	if !equalStrings(gotOwned, wantSorted) {
		e.fatalf("after the run the directory holds %d owned names, want %d: %q", len(gotOwned), len(wantSorted), gotOwned)
	}
	for _, n := range want[:5] {
		e.checkContent("d/"+n, []byte(e.path("d/"+n)))
	}
	if e.caps.DirLinkCount {
		if n := e.stat("d").Nlink; n != 2 {
			e.fatalf("directory nlink %d after its subdirectories came and went, want 2", n)
		}
	}
}

func direntsOf(names []string) []vnodeops.Dirent {
	out := make([]vnodeops.Dirent, len(names))
	for i, n := range names {
		out[i].Name = n
	}
	return out
}

// testConcurrentRename: one goroutine renames a file back and forth
// between two directories while others stat and open both names: each
// lookup finds the file under exactly one of them or gets ENOENT, and the
// file is never lost.
func testConcurrentRename(e *env) {
	e.mkdir("a", 0o755)
	e.mkdir("b", 0o755)
	e.writeFile("a/f", []byte("moving"), 0o644)
	const moves = 200
	var wg sync.WaitGroup
	var x errs
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		p := e.user(0, 0)
		from, to := "a/f", "b/f"
		for i := range moves {
			if err := p.Rename(e.path(from), e.path(to)); err != nil {
				x.add("move %d %s -> %s: %v", i, from, to, errName(err))
				return
			}
			from, to = to, from
			if i%20 == 0 {
				// And a directory, back and forth.
				if err := p.Mkdir(e.path("a/sub"), 0o755); err != nil {
					x.add("mkdir: %v", errName(err))
					return
				}
				if err := p.Rename(e.path("a/sub"), e.path("b/sub")); err != nil {
					x.add("rename sub: %v", errName(err))
					return
				}
				if err := p.Rmdir(e.path("b/sub")); err != nil {
					x.add("rmdir sub: %v", errName(err))
					return
				}
			}
		}
	}()
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.user(0, 0)
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, n := range []string{"a/f", "b/f"} {
					fd, err := p.Open(e.path(n), syscall.O_RDONLY, 0)
					if err != nil {
						if !isErr(err, syscall.ENOENT) {
							x.add("reader %d: open %s: %v", r, n, errName(err))
							return
						}
						continue
					}
					buf := make([]byte, 16)
					k, err := p.Read(fd, buf)
					p.Close(fd)
					if err != nil || string(buf[:k]) != "moving" {
						x.add("reader %d: read %s: %q, %v", r, n, buf[:k], errName(err))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	x.report(e)
	// moves is even: the file is back in a.
	e.checkContent("a/f", []byte("moving"))
	if e.exists("b/f") {
		e.fatalf("b/f exists after an even number of moves")
	}
	if e.caps.DirLinkCount {
		if na, nb := e.stat("a").Nlink, e.stat("b").Nlink; na != 2 || nb != 2 {
			e.fatalf("nlink of a %d, b %d after directories came and went, want 2 and 2", na, nb)
		}
	}
}
