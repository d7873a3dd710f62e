package vm

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/tests/p9raw"
)

// workloadChecks are the CHECK names workload.sh prints on every transport.
var workloadChecks = []string{
	"mount", "copy_in", "ls_lR", "find_counts", "copy_out",
	"mkdir_deep", "mv", "rm_r", "links", "chmod_chown", "touch_d", "truncate",
	"dd", "df_stat", "unlinked", "flock", "getlk", "nonroot", "remount", "readdir", "umount",
}

// matrixChecks are the extra mounts workload.sh makes when MATRIX=1.
func matrixChecks() []string {
	var names []string
	for _, cache := range []string{"none", "loose", "mmap"} {
		for _, msize := range []int{8192, 131072, 1048576} {
			names = append(names, fmt.Sprintf("matrix_%s_%d", cache, msize))
		}
	}
	return names
}

// manyEntries is how many files workload.sh leaves in w/many.
const manyEntries = 1700

// TestLinuxClientTCP mounts with trans=tcp through QEMU user networking: the
// guest's 10.0.2.2:PORT reaches the server's 127.0.0.1:PORT. It also runs
// every cache mode with msize 8 KiB, 128 KiB and 1 MiB.
func TestLinuxClientTCP(t *testing.T) {
	t.Parallel()
	runWorkloadOn(t, "tcp", false)
}

// TestLinuxClientVirtioSerialExt2 mounts with "rump9p guest-mount
// --virtio-port" (trans=fd on a socketpair that guest-mount relays to a
// virtio-serial port whose chardev is the server's unix socket; the guest
// has no network) an ext2 image served by rump9p's own driver, runs the
// workload, and requires e2fsck -fn to find the image clean after the
// server stops. (diod serves a host directory instead.)
func TestLinuxClientVirtioSerialExt2(t *testing.T) {
	t.Parallel()
	runWorkloadOn(t, "fd", serverKind() == "rump9p")
}

func runWorkloadOn(t *testing.T, transport string, ext2 bool) {
	name := transport
	if ext2 {
		name += "-ext2"
	}
	s := startServerImage(t, name, ext2)
	port := s.port
	env := map[string]string{
		"TRANSPORT": transport,
		"HOST":      "10.0.2.2",
		"ANAME":     s.aname,
		"MSIZE":     "131072",
		"MATRIX":    "0",
		// A check still running after this many seconds is killed and
		// fails (lib.sh), long before vmTimeout.
		"CHECK_TIMEOUT": "600",
		"SERVER":        s.kind,
	}
	cfg := vmConfig{name: name, env: env}
	want := append([]string(nil), workloadChecks...)
	switch transport {
	case "tcp":
		cfg.net = true
		if !ext2 { // the cache/msize matrix is the transport's, run once
			env["MATRIX"] = "1"
			want = append(want, matrixChecks()...)
		}
		addr := startFaultProxy(t, "tcp", fmt.Sprintf("127.0.0.1:%d", s.port), "127.0.0.1:0")
		_, p, _ := net.SplitHostPort(addr)
		port, _ = strconv.Atoi(p)
	case "fd":
		cfg.serial = startFaultProxy(t, "unix", s.sock, faultSocketPath(s.sock))
		env["MSIZE"] = "1048576" // messages far larger than the relay's pipes
	}
	env["PORT"] = strconv.Itoa(port)
	res := bootGuest(t, cfg)
	if err := s.alive(); err != nil {
		t.Errorf("server died during the guest run: %v", err)
	}
	res.assertChecks(t, want)
	defer func() {
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", s.kind, tail(s.out.String(), 40))
		}
	}()

	// The host's view of what the guest left behind: through a 9P client
	// while rump9p (tmpfs only) still runs, or the exported directory after
	// diod stops. The 9P client takes the guest's path (through the fault
	// proxy, if any) so that a protocol-level fault is seen here too.
	var view *hostView
	var err error
	if s.kind == "diod" {
		s.stop(t)
		view, err = dirView(s.export)
	} else {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		view, err = p9View(addr, s.aname)
		t.Run("host_qid_version", func(t *testing.T) { checkQIDVersion(t, addr, s.aname) })
		s.stop(t)
	}
	checkHostSide(t, res, s.image, view, err)
}

// checkHostSide checks, after the server stopped, what the guest left: the
// image passes e2fsck -fn (if there is one), and the host's view (or its
// error) matches the guest's manifest.
func checkHostSide(t *testing.T, res *guestResult, image string, view *hostView, err error) {
	t.Helper()
	if image != "" {
		t.Run("host_e2fsck", func(t *testing.T) {
			if out, err := exec.Command("e2fsck", "-fn", image).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn after the guest run: %v\n%s", err, out)
			}
		})
	}
	t.Run("host_view", func(t *testing.T) {
		if err != nil {
			t.Fatalf("host view: %v", err)
		}
		compareManifest(t, "stat", res.mstat, view.mstat)
		compareManifest(t, "md5", res.msum, view.msum)
		if view.many != manyEntries {
			t.Errorf("host lists %d entries in w/many, want %d", view.many, manyEntries)
		}
	})
}

// hostView is the host's listing of w/tree in the guest's manifest format.
type hostView struct {
	mstat []string // "./path|type|perm|size|uid|gid|mtime", as busybox stat -c prints
	msum  []string // "<md5>  ./path" for regular files, as md5sum prints
	many  int      // entries in w/many, without . and ..
}

func statType(mode uint32, size uint64) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return "directory"
	case syscall.S_IFLNK:
		return "symbolic link"
	case syscall.S_IFREG:
		if size == 0 {
			return "regular empty file"
		}
		return "regular file"
	}
	return fmt.Sprintf("type %o", mode&syscall.S_IFMT)
}

func statLine(rel string, mode uint32, size uint64, uid, gid uint32, mtime uint64) string {
	return fmt.Sprintf("%s|%s|%o|%d|%d|%d|%d", rel, statType(mode, size), mode&0o7777, size, uid, gid, mtime)
}

// dirView lists the exported host directory (diod).
func dirView(export string) (*hostView, error) {
	v := &hostView{}
	root := filepath.Join(export, "w", "tree")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "."
		if p != root {
			rel = "./" + filepath.ToSlash(p[len(root)+1:])
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		v.mstat = append(v.mstat, statLine(rel, st.Mode, uint64(st.Size), st.Uid, st.Gid, uint64(st.Mtim.Sec)))
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := md5.Sum(b)
			v.msum = append(v.msum, hex.EncodeToString(sum[:])+"  "+rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(export, "w", "many"))
	if err != nil {
		return nil, err
	}
	v.many = len(ents)
	return v, nil
}

// p9View lists w/tree through 9P2000.L on the server's TCP port, attached
// as root.
func p9View(addr, aname string) (*hostView, error) {
	c, root, err := p9raw.DialClient("tcp", addr, aname, 0)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	v := &hostView{}
	tree, err := c.Walk(root, "w", "tree")
	if err != nil {
		return nil, fmt.Errorf("walk w/tree: %w", err)
	}
	if err := p9Walk(c, v, tree, "."); err != nil {
		return nil, err
	}
	many, err := c.Walk(root, "w", "many")
	if err != nil {
		return nil, fmt.Errorf("walk w/many: %w", err)
	}
	defer c.Clunk(many)
	names, err := p9Readdir(c, many)
	if err != nil {
		return nil, fmt.Errorf("readdir w/many: %w", err)
	}
	v.many = len(names)
	return v, nil
}

// p9Walk records fid (at rel) and, for a directory, everything below it.
// It clunks fid.
func p9Walk(c *p9raw.Client, v *hostView, fid uint32, rel string) error {
	defer c.Clunk(fid)
	a, err := c.Getattr(fid)
	if err != nil {
		return fmt.Errorf("getattr %s: %w", rel, err)
	}
	v.mstat = append(v.mstat, statLine(rel, a.Mode, a.Size, a.UID, a.GID, a.Mtime))
	switch a.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		of, err := c.Walk(fid)
		if err != nil {
			return fmt.Errorf("clone %s: %w", rel, err)
		}
		defer c.Clunk(of)
		if err := c.Lopen(of, syscall.O_RDONLY); err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		h := md5.New()
		if err := c.ReadAll(of, h); err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		v.msum = append(v.msum, hex.EncodeToString(h.Sum(nil))+"  "+rel)
	case syscall.S_IFDIR:
		names, err := p9Readdir(c, fid)
		if err != nil {
			return fmt.Errorf("readdir %s: %w", rel, err)
		}
		for _, name := range names {
			child, err := c.Walk(fid, name)
			if err != nil {
				return fmt.Errorf("walk %s/%s: %w", rel, name, err)
			}
			if err := p9Walk(c, v, child, rel+"/"+name); err != nil {
				return err
			}
		}
	}
	return nil
}

// p9Readdir lists directory fid (through an opened clone) without . and ..,
// failing on a repeated name, which a broken readdir offset would produce.
func p9Readdir(c *p9raw.Client, fid uint32) ([]string, error) {
	d, err := c.Walk(fid)
	if err != nil {
		return nil, err
	}
	defer c.Clunk(d)
	if err := c.Lopen(d, syscall.O_RDONLY); err != nil {
		return nil, err
	}
	ents, err := c.Readdir(d)
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("entry %q listed twice", e.Name)
		}
		seen[e.Name] = true
		names = append(names, e.Name)
	}
	return names, nil
}

// checkQIDVersion checks the QID contract of DESIGN.md on what the guest
// left: qid.version is non-zero and changes when the file changes (Linux 6.1
// itself hardly looks at it outside cache=fscache, so the guest cannot).
func checkQIDVersion(t *testing.T, addr, aname string) {
	c, root, err := p9raw.DialClient("tcp", addr, aname, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range [][]string{{"w"}, {"w", "tree"}, {"w", "tree", "d1", "f001.txt"}, {"w", "tree", "dangling"}} {
		f, err := c.Walk(root, p...)
		if err != nil {
			t.Fatalf("walk %q: %v", p, err)
		}
		a, err := c.Getattr(f)
		c.Clunk(f)
		if err != nil {
			t.Fatalf("getattr %q: %v", p, err)
		}
		if a.QIDVersion == 0 {
			t.Errorf("%s: qid.version is 0", strings.Join(p, "/"))
		}
	}
	f, err := c.Walk(root, "w", "tree", "empty")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Clunk(f)
	before, err := c.Getattr(f)
	if err != nil {
		t.Fatal(err)
	}
	of, err := c.Walk(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Lopen(of, syscall.O_WRONLY); err != nil {
		t.Fatal(err)
	}
	werr := c.Write(of, 0, []byte("changed by the host\n"))
	c.Clunk(of)
	if werr != nil {
		t.Fatal(werr)
	}
	after, err := c.Getattr(f)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size == before.Size || after.QIDVersion == before.QIDVersion {
		t.Errorf("after a write: size %d -> %d, qid.version %d -> %d; want both changed",
			before.Size, after.Size, before.QIDVersion, after.QIDVersion)
	}
}

// compareManifest reports lines the guest printed that the host does not
// see and the reverse.
func compareManifest(t *testing.T, what string, guest, host []string) {
	t.Helper()
	if len(guest) == 0 {
		t.Errorf("%s: %v", what, errNoManifest)
		return
	}
	g := map[string]bool{}
	for _, l := range guest {
		g[l] = true
	}
	h := map[string]bool{}
	for _, l := range host {
		h[l] = true
	}
	var onlyG, onlyH []string
	for l := range g {
		if !h[l] {
			onlyG = append(onlyG, l)
		}
	}
	for l := range h {
		if !g[l] {
			onlyH = append(onlyH, l)
		}
	}
	sort.Strings(onlyG)
	sort.Strings(onlyH)
	const show = 15
	if len(onlyG) > show {
		onlyG = onlyG[:show]
	}
	if len(onlyH) > show {
		onlyH = onlyH[:show]
	}
	if len(onlyG)+len(onlyH) > 0 {
		t.Errorf("%s manifest: guest %d lines, host %d lines\nonly in the guest's view:\n  %s\nonly in the host's view:\n  %s",
			what, len(guest), len(host), strings.Join(onlyG, "\n  "), strings.Join(onlyH, "\n  "))
	}
}

// TestLinuxClientSessionReset: over one virtio-serial connection, the guest
// mounts, writes and unmounts three times, then reboots with a mount in
// place and a lock held (QEMU keeps the chardev connected across the guest
// reset), and mounts once more (guest/reset.sh). Each mount after the first
// is a Tversion on a live connection, which must reset the session: a
// server that does not, hangs the mount, which the guest reports as a
// failed check after guest-mount's --timeout.
func TestLinuxClientSessionReset(t *testing.T) {
	t.Parallel()
	s := startServer(t, "reset")
	res := bootGuest(t, vmConfig{
		name:   "reset",
		script: "guest/reset.sh",
		env:    map[string]string{"ANAME": s.aname, "MOUNT_TIMEOUT": "30", "CHECK_TIMEOUT": "120"},
		serial: s.sock,
		reboot: true,
	})
	if err := s.alive(); err != nil {
		t.Errorf("server died during the guest run: %v", err)
	}
	res.assertChecks(t, []string{"round_1", "round_2", "round_3", "before_reboot", "after_reboot"})
	if len(res.bootAt) != 2 {
		t.Errorf("guest booted %d times, want 2 (one reboot)", len(res.bootAt))
	}
	if t.Failed() {
		t.Logf("%s output (tail):\n%s", s.kind, tail(s.out.String(), 40))
	}
}
