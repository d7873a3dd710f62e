package main

import (
	"bytes"
	"fmt"
	"github.com/rump9p/rump9p/tests/hosttools"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	fuseBinOnce sync.Once
	fuseBin     string
	fuseBinErr  error
)

// mountBinary builds the rump9p binary once for the tests that run
// "rump9p mount" as a process, and fails where FUSE cannot be used.
func mountBinary(t *testing.T) string {
	t.Helper()
	hosttools.NeedFUSE(t)
	hosttools.NeedAll(t, "mke2fs", "e2fsck", "debugfs")
	fuseBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rump9p-mount-test")
		if err != nil {
			fuseBinErr = err
			return
		}
		fuseBin = filepath.Join(dir, "rump9p")
		out, err := exec.Command("go", "build", "-o", fuseBin, ".").CombinedOutput()
		if err != nil {
			fuseBinErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if fuseBinErr != nil {
		t.Fatalf("building rump9p: %v", fuseBinErr)
	}
	return fuseBin
}

// mkext2 makes an 8 MiB ext2 image holding the file hello.
func mkext2(t *testing.T) string {
	t.Helper()
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "hello"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", seed, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v: %s", err, out)
	}
	return img
}

// mountProc is a running "rump9p mount".
type mountProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startMount runs rump9p mount with args and waits until want appears
// below the mount point (the last argument).
func startMount(t *testing.T, bin, want string, args ...string) *mountProc {
	t.Helper()
	m := &mountProc{cmd: exec.Command(bin, append([]string{"mount"}, args...)...), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	m.cmd.Stderr = m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	mnt := args[len(args)-1]
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil {
			m.cmd.Process.Kill()
			<-m.done
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(mnt, want)); err == nil {
			return m
		}
		select {
		case err := <-m.done:
			t.Fatalf("rump9p mount ended before mounting: %v\n%s", err, m.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear\n%s", want, m.stderr)
		}
	}
}

// wait waits for the process to end and checks its exit status.
func (m *mountProc) wait(t *testing.T, want int) {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		t.Fatalf("rump9p mount did not end\n%s", m.stderr)
	}
	if got := m.cmd.ProcessState.ExitCode(); got != want {
		t.Fatalf("exit status %d, want %d\n%s", got, want, m.stderr)
	}
}

func e2fsckClean(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

func TestFUSEMountSignalAndLock(t *testing.T) {
	bin := mountBinary(t)
	img := mkext2(t)
	mnt := t.TempDir()
	m := startMount(t, bin, "hello", img, mnt)

	data := bytes.Repeat([]byte("through FUSE\n"), 5000)
	if err := os.MkdirAll(filepath.Join(mnt, "d/e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "d/e/big"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	// A second rump9p on the same image: refused, naming the image.
	out, err := exec.Command(bin, "mount", img, t.TempDir()).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), img) || !strings.Contains(string(out), "locked") {
		t.Fatalf("second mount of a locked image: status %d, output %s", code, out)
	}

	m.cmd.Process.Signal(syscall.SIGTERM)
	m.wait(t, 0)
	e2fsckClean(t, img)
	got, err := exec.Command("debugfs", "-R", "cat /d/e/big", img).Output()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("debugfs cat /d/e/big: %d bytes, want %d (%v)", len(got), len(data), err)
	}
	if hosttools.IsMountPoint(mnt) {
		t.Fatalf("%s still mounted after exit", mnt)
	}
}

func TestFUSEMountFusermountEnds(t *testing.T) {
	bin := mountBinary(t)
	img := mkext2(t)
	mnt := t.TempDir()
	m := startMount(t, bin, "hello", img, mnt)
	if err := os.WriteFile(filepath.Join(mnt, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v %s", err, out)
	}
	m.wait(t, 0)
	e2fsckClean(t, img)
}

// TestFUSEMountBusy: SIGTERM while a host process holds a file open in
// the mount: a clean end within the drain timeout, and nothing written
// lost.
func TestFUSEMountBusy(t *testing.T) {
	bin := mountBinary(t)
	img := mkext2(t)
	mnt := t.TempDir()
	m := startMount(t, bin, "hello", img, mnt)
	f, err := os.Create(filepath.Join(mnt, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("written before the signal"); err != nil {
		t.Fatal(err)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	m.wait(t, 0)
	if !strings.Contains(m.stderr.String(), "busy") {
		t.Errorf("no word of the busy mount point in the log:\n%s", m.stderr)
	}
	e2fsckClean(t, img)
	got, err := exec.Command("debugfs", "-R", "cat /open", img).Output()
	if err != nil || string(got) != "written before the signal" {
		t.Fatalf("debugfs cat /open: %q %v", got, err)
	}
	if hosttools.IsMountPoint(mnt) {
		t.Fatalf("%s still mounted after exit", mnt)
	}
}

func TestFUSEMountConfig(t *testing.T) {
	bin := mountBinary(t)
	img := mkext2(t)
	cfg := filepath.Join(t.TempDir(), "rump9p.yaml")
	yaml := "mounts:\n  - {name: scratch, type: tmpfs}\n  - {name: disk, type: ext2fs, image: " + img + "}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	m := startMount(t, bin, "disk/hello", "-c", cfg, "-o", "attr_timeout=0.5", mnt)
	if err := os.WriteFile(filepath.Join(mnt, "scratch/t"), []byte("t"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "disk/hello")); err != nil || string(b) != "hello\n" {
		t.Fatalf("disk/hello: %q %v", b, err)
	}
	var a, b syscall.Stat_t
	syscall.Stat(filepath.Join(mnt, "scratch"), &a)
	syscall.Stat(filepath.Join(mnt, "disk"), &b)
	if a.Ino == b.Ino {
		t.Fatalf("two mount roots share inode number %d", a.Ino)
	}
	m.cmd.Process.Signal(syscall.SIGINT)
	m.wait(t, 0)
	e2fsckClean(t, img)
}

func TestFUSEMountErrors(t *testing.T) {
	bin := mountBinary(t)
	img := mkext2(t)
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{img, missing}, 1, missing},
		{[]string{filepath.Join(t.TempDir(), "no.img"), t.TempDir()}, 1, "no.img"},
		{[]string{"-o", "attr_timeout=x", img, t.TempDir()}, 2, "attr_timeout"},
		{[]string{img}, 2, "usage"},
	} {
		out, err := exec.Command(bin, append([]string{"mount"}, tc.args...)...).CombinedOutput()
		if code := exitCode(err); code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("rump9p mount %v: status %d, output %s; want status %d naming %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
