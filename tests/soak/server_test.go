// Package soak loads the built rump9p binary with many concurrent 9P
// clients for a set time, checking every reply against a model of the
// tree (soak_test.go, model_test.go), and kills it with SIGKILL in the
// middle of a write load to check that what was fsync'd survives the
// format's fsck (crash_test.go). Figures (ops/s, latency, RSS, fds,
// threads, goroutines) are logged, never asserted on time.
//
// The server is built without the race detector, so that its memory and
// speed are its own (tests/e2e runs the race build). Its goroutines are
// counted from the Go runtime's own scheduler dumps
// (GODEBUG=schedtrace,scheddetail on its stderr): the binary has no debug
// endpoint, and the test adds none.
//
// Knobs, all environment variables; none starts with RUMP9P_, which the
// server would take for its own configuration and refuse:
//
//	SOAK_TIME     how long the load runs on each of tmpfs, ext2 and FAT32
//	              (default 20s, one minute in all); the ten-minute soak:
//	              SOAK_TIME=200s go test -timeout 30m ./tests/soak/ -run TestSoak -v
//	SOAK_CLIENTS  concurrent clients, each on its own connection (32)
//	SOAK_SEED     the clients' choices (default: the clock; logged). It
//	              replays each client's choices up to the first shared
//	              race whose outcome differs.
//	CRASH_ROUNDS  kill -9 rounds on each image (4)
//	CRASH_SEED    the kill points and the writers' choices (default: the
//	              clock; logged)
package soak

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var rump9pBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rump9p-soak")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rump9pBin = filepath.Join(dir, "rump9p")
	// No -race: the soak measures the server's own memory and speed.
	build := exec.Command("go", "build", "-o", rump9pBin, "github.com/rump9p/rump9p/cmd/rump9p")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rump9p:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// schedPeriod is how often the Go runtime of the server prints its
// goroutines (GODEBUG=schedtrace with scheddetail): the binary has no debug
// endpoint, and this is how the test counts them without adding one.
const schedPeriod = 500 * time.Millisecond

// server is a running "rump9p serve" on a unix socket.
type server struct {
	cmd  *exec.Cmd
	sock string
	pid  int
	out  *serverOutput
	done chan error

	exited bool
	exit   error
}

// startServer serves one mount named "fs" of type typ (with image, unless
// tmpfs) on a unix socket in dir, and waits until the server listens.
func startServer(t *testing.T, dir, typ, image string) *server {
	t.Helper()
	sock := filepath.Join(dir, "9p.sock")
	cfg := filepath.Join(dir, "rump9p.yaml")
	mount := fmt.Sprintf("{name: fs, type: %s}", typ)
	if image != "" {
		mount = fmt.Sprintf("{name: fs, type: %s, image: %q}", typ, image)
	}
	body := fmt.Sprintf("listen: [\"unix:%s\"]\nmounts: [%s]\n", sock, mount)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &server{sock: sock, out: newServerOutput(), done: make(chan error, 1)}
	s.cmd = exec.Command(rump9pBin, "serve", "-c", cfg)
	s.cmd.Env = append(os.Environ(), fmt.Sprintf("GODEBUG=schedtrace=%d,scheddetail=1", schedPeriod.Milliseconds()))
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = s.cmd.Process.Pid
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if !s.exited {
			s.kill()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.out.logs(), "mount with:") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", s.out.logs())
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("server exited early (%v):\n%s", err, s.out.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s
}

// wait waits for the process to end and returns its status.
func (s *server) wait() error {
	if !s.exited {
		s.exit = <-s.done
		s.exited = true
	}
	return s.exit
}

// stop sends SIGTERM and requires a clean exit (status 0) within 30 s.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case s.exit = <-s.done:
		s.exited = true
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop on SIGTERM:\n%s", s.out.logs())
	}
	if s.exit != nil {
		t.Fatalf("server exit after SIGTERM: %v\n%s", s.exit, s.out.logs())
	}
}

// kill sends SIGKILL and waits for the process to go.
func (s *server) kill() {
	s.cmd.Process.Kill()
	s.wait()
}

// procStats is what /proc says of the server at one moment.
type procStats struct {
	rssKiB, hwmKiB int64 // VmRSS, VmHWM (the peak RSS so far)
	threads        int
	fds            int
}

// stats reads the server's /proc entries; it may run on any goroutine.
func (s *server) stats() (procStats, error) {
	var st procStats
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch key {
		case "VmRSS":
			st.rssKiB = n
		case "VmHWM":
			st.hwmKiB = n
		case "Threads":
			st.threads = int(n)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid))
	st.fds = len(fds)
	return st, err
}

// mustStats is stats on the test's goroutine.
func (s *server) mustStats(t *testing.T) procStats {
	t.Helper()
	st, err := s.stats()
	if err != nil {
		t.Fatalf("reading the server's /proc: %v", err)
	}
	return st
}

// goroutinesAfter returns the server's goroutine count from the first
// runtime dump that began after since.
func (s *server) goroutinesAfter(t *testing.T, since time.Time) int {
	t.Helper()
	n, ok := s.out.goroutinesAfter(since, 10*schedPeriod)
	if !ok {
		t.Fatalf("no goroutine dump from the server since %v", since.Format(time.StampMilli))
	}
	return n
}

// serverOutput is the server's stdout and stderr: it keeps the log lines
// and turns the runtime's scheduler dumps into goroutine counts.
type serverOutput struct {
	mu      sync.Mutex
	cond    *sync.Cond
	partial []byte
	log     bytes.Buffer
	cur     *dump // the dump being read
	dumps   []dump
}

// dump is one scheduler trace: when its header arrived and how many
// goroutines it listed that are not dead (runtime goroutines included).
type dump struct {
	at   time.Time
	live int
}

func newServerOutput() *serverOutput {
	o := &serverOutput{}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// gLine matches a goroutine of a detailed schedtrace:
// "  G17: status=4(chan receive) m=nil lockedm=nil".
var gLine = regexp.MustCompile(`^\s*G\d+: status=(\d+)\(`)

// Runtime goroutine states (runtime/runtime2.go) that are not goroutines.
const (
	gIdle = 0
	gDead = 6
	gScan = 0x1000
)

func (o *serverOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
	return len(p), nil
}

func (o *serverOutput) line(l string) {
	switch {
	case strings.HasPrefix(l, "SCHED "):
		o.endDump()
		o.cur = &dump{at: time.Now()}
	case strings.HasPrefix(l, "  P") || strings.HasPrefix(l, "  M"):
	case gLine.MatchString(l):
		st, _ := strconv.Atoi(gLine.FindStringSubmatch(l)[1])
		if st &^= gScan; o.cur != nil && st != gIdle && st != gDead {
			o.cur.live++
		}
	default:
		o.log.WriteString(l)
		o.log.WriteByte('\n')
	}
}

// endDump closes the dump being read, if any: a dump ends at the next
// header (log lines may come in between).
func (o *serverOutput) endDump() {
	if o.cur != nil {
		o.dumps = append(o.dumps, *o.cur)
		o.cur = nil
		o.cond.Broadcast()
	}
}

func (o *serverOutput) logs() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.log.String()
}

func (o *serverOutput) goroutinesAfter(since time.Time, timeout time.Duration) (int, bool) {
	timer := time.AfterFunc(timeout, func() {
		o.mu.Lock()
		o.cond.Broadcast()
		o.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		for _, d := range o.dumps {
			if d.at.After(since) {
				return d.live, true
			}
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		o.cond.Wait()
	}
}

// mustRun runs a command and fails the test with its output on error.
func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// needTools fails (not skips) when a checker is missing: tests/run.sh
// installs them.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (tests/run.sh installs e2fsprogs, dosfstools, mtools): %v", tool, err)
		}
	}
}
