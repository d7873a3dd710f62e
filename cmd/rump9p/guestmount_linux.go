package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// msFlags maps mount(8)'s flag words to mount(2) flags: a word sets its
// bits, or clears them when clear is true ("rw", "suid", ...).
var msFlags = map[string]struct {
	bits  uintptr
	clear bool
}{
	"ro": {syscall.MS_RDONLY, false}, "rw": {syscall.MS_RDONLY, true},
	"nosuid": {syscall.MS_NOSUID, false}, "suid": {syscall.MS_NOSUID, true},
	"nodev": {syscall.MS_NODEV, false}, "dev": {syscall.MS_NODEV, true},
	"noexec": {syscall.MS_NOEXEC, false}, "exec": {syscall.MS_NOEXEC, true},
	"sync": {syscall.MS_SYNCHRONOUS, false}, "async": {syscall.MS_SYNCHRONOUS, true},
	"dirsync": {syscall.MS_DIRSYNC, false},
	"noatime": {syscall.MS_NOATIME, false}, "atime": {syscall.MS_NOATIME, true},
	"nodiratime": {syscall.MS_NODIRATIME, false}, "diratime": {syscall.MS_NODIRATIME, true},
	"relatime": {syscall.MS_RELATIME, false}, "norelatime": {syscall.MS_RELATIME, true},
	"strictatime": {syscall.MS_STRICTATIME, false},
	"lazytime":    {1 << 25, false}, // MS_LAZYTIME
}

func mountFlags(words []string) uintptr {
	var f uintptr
	for _, w := range words {
		m := msFlags[w]
		if m.clear {
			f &^= m.bits
		} else {
			f |= m.bits
		}
	}
	return f
}

// defaultMsize is the largest msize Linux's fd and tcp transports accept.
const defaultMsize = "msize=1048576"

func runGuestMount(cfg *guestMountConfig) error {
	st, err := os.Stat(cfg.mountpoint)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", cfg.mountpoint)
	}
	if cfg.tcp != "" {
		return mountTCP(cfg)
	}
	return mountVirtioPort(cfg)
}

func mountTCP(cfg *guestMountConfig) error {
	host, port, err := net.SplitHostPort(cfg.tcp)
	if err != nil {
		return fmt.Errorf("--tcp %s: %w", cfg.tcp, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("--tcp %s: bad port %q", cfg.tcp, port)
	}
	ip, err := resolveIPv4(host)
	if err != nil {
		return fmt.Errorf("--tcp %s: %w", cfg.tcp, err)
	}
	data, words, err := mountData(
		[]string{"trans=tcp", "port=" + port, "version=9p2000.L", defaultMsize},
		cfg.options, reservedOptions("give the port in --tcp HOST:PORT"))
	if err != nil {
		return err
	}
	return mount9p(ip, cfg, mountFlags(words), data, nil)
}

// resolveIPv4 returns host as a dotted IPv4 address: Linux's 9p tcp
// transport takes nothing else.
func resolveIPv4(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() == nil {
			return "", fmt.Errorf("%s: Linux's 9p tcp transport takes IPv4 addresses only", host)
		}
		return ip.To4().String(), nil
	}
	addrs, err := net.LookupHost(host)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			return ip.To4().String(), nil
		}
	}
	return "", fmt.Errorf("%s has no IPv4 address (%v); Linux's 9p tcp transport takes IPv4 only", host, addrs)
}

func reservedOptions(port string) map[string]string {
	const mine = "set by guest-mount itself"
	return map[string]string{"trans": mine, "rfdno": mine, "wfdno": mine, "port": port}
}

func mountVirtioPort(cfg *guestMountConfig) error {
	dev, err := findVirtioPort("/sys/class/virtio-ports", "/dev", cfg.port)
	if err != nil {
		return err
	}
	pfd, err := syscall.Open(dev, syscall.O_RDWR|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("virtio port %s is busy: another process has it open "+
			"(the relay of an earlier guest-mount whose mount is still in place?)", dev)
	}
	if err != nil {
		return fmt.Errorf("open virtio port: %w", &os.PathError{Op: "open", Path: dev, Err: err})
	}
	port := os.NewFile(uintptr(pfd), dev)
	defer port.Close()

	// The kernel gets one end of a stream socketpair as both rfdno and
	// wfdno (one file, so the fd transport polls one wait queue); the relay
	// child copies between the other end and the port.
	sp, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	kernel := os.NewFile(uintptr(sp[0]), "9p-kernel")
	defer kernel.Close()
	relayEnd := os.NewFile(uintptr(sp[1]), "9p-relay")

	exe, err := os.Executable()
	if err != nil {
		relayEnd.Close()
		return fmt.Errorf("finding my own executable for the relay: %w", err)
	}
	child := exec.Command(exe, "guest-mount", relayChildArg, cfg.mountpoint, dev)
	child.ExtraFiles = []*os.File{port, relayEnd} // fds 3 and 4
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = child.Start()
	relayEnd.Close()
	if err != nil {
		return fmt.Errorf("starting the relay: %w", err)
	}
	port.Close() // the relay holds the port now

	k := strconv.Itoa(int(kernel.Fd()))
	data, words, err := mountData(
		[]string{"trans=fd", "rfdno=" + k, "wfdno=" + k, "version=9p2000.L", defaultMsize},
		cfg.options, reservedOptions("not for a virtio port"))
	if err == nil {
		err = mount9p("rump9p", cfg, mountFlags(words), data, child.Process)
	}
	if err != nil {
		_ = child.Process.Kill()
		_, _ = child.Process.Wait()
		return err
	}
	// The mount holds its own references to the socket; the relay lives on
	// until the kernel closes it (umount).
	_ = child.Process.Release()
	return nil
}

// mount9p calls mount(2), bounded by cfg.timeout: mount blocks until the
// server answers Tversion and Tattach. On a timeout the relay (if any) is
// killed, which ends the connection and so the waiting mount.
func mount9p(source string, cfg *guestMountConfig, flags uintptr, data string, relay *os.Process) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the fd numbers in data are this process's
		done <- syscall.Mount(source, cfg.mountpoint, "9p", flags, data)
	}()
	var expired <-chan time.Time
	if cfg.timeout > 0 {
		t := time.NewTimer(cfg.timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		return explainMountError(err, cfg, data)
	case <-expired:
		if relay != nil {
			_ = relay.Kill()
		}
		return fmt.Errorf("mount %s: no answer from the server within %v (is rump9p serving the other end? "+
			"a server that does not reset the session on a new Tversion hangs a second mount on the same port)",
			cfg.mountpoint, cfg.timeout)
	}
}

func explainMountError(err error, cfg *guestMountConfig, data string) error {
	if err == nil {
		return nil
	}
	var why string
	switch {
	case errors.Is(err, syscall.EPERM):
		why = "mount(2) needs root (CAP_SYS_ADMIN)"
	case errors.Is(err, syscall.ENODEV):
		why = "the kernel has no 9p file system (load the 9p module)"
	case errors.Is(err, syscall.EPROTONOSUPPORT):
		why = "the kernel lacks the 9p transport (load the 9pnet_fd module)"
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "nothing listens at " + cfg.tcp
	case errors.Is(err, syscall.ENOENT):
		why = "the server refused the attach: no such aname?"
	case errors.Is(err, syscall.EINVAL):
		why = "the kernel refused the options"
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		why = "the connection to the server ended"
	}
	msg := fmt.Sprintf("mount -t 9p -o %s %s: %v", data, cfg.mountpoint, err)
	if why != "" {
		msg += " (" + why + ")"
	}
	return errors.New(msg)
}

// relayChild is the background half of guest-mount: fd 3 is the virtio
// port, fd 4 the relay's end of the kernel's socketpair. It relays until
// either side ends, then exits, closing the port so that a later
// guest-mount can open it again. args are the mount point and port (for
// the kernel log line).
func relayChild(args []string) int {
	for _, fd := range []int{3, 4} {
		if err := syscall.SetNonblock(fd, false); err != nil {
			kmsg("relay: fd %d: %v", fd, err)
			return 1
		}
	}
	_, err := relay(3, 4)
	what := fmt.Sprint(args)
	if err != nil {
		kmsg("relay %s ended: %v", what, err)
		return 1
	}
	kmsg("relay %s ended (unmounted or the host closed the port)", what)
	return 0
}

// kmsg writes one informational line to the kernel log (dmesg), the only
// place a detached relay can report to; best effort.
func kmsg(format string, a ...any) {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "<6>rump9p guest-mount[%d]: "+format+"\n", append([]any{os.Getpid()}, a...)...)
}

// relay copies bytes between port and sock (blocking descriptors) in both
// directions and returns when either direction ends: nil on end of file
// (the kernel closed its end at umount, or the host closed the port), the
// error otherwise. The other direction may stay blocked in a read of the
// port; rest delivers its end, if it comes (the relay child just exits).
func relay(port, sock int) (rest <-chan error, err error) {
	done := make(chan error, 2)
	go func() { done <- pump(sock, port) }() // kernel -> server
	go func() { done <- pump(port, sock) }() // server -> kernel
	err = <-done
	return done, err
}

// relayBuf holds the largest 9P message (msize 1 MiB) and its header.
const relayBuf = 1<<20 + 4096

// pump copies from src to dst until end of file (nil) or an error.
func pump(src, dst int) error {
	buf := make([]byte, relayBuf)
	for {
		n, err := syscall.Read(src, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n <= 0 {
			return nil
		}
		for b := buf[:n]; len(b) > 0; {
			m, err := syscall.Write(dst, b)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			b = b[m:]
		}
	}
}
