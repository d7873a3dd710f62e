package blkdev

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tempImage writes a size-byte image whose byte i is byte(i*7) and
// returns its path.
func tempImage(t *testing.T, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOpen(t *testing.T, path string, ro bool) Device {
	t.Helper()
	d, err := Open(path, ro)
	if err != nil {
		t.Fatalf("Open(%s, ro=%v): %v", path, ro, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenLockConflicts(t *testing.T) {
	p := tempImage(t, 4096)
	want := "image " + p + " is in use by another process (locked)"
	cases := []struct {
		name        string
		first, then bool // readOnly of each open
		conflict    bool
	}{
		{"rw vs rw", false, false, true},
		{"rw vs ro", false, true, true},
		{"ro vs rw", true, false, true},
		{"ro vs ro", true, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d1, err := Open(p, tc.first)
			if err != nil {
				t.Fatal(err)
			}
			d2, err := Open(p, tc.then)
			if !tc.conflict {
				if err != nil {
					t.Fatalf("second open: %v", err)
				}
				d2.Close()
			} else {
				if err == nil {
					d2.Close()
					t.Fatal("second open succeeded; want a lock conflict")
				}
				if !errors.Is(err, ErrLocked) || !errors.Is(err, syscall.EBUSY) {
					t.Errorf("error %v does not match ErrLocked and EBUSY", err)
				}
				if err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
			}
			if err := d1.Close(); err != nil {
				t.Fatal(err)
			}
			// Close unlocks: a read-write open now succeeds.
			d3, err := Open(p, false)
			if err != nil {
				t.Fatalf("open after Close: %v", err)
			}
			d3.Close()
		})
	}
}

// TestHelperHoldLock is not a test: run as a child process by
// TestOpenLockOtherProcess, it opens the image named in the environment
// read-write, prints "locked" and waits for its stdin to close.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("BLKDEV_HOLD_LOCK")
	if path == "" {
		return
	}
	d, err := Open(path, false)
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	io.Copy(io.Discard, os.Stdin)
	d.Close()
	os.Exit(0)
}

func TestOpenLockOtherProcess(t *testing.T) {
	p := tempImage(t, 4096)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "BLKDEV_HOLD_LOCK="+p)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	for _, ro := range []bool{true, false} {
		d, err := Open(p, ro)
		if err == nil {
			d.Close()
			t.Fatalf("Open(ro=%v) while another process holds the lock succeeded", ro)
		}
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), p) {
			t.Errorf("Open(ro=%v): %v", ro, err)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, p, false)
}

func TestOpenReadOnly(t *testing.T) {
	p := tempImage(t, 8192)
	d := mustOpen(t, p, true)
	if !d.ReadOnly() || d.Size() != 8192 || d.Name() != p {
		t.Fatalf("ReadOnly %v Size %d Name %q", d.ReadOnly(), d.Size(), d.Name())
	}
	if n, err := d.WriteAt([]byte{1}, 0); n != 0 || err != syscall.EROFS {
		t.Fatalf("WriteAt on read-only: %d, %v; want 0, EROFS", n, err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync on read-only: %v", err)
	}
	buf := make([]byte, 4)
	want := make([]byte, 4)
	for i := range want {
		want[i] = byte((100 + i) * 7)
	}
	if _, err := d.ReadAt(buf, 100); err != nil || !bytes.Equal(buf, want) {
		t.Fatalf("ReadAt: %v %v", buf, err)
	}
}

func TestOpenReadWrite(t *testing.T) {
	p := tempImage(t, 8192)
	d := mustOpen(t, p, false)
	if d.ReadOnly() {
		t.Fatal("read-write device reports ReadOnly")
	}
	if _, err := d.WriteAt([]byte("hello"), 8187); err != nil {
		t.Fatal(err)
	}
	// Past the end: nothing is written and the image does not grow.
	if n, err := d.WriteAt([]byte("toolong"), 8190); n != 0 || err != syscall.EIO {
		t.Fatalf("WriteAt past end: %d, %v", n, err)
	}
	if _, err := d.WriteAt([]byte("x"), -1); err != syscall.EINVAL {
		t.Fatalf("WriteAt at -1: %v", err)
	}
	buf := make([]byte, 10)
	n, err := d.ReadAt(buf, 8187)
	if n != 5 || err != syscall.EIO || string(buf[:5]) != "hello" {
		t.Fatalf("ReadAt across the end: %d %v %q", n, err, buf[:n])
	}
	if n, err := d.ReadAt(buf, 9000); n != 0 || err != syscall.EIO {
		t.Fatalf("ReadAt past the end: %d %v", n, err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if len(got) != 8192 || string(got[8187:]) != "hello" {
		t.Fatalf("image is %d bytes ending %q", len(got), got[8180:])
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(buf, 0); err == nil {
		t.Fatal("ReadAt after Close succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.img"), true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.img")); err == nil {
		t.Error("Open created the image")
	}
	if _, err := Open(dir, true); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory: %v", err)
	}
	if _, err := Open("/dev/null", true); err == nil {
		t.Error("character device accepted")
	}
}

func TestMemDevice(t *testing.T) {
	d := NewMemDevice(100)
	if _, err := d.WriteAt([]byte("abc"), 97); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("abcd"), 97); err != syscall.EIO {
		t.Fatalf("write past end: %v", err)
	}
	b := make([]byte, 5)
	if n, err := d.ReadAt(b, 97); n != 3 || err != syscall.EIO || string(b[:3]) != "abc" {
		t.Fatalf("read across end: %d %v", n, err)
	}
	ro := NewMemDeviceFrom([]byte("xyz"), true)
	if _, err := ro.WriteAt([]byte("a"), 0); err != syscall.EROFS {
		t.Fatalf("read-only mem write: %v", err)
	}
	d.Close()
	if _, err := d.ReadAt(b, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}
