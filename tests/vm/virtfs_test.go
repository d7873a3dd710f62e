package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rump9p/rump9p/tests/hosttools"
)

// startFuseMount mounts a fresh ext2 image on the host with "rump9p mount"
// (FUSE) and waits until the mount is in place; the returned server's
// export is the mount point, its image the image. It is stopped (SIGINT:
// sync, unmount, image marked clean) at cleanup.
func startFuseMount(t testing.TB, name string) *server {
	t.Helper()
	dir := filepath.Join(sharedDir(t), name)
	s := &server{kind: "rump9p-mount", export: filepath.Join(dir, "mnt"), out: &syncBuffer{}}
	if err := os.MkdirAll(s.export, 0o755); err != nil {
		t.Fatal(err)
	}
	s.image = makeExt2(t, dir)
	s.cmd = exec.Command(buildRump9p(t), "mount", s.image, s.export)
	s.run(t, dir)
	deadline := time.Now().Add(20 * time.Second)
	for !hosttools.IsMountPoint(s.export) {
		if err := s.alive(); err != nil {
			t.Fatalf("rump9p mount ended before mounting: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("rump9p mount: %s not mounted after 20 s\n%s", s.export, s.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("rump9p mount: %s on %s", s.image, s.export)
	return s
}

// TestLinuxClientVirtfs: the guest reaches rump9p through stock QEMU's own
// virtio-9p server (-virtfs local, security_model=passthrough) reading
// rump9p's FUSE mount of an ext2 image, mounts trans=virtio, and runs the
// workload twice in one boot, with cache=none and with cache=loose
// (guest/twice.sh). Then the host compares the last run's manifest with
// the FUSE mount, stops rump9p mount, and requires e2fsck -fn to find the
// image clean.
func TestLinuxClientVirtfs(t *testing.T) {
	t.Parallel()
	runVirtfs(t, "passthrough")
}

// TestLinuxClientVirtfsMapped is TestLinuxClientVirtfs with
// security_model=mapped-xattr: QEMU creates every file as root with mode
// 0600 (0700 for directories; symbolic links and device nodes become
// regular files) and keeps the guest's owner, group and mode in
// user.virtfs.uid, .gid, .mode (and .rdev) extended attributes, which
// rump9p stores in the ext2 image's inodes and attribute blocks. The host
// view is read through those attributes.
func TestLinuxClientVirtfsMapped(t *testing.T) {
	t.Parallel()
	runVirtfs(t, "mapped-xattr")
}

func runVirtfs(t *testing.T, model string) {
	if serverKind() != "rump9p" {
		t.Skipf("RUMP9P_VM_SERVER=%s: this test runs rump9p mount", serverKind())
	}
	name := "virtfs"
	if model != "passthrough" {
		name += "-" + model
	}
	s := startFuseMount(t, name)
	caches := []string{"none", "loose"}
	res := bootGuest(t, vmConfig{
		name:   name,
		script: "guest/twice.sh",
		env: map[string]string{
			"TRANSPORT":     "virtio",
			"ANAME":         "img", // the mount tag
			"MSIZE":         "512000",
			"MATRIX":        "0",
			"CHECK_TIMEOUT": "600",
			"CACHES":        strings.Join(caches, " "),
		},
		virtfs: "local,path=" + s.export + ",mount_tag=img,security_model=" + model + ",id=fs0",
	})
	var want []string
	for _, c := range caches {
		for _, name := range workloadChecks {
			want = append(want, c+"_"+name)
		}
	}
	res.assertChecks(t, want)
	defer func() {
		if t.Failed() {
			t.Logf("rump9p mount output (tail):\n%s", tail(s.out.String(), 40))
		}
	}()
	view, err := dirView(s.export)
	if err == nil && model == "mapped-xattr" {
		view, err = mappedView(s.export, view)
	}
	s.stop(t)
	checkHostSide(t, res, s.image, view, err)
}

// mappedView turns dirView's listing of a mapped-xattr export into what
// the guest sees: type, permissions, owner and group from the
// user.virtfs.* attributes where QEMU set them, and checksums only of
// what the guest sees as regular files.
func mappedView(export string, v *hostView) (*hostView, error) {
	root := filepath.Join(export, "w", "tree")
	attr := func(p, name string) (uint32, bool, error) {
		var b [4]byte
		n, err := unix.Lgetxattr(p, "user.virtfs."+name, b[:])
		if errors.Is(err, unix.ENODATA) {
			return 0, false, nil
		}
		if err != nil || n != 4 {
			return 0, false, fmt.Errorf("user.virtfs.%s of %s: %d bytes, %v", name, p, n, err)
		}
		return binary.LittleEndian.Uint32(b[:]), true, nil
	}
	out := &hostView{many: v.many}
	regular := map[string]bool{}
	for _, line := range v.mstat {
		f := strings.Split(line, "|") // path|type|perm|size|uid|gid|mtime
		if len(f) != 7 {
			return nil, fmt.Errorf("unexpected manifest line %q", line)
		}
		p := filepath.Join(root, filepath.FromSlash(f[0]))
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil, err
		}
		mode, uid, gid := st.Mode, st.Uid, st.Gid
		for _, a := range []struct {
			name string
			dst  *uint32
		}{{"mode", &mode}, {"uid", &uid}, {"gid", &gid}} {
			x, ok, err := attr(p, a.name)
			if err != nil {
				return nil, err
			}
			if ok {
				*a.dst = x
			}
		}
		size, _ := strconv.ParseUint(f[3], 10, 64)
		mtime, _ := strconv.ParseUint(f[6], 10, 64)
		out.mstat = append(out.mstat, statLine(f[0], mode, size, uid, gid, mtime))
		regular[f[0]] = mode&unix.S_IFMT == unix.S_IFREG
	}
	for _, line := range v.msum {
		if _, rel, ok := strings.Cut(line, "  "); ok && regular[rel] {
			out.msum = append(out.msum, line)
		}
	}
	return out, nil
}
