package vm

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	for !isMountPoint(s.export) {
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

// isMountPoint reports whether dir is a mount point (in /proc/self/mounts).
func isMountPoint(dir string) bool {
	fh, err := os.Open("/proc/self/mounts")
	if err != nil {
		return false
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// TestLinuxClientVirtfs: the guest reaches rump9p through stock QEMU's own
// virtio-9p server (-virtfs local, security_model=passthrough) reading
// rump9p's FUSE mount of an ext2 image, mounts trans=virtio, and runs the
// workload twice in one boot, with cache=none and with cache=loose
// (guest/twice.sh). Then the host compares the last run's manifest with
// the FUSE mount, stops rump9p mount, and requires e2fsck -fn to find the
// image clean.
//
// security_model=mapped-xattr is not run: QEMU then keeps owners and modes
// in user.virtfs.* xattrs, and rump9p serves xattrs read-only (a create
// fails with ENOTSUP).
func TestLinuxClientVirtfs(t *testing.T) {
	if serverKind() != "rump9p" {
		t.Skipf("RUMP9P_VM_SERVER=%s: this test runs rump9p mount", serverKind())
	}
	t.Parallel()
	s := startFuseMount(t, "virtfs")
	caches := []string{"none", "loose"}
	res := bootGuest(t, vmConfig{
		name:   "virtfs",
		script: "guest/twice.sh",
		env: map[string]string{
			"TRANSPORT":     "virtio",
			"ANAME":         "img", // the mount tag
			"MSIZE":         "512000",
			"MATRIX":        "0",
			"CHECK_TIMEOUT": "600",
			"CACHES":        strings.Join(caches, " "),
		},
		virtfs: "local,path=" + s.export + ",mount_tag=img,security_model=passthrough,id=fs0",
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
	s.stop(t)
	checkHostSide(t, res, s.image, view, err)
}
