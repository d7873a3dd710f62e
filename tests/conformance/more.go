package conformance

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"syscall"
)

func moreCases() []testCase {
	return []testCase{
		{name: "RenameOverOpenFile", fn: testRenameOverOpenFile},
		{name: "TruncateSeenByOtherFd", fn: testTruncateOtherFd},
		{name: "ShutdownWithOpenFiles", fn: testShutdownWithOpenFiles},
		{name: "DeepTree", fn: testDeepTree},
		{name: "OddNames", need: needs("posixnames"), fn: testOddNames},
		{name: "ConcurrentAppend", fn: testConcurrentAppend},
		{name: "ConcurrentTruncateRead", fn: testConcurrentTruncateRead},
	}
}

// testRenameOverOpenFile: a file replaced by rename while open stays
// readable through its descriptor, with no name left, and its space comes
// back at close.
func testRenameOverOpenFile(e *env) {
	sv0 := e.statvfs()
	old := pattern(64<<10, 20)
	e.writeFile("victim", old, 0o644)
	e.writeFile("new", []byte("replacement"), 0o644)
	fd, err := e.p.Open(e.path("victim"), syscall.O_RDWR, 0)
	e.ok(err, "open victim")
	e.rename("new", "victim")
	e.checkContent("victim", []byte("replacement"))
	a, err := e.p.Fstat(fd)
	e.ok(err, "fstat of the replaced file")
	if a.Nlink != 0 {
		e.t.Errorf("replaced open file has nlink %d, want 0", a.Nlink)
	}
	if got := e.pread(e.p, fd, len(old), 0); !bytes.Equal(got, old) {
		e.fatalf("replaced open file: %s", diffBytes(got, old))
	}
	e.pwrite(e.p, fd, []byte("still writable"), 0)
	e.checkContent("victim", []byte("replacement"))
	e.ok(e.p.Close(fd), "close")
	e.ok(e.p.Unlink(e.path("victim")), "unlink")
	if sv := e.statvfs(); sv.Bfree != sv0.Bfree {
		e.t.Errorf("free blocks %d after the replaced file was closed and the new one removed, want %d", sv.Bfree, sv0.Bfree)
	}
}

// testTruncateOtherFd: a truncation through one name or descriptor is seen
// at once through another descriptor of the file.
func testTruncateOtherFd(e *env) {
	e.writeFile("f", pattern(10000, 21), 0o644)
	r, err := e.p.Open(e.path("f"), syscall.O_RDONLY, 0)
	e.ok(err, "open reader")
	defer e.p.Close(r)
	w, err := e.p.Open(e.path("f"), syscall.O_WRONLY|syscall.O_TRUNC, 0)
	e.ok(err, "open O_TRUNC")
	n, err := e.p.Pread(r, make([]byte, 100), 0)
	e.ok(err, "pread after truncation elsewhere")
	if n != 0 {
		e.fatalf("a reader still sees %d bytes after O_TRUNC through another descriptor", n)
	}
	e.pwrite(e.p, w, []byte("abc"), 0)
	e.ok(e.p.Close(w), "close writer")
	buf := make([]byte, 100)
	n, err = e.p.Pread(r, buf, 0)
	e.ok(err, "pread")
	if string(buf[:n]) != "abc" {
		e.fatalf("reader sees %q, want %q", buf[:n], "abc")
	}
	a, err := e.p.Fstat(r)
	e.ok(err, "fstat")
	if a.Size != 3 {
		e.fatalf("fstat size %d, want 3", a.Size)
	}
}

// testShutdownWithOpenFiles leaves descriptors open (one with fresh data,
// one of an unlinked file), a working directory inside the mount and a
// nested mount: Shutdown must cope, and the checker must pass.
func testShutdownWithOpenFiles(e *env) {
	e.mkdir("d", 0o755)
	fd, err := e.p.Open(e.path("d/dirty"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create")
	e.pwrite(e.p, fd, pattern(100<<10, 22), 0)
	fd2, err := e.p.Open(e.path("d/orphan"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	e.ok(err, "create orphan")
	e.pwrite(e.p, fd2, pattern(50<<10, 23), 0)
	e.ok(e.p.Unlink(e.path("d/orphan")), "unlink orphan")
	q := e.user(0, 0)
	e.ok(q.Chdir(e.path("d")), "chdir")
	dfd, err := q.Open(".", syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	e.ok(err, "open .")
	_, err = q.Getdents(dfd, 1)
	e.ok(err, "getdents")
	// The harness shuts the kernel down after this returns and runs the
	// checker; nothing is closed here on purpose.
}

// testDeepTree builds a chain of 64 nested directories and walks it with
// absolute paths, relative paths and "..".
func testDeepTree(e *env) {
	const depth = 64
	rel := ""
	for i := range depth {
		if i > 0 {
			rel += "/"
		}
		rel += fmt.Sprintf("d%02d", i)
		e.mkdir(rel, 0o755)
	}
	e.writeFile(rel+"/leaf", []byte("bottom"), 0o644)
	e.checkContent(rel+"/leaf", []byte("bottom"))
	q := e.user(0, 0)
	e.ok(q.Chdir(e.path(rel)), "chdir to the bottom")
	up := strings.Repeat("../", depth)
	if _, err := q.Stat(up + "d00"); err != nil {
		e.fatalf("stat %s from the bottom: %v", up+"d00", errName(err))
	}
	// Far more ".." than levels stops at "/".
	if _, err := q.Stat(strings.Repeat("../", depth+10) + e.mnt[1:] + "/d00"); err != nil {
		e.fatalf("stat with too many \"..\": %v", errName(err))
	}
	e.ok(q.Chdir("/"), "chdir /")
	if e.caps.DirLinkCount {
		if n := e.stat("d00").Nlink; n != 3 {
			e.t.Errorf("nlink of a directory with one subdirectory: %d", n)
		}
	}
	// Moving the whole tree under a new parent keeps it whole.
	e.mkdir("top", 0o755)
	e.rename("d00", "top/d00")
	e.checkContent("top/"+rel+"/leaf", []byte("bottom"))
	// And removing it bottom-up.
	e.ok(e.p.Unlink(e.path("top/"+rel+"/leaf")), "unlink leaf")
	for p := "top/" + rel; p != "top"; p = p[:strings.LastIndexByte(p, '/')] {
		e.ok(e.p.Rmdir(e.path(p)), "rmdir %s", p)
	}
	if got := names(e.readdir("top", 10)); len(got) != 0 {
		e.fatalf("top still holds %q", got)
	}
}

func testOddNames(e *env) {
	odd := []string{
		"with space", " leading", "trailing ", "tab\there", "newline\nhere",
		"ünïcödé", "日本語のファイル名", "emoji😀", "\xff\xfe not utf-8",
		"Case", "case", "CASE", "back\\slash", "colon:star*q?", "-dash", "#hash%pct",
	}
	for i, n := range odd {
		e.writeFile(n, []byte(fmt.Sprint(i)), 0o644)
	}
	for i, n := range odd {
		e.checkContent(n, []byte(fmt.Sprint(i)))
	}
	got := userNames(e.readdir("", 50))
	want := names(direntsOf(odd))
	if !equalStrings(got, want) {
		e.fatalf("listing %q, want %q", got, want)
	}
	e.mkdir("Dir", 0o755)
	e.mkdir("dir", 0o755)
	e.rename("Case", "dir/Case")
	e.checkContent("dir/Case", []byte("9"))
	e.checkContent("case", []byte("10"))
}

// testConcurrentAppend: goroutines append records through O_APPEND
// descriptors; every record ends up whole, none overwritten.
func testConcurrentAppend(e *env) {
	const writers, records, recLen = 4, 100, 97
	e.writeFile("log", nil, 0o644)
	var wg sync.WaitGroup
	var x errs
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.user(0, 0)
			fd, err := p.Open(e.path("log"), syscall.O_WRONLY|syscall.O_APPEND, 0)
			if err != nil {
				x.add("writer %d: open: %v", w, errName(err))
				return
			}
			defer p.Close(fd)
			for r := range records {
				rec := fmt.Sprintf("w%d r%03d ", w, r)
				rec += strings.Repeat(string(rune('a'+w)), recLen-1-len(rec)) + "\n"
				if n, err := p.Write(fd, []byte(rec)); err != nil || n != recLen {
					x.add("writer %d: append %d: %d, %v", w, r, n, errName(err))
					return
				}
			}
		}()
	}
	wg.Wait()
	x.report(e)
	data := e.readFile("log")
	if len(data) != writers*records*recLen {
		e.fatalf("log has %d bytes, want %d", len(data), writers*records*recLen)
	}
	seen := map[string]bool{}
	for i := 0; i < len(data); i += recLen {
		rec := string(data[i : i+recLen])
		var w, r int
		if _, err := fmt.Sscanf(rec, "w%d r%d ", &w, &r); err != nil || w < 0 || w >= writers {
			e.fatalf("record at %d is torn: %q", i, rec)
		}
		want := fmt.Sprintf("w%d r%03d ", w, r)
		want += strings.Repeat(string(rune('a'+w)), recLen-1-len(want)) + "\n"
		if rec != want {
			e.fatalf("record at %d is torn: %q", i, rec)
		}
		if seen[rec] {
			e.fatalf("record %q appears twice", rec)
		}
		seen[rec] = true
	}
}

// testConcurrentTruncateRead: while one goroutine rewrites and truncates a
// file, readers only ever see the data written or zeros, never stale or
// foreign bytes.
func testConcurrentTruncateRead(e *env) {
	bs := e.blockSize()
	size := 8 * bs
	e.writeFile("f", bytes.Repeat([]byte{'A'}, size), 0o644)
	var wg sync.WaitGroup
	var x errs
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		p := e.user(0, 0)
		fd, err := p.Open(e.path("f"), syscall.O_RDWR, 0)
		if err != nil {
			x.add("writer: open: %v", errName(err))
			return
		}
		defer p.Close(fd)
		full := bytes.Repeat([]byte{'A'}, size)
		for i := range 100 {
			cut := int64((i * 7919) % size)
			if err := p.Ftruncate(fd, cut); err != nil {
				x.add("writer: ftruncate %d: %v", cut, errName(err))
				return
			}
			if err := p.Ftruncate(fd, int64(size)); err != nil {
				x.add("writer: ftruncate up: %v", errName(err))
				return
			}
			if _, err := p.Pwrite(fd, full[:size/2], int64(size/4)); err != nil {
				x.add("writer: pwrite: %v", errName(err))
				return
			}
		}
	}()
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.user(0, 0)
			fd, err := p.Open(e.path("f"), syscall.O_RDONLY, 0)
			if err != nil {
				x.add("reader %d: open: %v", r, errName(err))
				return
			}
			defer p.Close(fd)
			buf := make([]byte, size+bs)
			for {
				select {
				case <-done:
					return
				default:
				}
				n, err := p.Pread(fd, buf, 0)
				if err != nil {
					x.add("reader %d: pread: %v", r, errName(err))
					return
				}
				for i, c := range buf[:n] {
					if c != 'A' && c != 0 {
						x.add("reader %d: byte %d is %#02x, want 'A' or 0", r, i, c)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	x.report(e)
	got := e.readFile("f")
	if len(got) != size {
		e.fatalf("final size %d, want %d", len(got), size)
	}
	for i, c := range got {
		inMiddle := i >= size/4 && i < size/4+size/2
		if inMiddle && c != 'A' || !inMiddle && c != 0 && c != 'A' {
			e.fatalf("final byte %d is %#02x", i, c)
		}
	}
}
