package main

import (
	"bytes"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

func socketpair(t *testing.T) (a, b *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
}

// relayRig is a relay between a socketpair standing in for the virtio port
// (the host's end is server) and one standing in for the kernel's.
type relayRig struct {
	server, port, kernel, relayEnd *os.File
	done                           chan error // the relay's result
	rest                           <-chan error
}

func startRelay(t *testing.T) *relayRig {
	r := &relayRig{done: make(chan error, 1)}
	r.server, r.port = socketpair(t)
	r.kernel, r.relayEnd = socketpair(t)
	go func() {
		var err error
		r.rest, err = relay(int(r.port.Fd()), int(r.relayEnd.Fd()))
		r.done <- err
	}()
	return r
}

// end closes first (one side's end), expects the relay to return nil, then
// closes the other side and waits for the second direction.
func (r *relayRig) end(t *testing.T, first, second *os.File, what string) {
	t.Helper()
	first.Close()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("relay after %s: %v, want nil", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("relay still running 10 s after %s", what)
	}
	second.Close()
	<-r.rest
	r.port.Close()
	r.relayEnd.Close()
}

// TestRelay: messages larger than any socket buffer cross both ways
// intact, and the relay ends when the kernel closes its end, as at umount.
func TestRelay(t *testing.T) {
	r := startRelay(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+7) // 3 MiB + 112 B
	for _, dir := range []struct {
		name     string
		from, to *os.File
	}{{"kernel to server", r.kernel, r.server}, {"server to kernel", r.server, r.kernel}} {
		errc := make(chan error, 1)
		go func() { _, err := dir.from.Write(big); errc <- err }()
		got := make([]byte, len(big))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: write: %v", dir.name, err)
		}
		if !bytes.Equal(got, big) {
			t.Fatalf("%s: bytes differ", dir.name)
		}
	}
	r.end(t, r.kernel, r.server, "the kernel closed its end")
}

// TestRelayHostGone: when the host closes the port (the server went away),
// the relay ends too, so that the kernel's mount sees the connection end.
func TestRelayHostGone(t *testing.T) {
	r := startRelay(t)
	r.end(t, r.server, r.kernel, "the host closed the port")
}

func TestMountFlags(t *testing.T) {
	if got := mountFlags([]string{"ro", "nosuid", "noatime"}); got != syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NOATIME {
		t.Errorf("ro,nosuid,noatime: %#x", got)
	}
	if got := mountFlags([]string{"ro", "rw"}); got != 0 {
		t.Errorf("ro,rw: %#x", got)
	}
	for w := range mountFlagWords {
		if _, ok := msFlags[w]; !ok {
			t.Errorf("flag word %q has no mount(2) flag", w)
		}
	}
}

func TestResolveIPv4(t *testing.T) {
	if ip, err := resolveIPv4("10.0.2.2"); err != nil || ip != "10.0.2.2" {
		t.Errorf("10.0.2.2: %q %v", ip, err)
	}
	if ip, err := resolveIPv4("localhost"); err != nil || ip != "127.0.0.1" {
		t.Errorf("localhost: %q %v", ip, err)
	}
	if _, err := resolveIPv4("::1"); err == nil {
		t.Error("::1 accepted")
	}
}

// TestGuestMountErrors: the failures a user meets before mount(2).
func TestGuestMountErrors(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  guestMountConfig
		want string
	}{
		{guestMountConfig{tcp: "127.0.0.1:1", mountpoint: dir + "/absent"}, "mount point"},
		{guestMountConfig{tcp: "127.0.0.1:1", mountpoint: file}, "not a directory"},
		{guestMountConfig{tcp: "127.0.0.1", mountpoint: dir}, "missing port"},
		{guestMountConfig{tcp: "127.0.0.1:x", mountpoint: dir}, "bad port"},
		{guestMountConfig{tcp: "127.0.0.1:1", options: []string{"trans=fd"}, mountpoint: dir}, "set by guest-mount"},
		{guestMountConfig{port: "surely-no-such-port-here", mountpoint: dir}, "no virtio-serial port named"},
	} {
		err := runGuestMount(&c.cfg)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}
