package ext2fs

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// mountDirect mounts img with the driver itself (no kernel) and returns
// the FS or the error.
func mountDirect(t *testing.T, img string, ro bool, opts map[string]string, logbuf *bytes.Buffer) (vnodeops.FS, error) {
	t.Helper()
	dev, err := blkdev.Open(img, ro)
	if err != nil {
		t.Fatal(err)
	}
	var log *slog.Logger
	if logbuf != nil {
		log = slog.New(slog.NewTextHandler(logbuf, nil))
	} else {
		log = slog.New(slog.DiscardHandler)
	}
	fs, err := Mount(vnodeops.MountArgs{Name: "test", Dev: dev, ReadOnly: ro, Options: opts, Log: log})
	if err != nil {
		dev.Close()
	}
	return fs, err
}

func TestFeaturePolicy(t *testing.T) {
	dir := t.TempDir()
	ext4 := filepath.Join(dir, "ext4")
	mkfs(t, ext4, "16M", "", "-t", "ext4", "-O", "metadata_csum,64bit")
	_, err := mountDirect(t, ext4, false, nil, nil)
	if err == nil || !isErrno(err, syscall.EROFS) || !strings.Contains(err.Error(), "extent") {
		t.Fatalf("rw mount of ext4: %v; want EROFS naming the extent feature", err)
	}
	// With ro_fallback the mount succeeds read-only and says why.
	var logbuf bytes.Buffer
	fs, err := mountDirect(t, ext4, false, map[string]string{"ro_fallback": "true"}, &logbuf)
	if err != nil {
		t.Fatalf("ro_fallback mount: %v", err)
	}
	st, _ := fs.Statvfs()
	if st.Flags&vnodeops.StRdonly == 0 || !strings.Contains(logbuf.String(), "extent") {
		t.Fatalf("fallback not read-only or not logged: %+v %s", st, logbuf.String())
	}
	root, err := fs.VGet(fs.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.(vnodeops.Writer).Create("x", 0o644, 0, 0); !isErrno(err, syscall.EROFS) {
		t.Fatalf("create on fallback mount: %v", err)
	}
	root.Inactive()
	root.Reclaim()
	fs.Unmount(false)

	// ext3 with a clean journal mounts read-write and the journal stays.
	ext3 := filepath.Join(dir, "ext3")
	mkfs(t, ext3, "32M", "", "-t", "ext3")
	before := debugfs(t, ext3, false, "stat <8>")
	k, p := boot(t, ext3, false, nil)
	writeAll(t, p, "/mnt/f", []byte("on ext3"), 0o644)
	if err := p.Mkdir("/mnt/d", 0o755); err != nil {
		t.Fatal(err)
	}
	k.Shutdown()
	fsck(t, ext3)
	after := debugfs(t, ext3, false, "stat <8>")
	if blocksOf(before) != blocksOf(after) {
		t.Fatalf("journal inode changed:\n%s\n%s", before, after)
	}

	// needs_recovery: read-write refused with a message; read-only works
	// and logs that the journal is not replayed.
	debugfs(t, ext3, true, "feature needs_recovery")
	_, err = mountDirect(t, ext3, false, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "recovery") {
		t.Fatalf("rw mount with needs_recovery: %v", err)
	}
	logbuf.Reset()
	fs, err = mountDirect(t, ext3, true, nil, &logbuf)
	if err != nil {
		t.Fatalf("ro mount with needs_recovery: %v", err)
	}
	if !strings.Contains(logbuf.String(), "replaying") || !strings.Contains(logbuf.String(), "journal") {
		t.Fatalf("no log line about the journal: %q", logbuf.String())
	}
	fs.Unmount(false)

	// Unknown options are named.
	_, err = mountDirect(t, ext4, true, map[string]string{"bogus": "1", "zzz": "2"}, nil)
	if err == nil || !strings.Contains(err.Error(), "bogus") || !strings.Contains(err.Error(), "zzz") {
		t.Fatalf("unknown options: %v", err)
	}
	// An unknown incompatible feature refuses even read-only.
	enc := filepath.Join(dir, "enc")
	mkfs(t, enc, "16M", "", "-t", "ext2")
	debugfs(t, enc, true, "feature encrypt")
	if _, err := mountDirect(t, enc, true, nil, nil); err == nil || !strings.Contains(err.Error(), "encrypt") {
		t.Fatalf("mount with encrypt: %v", err)
	}
}

func blocksOf(stat string) string {
	i := strings.Index(stat, "BLOCKS:")
	if i < 0 {
		i = strings.Index(stat, "EXTENTS:")
	}
	if i < 0 {
		return stat
	}
	return stat[i:]
}

// TestStateAndCounts checks that an rw mount marks the file system not
// clean while mounted, and that free counts stay exact.
func TestStateAndCounts(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "16M", "", "-t", "ext2", "-b", "1024")
	k, p := boot(t, img, false, nil)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	out := debugfs(t, img, false, "stats")
	if !strings.Contains(out, "Filesystem state:         not clean") {
		t.Fatalf("state while mounted:\n%.500s", out)
	}
	for i := 0; i < 50; i++ {
		writeAll(t, p, fmt.Sprintf("/mnt/f%d", i), pattern(i*700, uint64(i)), 0o644)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	k.Shutdown()
	fsck(t, img)
}

// TestFull fills a small image: ENOSPC on blocks and on inodes, then
// frees and refills; e2fsck must find exact counts.
func TestFull(t *testing.T) {
	for _, bsz := range []string{"1024", "4096"} {
		t.Run(bsz, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mkfs(t, img, "4M", "", "-t", "ext2", "-b", bsz, "-N", "64", "-m", "5")
			k, p := boot(t, img, false, nil)
			fd, err := p.Open("/mnt/big", syscall.O_CREAT|syscall.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			var total int
			var werr error
			for total < 8<<20 {
				n, err := p.Write(fd, buf)
				total += n
				if err != nil {
					werr = err
					break
				}
			}
			if !isErrno(werr, syscall.ENOSPC) {
				t.Fatalf("filling: %v after %d bytes", werr, total)
			}
			p.Close(fd)
			st, _ := p.Statvfs("/mnt")
			if st.Bfree != 0 {
				t.Fatalf("root filled the disk but %d blocks are free", st.Bfree)
			}
			// No block for a new directory, nor for a directory block:
			// the inode just allocated is given back.
			if err := p.Mkdir("/mnt/nodir", 0o755); !isErrno(err, syscall.ENOSPC) {
				t.Fatalf("mkdir on a full disk: %v", err)
			}
			var cerr error
			for i := 0; i < 60 && cerr == nil; i++ {
				fd, err := p.Open(fmt.Sprintf("/mnt/a-rather-long-file-name-to-fill-the-root-block-%d", i), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
				if err == nil {
					p.Close(fd)
				}
				cerr = err
			}
			if !isErrno(cerr, syscall.ENOSPC) {
				t.Fatalf("filling the root directory on a full disk: %v", cerr)
			}
			if err := p.Symlink(strings.Repeat("s", 100), "/mnt/slowlink"); !isErrno(err, syscall.ENOSPC) {
				t.Fatalf("slow symlink on a full disk: %v", err)
			}
			// Inodes run out too.
			p.Truncate("/mnt/big", 1<<20)
			var ierr error
			for i := 0; i < 200; i++ {
				fd, err := p.Open(fmt.Sprintf("/mnt/i%d", i), syscall.O_CREAT|syscall.O_WRONLY, 0o644)
				if err != nil {
					ierr = err
					break
				}
				p.Close(fd)
			}
			if !isErrno(ierr, syscall.ENOSPC) {
				t.Fatalf("inode exhaustion: %v", ierr)
			}
			if err := p.Mkdir("/mnt/nodir", 0o755); !isErrno(err, syscall.ENOSPC) {
				t.Fatalf("mkdir without inodes: %v", err)
			}
			k.Shutdown()
			fsck(t, img)
		})
	}
}

// TestReservedBlocks: a file owned by an ordinary user cannot take the
// root-reserved blocks; a root-owned one can.
func TestReservedBlocks(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "4M", "", "-t", "ext2", "-b", "1024", "-m", "20")
	k, p := boot(t, img, false, nil)
	if err := p.Mkdir("/mnt/u", 0o777); err != nil {
		t.Fatal(err)
	}
	user := k.NewProc(vnodeops.Cred{UID: 1000, GID: 1000})
	fill := func(p *rumpcore.Proc, path string) (int, error) {
		fd, err := p.Open(path, syscall.O_CREAT|syscall.O_WRONLY, 0o644)
		if err != nil {
			return 0, err
		}
		defer p.Close(fd)
		buf := make([]byte, 16<<10)
		total := 0
		for {
			n, err := p.Write(fd, buf)
			total += n
			if err != nil {
				return total, err
			}
		}
	}
	_, err := fill(user, "/mnt/u/userfile")
	if !isErrno(err, syscall.ENOSPC) {
		t.Fatalf("user fill: %v", err)
	}
	st, _ := p.Statvfs("/mnt")
	if st.Bavail != 0 || st.Bfree == 0 {
		t.Fatalf("after user fill: bfree %d bavail %d", st.Bfree, st.Bavail)
	}
	n, err := fill(p, "/mnt/rootfile")
	if !isErrno(err, syscall.ENOSPC) || n == 0 {
		t.Fatalf("root fill: %d %v", n, err)
	}
	k.Shutdown()
	fsck(t, img)
}

// TestHtreeWrite adds and removes entries in an indexed directory; the
// index flag is cleared and e2fsck stays clean.
func TestHtreeWrite(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 3000; i++ {
		writeHost(t, filepath.Join(src, "big", fmt.Sprintf("name-%05d", i)))
	}
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "32M", src, "-t", "ext2", "-b", "1024", "-O", "dir_index")
	indexDirs(t, img)
	if out := debugfs(t, img, false, "htree_dump /big"); !strings.Contains(out, "Root node dump") {
		t.Fatalf("not indexed: %.200s", out)
	}
	k, p := boot(t, img, false, nil)
	for i := 0; i < 3000; i += 3 {
		if err := p.Unlink(fmt.Sprintf("/mnt/big/name-%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 500; i++ {
		writeAll(t, p, fmt.Sprintf("/mnt/big/new-%d", i), nil, 0o644)
	}
	ds, err := listDir(p, "/mnt/big", 77)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2+2000+500 {
		t.Fatalf("%d entries", len(ds))
	}
	k.Shutdown()
	fsck(t, img)
	if out := debugfs(t, img, false, "htree_dump /big"); strings.Contains(out, "Root node dump") {
		t.Fatalf("index flag still set after writing")
	}
}

func writeHost(t *testing.T, p string) {
	t.Helper()
	if err := mkdirAllWrite(p); err != nil {
		t.Fatal(err)
	}
}

// TestReaddirCookies: resuming at any cookie, while entries are removed
// and added, never repeats or skips a surviving entry.
func TestReaddirCookies(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "16M", "", "-t", "ext2", "-b", "1024")
	k, p := boot(t, img, false, nil)
	if err := p.Mkdir("/mnt/d", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		writeAll(t, p, fmt.Sprintf("/mnt/d/f%03d", i), nil, 0o644)
	}
	dv := walkTo(t, k, "/mnt/d")
	defer dv.Release()
	seen := map[string]int{}
	var cookie uint64
	removed := map[string]bool{}
	step := 0
	for {
		var batch []vnodeops.Dirent
		err := dv.Readdir(cookie, func(d vnodeops.Dirent) bool {
			if len(batch) == 7 {
				return false
			}
			batch = append(batch, d)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		for _, d := range batch {
			seen[d.Name]++
			if d.Next == 0 || d.Next <= cookie {
				t.Fatalf("entry %q: Next %d after cookie %d", d.Name, d.Next, cookie)
			}
		}
		cookie = batch[len(batch)-1].Next
		// Remove some entries (seen and unseen), add new ones.
		step++
		for j := 0; j < 3; j++ {
			name := fmt.Sprintf("f%03d", (step*37+j*101)%300)
			if !removed[name] {
				if err := p.Unlink("/mnt/d/" + name); err == nil {
					removed[name] = true
				}
			}
		}
		writeAll(t, p, fmt.Sprintf("/mnt/d/new%03d", step), nil, 0o644)
	}
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("f%03d", i)
		if seen[name] > 1 {
			t.Fatalf("%s returned %d times", name, seen[name])
		}
		if seen[name] == 0 && !removed[name] {
			t.Fatalf("surviving entry %s skipped", name)
		}
	}
	if seen["."] != 1 || seen[".."] != 1 {
		t.Fatalf(". and .. seen %d, %d times", seen["."], seen[".."])
	}
	k.Shutdown()
	fsck(t, img)
}

// TestConcurrent runs readers and writers on one mount at once (for
// -race) and checks the image afterwards.
func TestConcurrent(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, img, "64M", "", "-t", "ext2", "-b", "4096")
	k, p := boot(t, img, false, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			pp := k.NewProc(vnodeops.Root)
			d := fmt.Sprintf("/mnt/w%d", w)
			if err := pp.Mkdir(d, 0o755); err != nil {
				errs <- err
				return
			}
			for i := 0; i < 40; i++ {
				f := fmt.Sprintf("%s/f%d", d, i)
				data := pattern(1000+i*997, uint64(w*100+i))
				fd, err := pp.Open(f, syscall.O_CREAT|syscall.O_RDWR, 0o644)
				if err != nil {
					errs <- err
					return
				}
				pp.Write(fd, data)
				got := make([]byte, len(data))
				n, err := pp.Pread(fd, got, 0)
				pp.Close(fd)
				if err != nil || n != len(data) || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("%s: read back %d, %v", f, n, err)
					return
				}
				if i%3 == 0 {
					pp.Rename(f, f+".r")
				}
				if i%5 == 0 {
					pp.Unlink(f + ".r")
				}
				listDir(pp, d, 5)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_ = p
	k.Shutdown()
	fsck(t, img)
}
