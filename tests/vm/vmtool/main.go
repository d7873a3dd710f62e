// Command vmtool is a small static helper that the tests/vm guest runs for
// what busybox lacks: flock(2) around a command, and a MAP_SHARED write/read
// check. It is built by the VM tests (CGO_ENABLED=0) and shipped in the
// per-test cpio as /test/vmtool; it is not part of rump9p.
//
// Usage:
//
//	vmtool flock [-s] [-n] FILE CMD [ARG...]  lock FILE (exclusive unless -s),
//	                                          run CMD, exit with its status;
//	                                          with -n exit 75 if the lock is held
//	vmtool mmap FILE SIZE                     create FILE of SIZE bytes through a
//	                                          shared writable mapping, msync, and
//	                                          verify the bytes through pread
//	vmtool create DIR PREFIX N [WORKERS]      create empty files DIR/PREFIX0 ..
//	                                          DIR/PREFIX<N-1>, WORKERS at a time
//	vmtool lock [-r] FILE START LEN CMD [ARG...]
//	                                          take an fcntl write (-r: read) lock
//	                                          on LEN bytes at START (0: to the
//	                                          end), waiting for it; run CMD with
//	                                          LOCK_PID set to the holder's pid
//	vmtool getlk [-r] FILE START LEN          fcntl(F_GETLK) for a write (-r: read)
//	                                          lock on the range; print "unlocked"
//	                                          or "R|W start=S len=L pid=P"
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

// exitLocked is the status of flock -n when the lock is held (EX_TEMPFAIL,
// as util-linux flock uses 1; a distinct value keeps it apart from CMD's).
const exitLocked = 75

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "flock":
		err = flockCmd(os.Args[2:])
	case "mmap":
		err = mmapCmd(os.Args[2:])
	case "create":
		err = createCmd(os.Args[2:])
	case "lock":
		err = lockCmd(os.Args[2:])
	case "getlk":
		err = getlkCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtool:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

type exitError struct{ code int }

func (e *exitError) Error() string { return "exit status " + strconv.Itoa(e.code) }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vmtool flock [-s] [-n] FILE CMD [ARG...] | mmap FILE SIZE | create DIR PREFIX N [WORKERS]\n"+
		"       vmtool lock [-r] FILE START LEN CMD [ARG...] | getlk [-r] FILE START LEN")
	os.Exit(2)
}

func flockCmd(args []string) error {
	how, nb := syscall.LOCK_EX, 0
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		switch args[0] {
		case "-s":
			how = syscall.LOCK_SH
		case "-n":
			nb = syscall.LOCK_NB
		default:
			usage()
		}
		args = args[1:]
	}
	if len(args) < 2 {
		usage()
	}
	f, err := os.OpenFile(args[0], os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), how|nb); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			fmt.Fprintln(os.Stderr, "vmtool: lock held:", args[0])
			return &exitError{exitLocked}
		}
		return fmt.Errorf("flock %s: %w", args[0], err)
	}
	return runHolding(args[1:], nil)
}

// runHolding runs argv while the caller holds a lock and returns its exit
// status as an *exitError.
func runHolding(argv, env []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &exitError{ee.ExitCode()}
		}
		return err
	}
	return nil
}

// lockArgs parses "[-r] FILE START LEN ...": the lock type, the file, the
// range and what follows.
func lockArgs(args []string, min int) (typ int16, file string, start, length int64, rest []string) {
	typ = syscall.F_WRLCK
	if len(args) > 0 && args[0] == "-r" {
		typ, args = syscall.F_RDLCK, args[1:]
	}
	if len(args) < min {
		usage()
	}
	var err1, err2 error
	start, err1 = strconv.ParseInt(args[1], 10, 64)
	length, err2 = strconv.ParseInt(args[2], 10, 64)
	if err1 != nil || err2 != nil || start < 0 || length < 0 {
		usage()
	}
	return typ, args[0], start, length, args[3:]
}

func lockCmd(args []string) error {
	typ, file, start, length, argv := lockArgs(args, 4)
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: typ, Whence: io.SeekStart, Start: start, Len: length}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk); err != nil {
		return fmt.Errorf("fcntl(F_SETLKW) %s: %w", file, err)
	}
	return runHolding(argv, []string{"LOCK_PID=" + strconv.Itoa(os.Getpid())})
}

func getlkCmd(args []string) error {
	typ, file, start, length, rest := lockArgs(args, 3)
	if len(rest) != 0 {
		usage()
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: typ, Whence: io.SeekStart, Start: start, Len: length}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return fmt.Errorf("fcntl(F_GETLK) %s: %w", file, err)
	}
	switch lk.Type {
	case syscall.F_UNLCK:
		fmt.Println("unlocked")
	case syscall.F_RDLCK, syscall.F_WRLCK:
		fmt.Printf("%s start=%d len=%d pid=%d\n", map[int16]string{syscall.F_RDLCK: "R", syscall.F_WRLCK: "W"}[lk.Type], lk.Start, lk.Len, lk.Pid)
	default:
		return fmt.Errorf("fcntl(F_GETLK) %s: lock type %d", file, lk.Type)
	}
	return nil
}

func mmapCmd(args []string) error {
	if len(args) != 2 {
		usage()
	}
	size, err := strconv.Atoi(args[1])
	if err != nil || size <= 0 {
		return fmt.Errorf("bad size %q", args[1])
	}
	f, err := os.OpenFile(args[0], os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(int64(size)); err != nil {
		return err
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	want := pattern(size)
	copy(m, want)
	if _, _, e := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafe.Pointer(&m[0])), uintptr(size), syscall.MS_SYNC); e != 0 {
		return fmt.Errorf("msync: %w", e)
	}
	if err := syscall.Munmap(m); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	got := make([]byte, size)
	if _, err := f.ReadAt(got, 0); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < size && got[i] == want[i] {
			i++
		}
		return fmt.Errorf("read back differs at byte %d", i)
	}
	return nil
}

// pattern is deterministic, not periodic at any power of two, so a page or
// chunk written at the wrong offset is caught.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func createCmd(args []string) error {
	if len(args) != 3 && len(args) != 4 {
		usage()
	}
	n, err := strconv.Atoi(args[2])
	if err != nil || n < 0 {
		return fmt.Errorf("bad count %q", args[2])
	}
	workers := 1
	if len(args) == 4 {
		if workers, err = strconv.Atoi(args[3]); err != nil || workers < 1 {
			return fmt.Errorf("bad worker count %q", args[3])
		}
	}
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := filepath.Join(args[0], args[1]+strconv.Itoa(i))
				f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err == nil {
					err = f.Close()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for i := 0; i < n && first == nil; i++ {
		select {
		case next <- i:
		case first = <-errs:
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		select {
		case first = <-errs:
		default:
		}
	}
	return first
}
