package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment knobs.
const (
	envCache   = "RUMP9P_VM_CACHE"       // guest cache directory (prepare.sh)
	envServer  = "RUMP9P_VM_SERVER"      // "rump9p" (default) or "diod"
	envVerbose = "RUMP9P_VM_VERBOSE"     // non-empty: copy the console to stderr live
	envKeep    = "RUMP9P_VM_KEEP"        // non-empty: keep the work directory
	envArgs    = "RUMP9P_VM_SERVER_ARGS" // extra server arguments, split on spaces
	envTrace   = "RUMP9P_VM_TRACE"       // non-empty: the guest timestamps its check traces
)

// vmTimeout bounds one guest from QEMU start to power-off; $RUMP9P_VM_TIMEOUT
// (a Go duration) overrides it. The slowest guest (the workload over
// virtio-serial) took 8 minutes on 2 cores under TCG with the machine's
// load at 14, and about 3 alone (the tests log each guest's times); the
// bound leaves room for a machine busier still, and the guest's own
// watchdogs (a check's CHECK_TIMEOUT, guest-mount's --timeout) report a
// hang long before it.
var vmTimeout = 20 * time.Minute

// vmJobs bounds how many guests run at once ($RUMP9P_VM_JOBS; default the
// number of CPUs): each TCG guest keeps a host CPU busy, and a guest
// waiting for a slot is not yet timed.
var vmJobs = runtime.NumCPU()

func init() {
	if d, err := time.ParseDuration(os.Getenv("RUMP9P_VM_TIMEOUT")); err == nil && d > 0 {
		vmTimeout = d
	}
	if n, err := strconv.Atoi(os.Getenv("RUMP9P_VM_JOBS")); err == nil && n > 0 {
		vmJobs = n
	}
	vmSlots = make(chan struct{}, max(vmJobs, 1))
}

var vmSlots chan struct{}

// Markers printed by the initramfs /init (prepare.sh) and workload.sh.
var (
	reExit    = regexp.MustCompile(`RUMP9P-VM-EXIT (-?\d+)`)
	reBooted  = regexp.MustCompile(`RUMP9P-VM-BOOTED (\S+)`)
	reInsmod  = regexp.MustCompile(`RUMP9P-VM-INSMOD-FAIL (.*)`)
	reCheck   = regexp.MustCompile(`CHECK (\S+) (ok|FAIL)\s*$`)
	reAnsi    = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1bc`)
	reMarkers = regexp.MustCompile(`^(MSTAT|MSUM|DD|INFO|BENCH) `)
)

var (
	workDirOnce sync.Once
	workDir     string
	workDirErr  error

	prepareOnce sync.Once
	guestDir    string
	prepareErr  error

	vmtoolOnce sync.Once
	vmtoolPath string
	vmtoolErr  error

	rump9pOnce sync.Once
	rump9pPath string
	rump9pErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if workDir != "" {
		if os.Getenv(envKeep) == "" && code == 0 {
			os.RemoveAll(workDir)
		} else {
			fmt.Fprintf(os.Stderr, "tests/vm: kept %s (console and server logs)\n", workDir)
		}
	}
	os.Exit(code)
}

// sharedDir is a scratch directory shared by all tests of this run.
func sharedDir(t testing.TB) string {
	t.Helper()
	workDirOnce.Do(func() {
		workDir, workDirErr = os.MkdirTemp("", "rump9p-vm-")
		if workDirErr == nil {
			// diod attaches as "nobody" first (Linux sends uname=nobody
			// at mount time), so the export's parents must be searchable.
			workDirErr = os.Chmod(workDir, 0o755)
		}
	})
	if workDirErr != nil {
		t.Fatal(workDirErr)
	}
	return workDir
}

// moduleRoot is the directory holding go.mod (two levels up from here).
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// prepareGuest runs prepare.sh once and returns the cache directory holding
// the kernel and the base initramfs. A failure fails the test (it never
// skips: a suite that silently does not run proves nothing).
func prepareGuest(t testing.TB) string {
	t.Helper()
	prepareOnce.Do(func() {
		cmd := exec.Command("sh", "./prepare.sh")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			prepareErr = fmt.Errorf("prepare.sh: %v\n%s", err, stderr.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		guestDir = lines[len(lines)-1]
	})
	if prepareErr != nil {
		t.Fatal(prepareErr)
	}
	return guestDir
}

// goBuild builds pkg (relative to root, the module root) as dst.
func goBuild(root, pkg, dst string, static bool) (string, error) {
	args := []string{"build", "-o", dst}
	if static {
		args = append(args, "-trimpath", "-ldflags=-s -w")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if static {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return dst, nil
}

func buildVMTool(t testing.TB) string {
	t.Helper()
	root, dst := moduleRoot(t), filepath.Join(sharedDir(t), "vmtool")
	vmtoolOnce.Do(func() { vmtoolPath, vmtoolErr = goBuild(root, "./tests/vm/vmtool", dst, true) })
	if vmtoolErr != nil {
		t.Fatal(vmtoolErr)
	}
	return vmtoolPath
}

// buildRump9p builds cmd/rump9p once, static (CGO_ENABLED=0) and without
// the race detector even under "go test -race": the host runs it as the
// server (p9srv's own tests cover the race run) and the guest runs the
// same file as "rump9p guest-mount".
func buildRump9p(t testing.TB) string {
	t.Helper()
	root, dst := moduleRoot(t), filepath.Join(sharedDir(t), "rump9p")
	rump9pOnce.Do(func() { rump9pPath, rump9pErr = goBuild(root, "./cmd/rump9p", dst, true) })
	if rump9pErr != nil {
		t.Fatal(rump9pErr)
	}
	return rump9pPath
}

// syncBuffer collects a server's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a 9P server on the host listening on 127.0.0.1:port and on a
// unix socket (the virtio-serial chardev).
type server struct {
	kind   string // "rump9p" or "diod"
	aname  string // what the guest passes as aname=
	port   int
	sock   string
	export string // diod: the exported host directory
	image  string // rump9p with an image: the ext2 image it serves
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error // set when exited is closed
}

func serverKind() string {
	if k := os.Getenv(envServer); k != "" {
		return k
	}
	return "rump9p"
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts the server selected by $RUMP9P_VM_SERVER and waits
// until both listeners accept connections. It is stopped at test cleanup.
func startServer(t testing.TB, name string) *server {
	t.Helper()
	return startServerImage(t, name, false)
}

// startServerImage is startServer; with ext2 set, rump9p serves a fresh
// 512 MiB ext2 image (made by mke2fs) instead of its default tmpfs, under
// the attach name "ext2".
func startServerImage(t testing.TB, name string, ext2 bool) *server {
	t.Helper()
	dir := filepath.Join(sharedDir(t), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &server{kind: serverKind(), port: freePort(t), sock: filepath.Join(dir, "9p.sock"), out: &syncBuffer{}}
	tcp := fmt.Sprintf("127.0.0.1:%d", s.port)
	switch s.kind {
	case "rump9p":
		bin := buildRump9p(t)
		s.aname = "tmp"
		s.cmd = exec.Command(bin, "serve", "--listen", "tcp:"+tcp, "--listen", "unix:"+s.sock)
		if ext2 {
			s.image = makeExt2(t, dir)
			cfg := filepath.Join(dir, "rump9p.yaml")
			body := fmt.Sprintf("mounts:\n  - {name: ext2, type: ext2fs, image: %q}\n", s.image)
			if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			s.aname = "ext2"
			s.cmd = exec.Command(bin, "serve", "-c", cfg, "--listen", "tcp:"+tcp, "--listen", "unix:"+s.sock)
		}
	case "diod":
		diod, err := exec.LookPath("diod")
		if err != nil {
			t.Fatalf("RUMP9P_VM_SERVER=diod: %v", err)
		}
		s.export = filepath.Join(dir, "export")
		if err := os.MkdirAll(s.export, 0o755); err != nil {
			t.Fatal(err)
		}
		s.aname = s.export
		s.cmd = exec.Command(diod, "-f", "-n", "-c", "/dev/null", "-L", "stderr", "-l", tcp, "-l", s.sock, "-e", s.export)
	default:
		t.Fatalf("%s=%q: want rump9p or diod", envServer, s.kind)
	}
	s.cmd.Args = append(s.cmd.Args, strings.Fields(os.Getenv(envArgs))...)
	s.run(t, dir)

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("%s exited before listening: %v\n%s", s.kind, s.err, s.out.String())
		default:
		}
		errT := dialClose("tcp", tcp)
		errU := dialClose("unix", s.sock)
		if errT == nil && errU == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after 20 s: tcp: %v; unix: %v\n%s", s.kind, errT, errU, s.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s listening on %s and %s", s.kind, tcp, s.sock)
	return s
}

// makeExt2 makes a fresh 512 MiB ext2 image in dir with mke2fs.
func makeExt2(t testing.TB, dir string) string {
	t.Helper()
	image := filepath.Join(dir, "ext2.img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "4096", image, "512M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	return image
}

// run starts s.cmd, its output collected in s.out (and, with
// $RUMP9P_VM_KEEP, in dir/KIND.log), and stops it at test cleanup.
func (s *server) run(t testing.TB, dir string) {
	t.Helper()
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if os.Getenv(envKeep) != "" {
		if f, err := os.Create(filepath.Join(dir, s.kind+".log")); err == nil {
			s.cmd.Stdout = io.MultiWriter(s.out, f)
			s.cmd.Stderr = s.cmd.Stdout
			t.Cleanup(func() { f.Close() })
		}
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.kind, err)
	}
	s.exited = make(chan struct{})
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.stop(t) })
}

func dialClose(network, addr string) error {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// alive reports an error if the server has exited.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited: %v\n%s", s.kind, s.err, s.out.String())
	default:
		return nil
	}
}

// stop interrupts the server and waits for it; a server that ignores
// SIGINT for 10 s is killed and the test fails.
func (s *server) stop(t testing.TB) {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("%s did not stop within 10 s of SIGINT\n%s", s.kind, s.out.String())
	}
}

// cpioFile is one entry of a newc cpio archive.
type cpioFile struct {
	name string
	mode uint32 // full st_mode, including the type bits
	data []byte
}

// writeCpio writes files as a newc ("070701") archive with a trailer.
// Each header and each data block is padded to 4 bytes, as the kernel's
// initramfs unpacker requires.
func writeCpio(w io.Writer, files []cpioFile) error {
	bw := bufio.NewWriter(w)
	pad := func(n int) {
		for ; n%4 != 0; n++ {
			bw.WriteByte(0)
		}
	}
	entry := func(ino int, f cpioFile) {
		name := f.name + "\x00"
		fmt.Fprintf(bw, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, f.mode, 0, 0, 1, 0, len(f.data), 0, 0, 0, 0, len(name), 0)
		bw.WriteString(name)
		pad(110 + len(name))
		bw.Write(f.data)
		pad(len(f.data))
	}
	for i, f := range files {
		entry(i+1, f)
	}
	entry(0, cpioFile{name: "TRAILER!!!"})
	return bw.Flush()
}

// buildInitrd writes base followed (at a 4-byte boundary) by a cpio with
// files, and returns its path.
func buildInitrd(t testing.TB, base, dst string, files []cpioFile) string {
	t.Helper()
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	var buf bytes.Buffer
	buf.Write(b)
	if err := writeCpio(&buf, files); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// guestResult is what a guest printed on its console.
type guestResult struct {
	log       string          // the cleaned console log
	exit      int             // status from RUMP9P-VM-EXIT, -1 if absent
	booted    time.Duration   // host time from QEMU start to the guest script
	bootAt    []time.Duration // the same for every boot (a guest may reboot)
	waited    time.Duration   // time spent waiting for a guest slot (vmJobs)
	uptime    string          // guest uptime at the same point
	total     time.Duration   // host time from QEMU start to QEMU exit
	insmod    []string        // modules that failed to load
	checks    map[string]*checkResult
	order     []string // check names in order of appearance
	info      []string // INFO and DD lines
	mstat     []string // MSTAT payloads
	msum      []string // MSUM payloads
	qemuError error
}

type checkResult struct {
	ok       bool
	evidence []string // the "  | " lines after a FAIL
}

// vmConfig describes one guest boot.
type vmConfig struct {
	name   string // used in file names
	script string // the guest's /test/run.sh; guest/workload.sh if empty
	env    map[string]string
	reboot bool     // the guest may reboot (no -no-reboot); /dev/vda is a 1 MiB scratch disk that outlives it
	virtfs string   // QEMU -virtfs argument (QEMU's own 9P server on a host directory), or ""
	serial string   // unix socket for the virtio-serial port, or "" for none
	net    bool     // QEMU user networking with a virtio-net NIC
	disks  []string // image files attached read-only as virtio disks, after the scratch disk
}

// bootGuest boots the prepared kernel with the base initramfs plus a cpio
// holding workload.sh as /test/run.sh, /test/env and /test/vmtool, waits
// for power-off (bounded by vmTimeout) and parses the console.
func bootGuest(t testing.TB, cfg vmConfig) *guestResult {
	t.Helper()
	cache := prepareGuest(t)
	if cfg.script == "" {
		cfg.script = "guest/workload.sh"
	}
	var guestFiles []cpioFile
	for _, f := range []struct{ src, dst string }{
		{cfg.script, "test/run.sh"}, {"guest/lib.sh", "test/lib.sh"}, {"guest/workload.sh", "test/workload.sh"},
	} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatal(err)
		}
		guestFiles = append(guestFiles, cpioFile{name: f.dst, mode: 0o100755, data: b})
	}
	toolData, err := os.ReadFile(buildVMTool(t))
	if err != nil {
		t.Fatal(err)
	}
	rumpData, err := os.ReadFile(buildRump9p(t))
	if err != nil {
		t.Fatal(err)
	}
	var env strings.Builder
	if os.Getenv(envTrace) != "" {
		env.WriteString("TRACE_TIME=1\n")
	}
	for k, v := range cfg.env {
		fmt.Fprintf(&env, "%s=%s\n", k, shellQuote(v))
	}
	dir := filepath.Join(sharedDir(t), cfg.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := append([]cpioFile{{name: "test", mode: 0o40755}}, guestFiles...)
	files = append(files,
		cpioFile{name: "test/env", mode: 0o100644, data: []byte(env.String())},
		cpioFile{name: "test/vmtool", mode: 0o100755, data: toolData},
		cpioFile{name: "test/rump9p", mode: 0o100755, data: rumpData})
	initrd := buildInitrd(t, filepath.Join(cache, "initramfs.cpio"), filepath.Join(dir, "initrd.cpio"), files)

	kernel := filepath.Join(cache, "vmlinux") // PVH entry; boots ~2x faster than vmlinuz under TCG
	if _, err := os.Stat(kernel); err != nil {
		kernel = filepath.Join(cache, "vmlinuz")
	}
	args := []string{
		"-nographic", "-m", "512", "-smp", "1",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
	}
	if cfg.reboot {
		disk := filepath.Join(dir, "scratch.img")
		if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-drive", "file="+disk+",format=raw,if=virtio")
	} else {
		args = append(args, "-no-reboot")
	}
	for _, d := range cfg.disks {
		args = append(args, "-drive", "file="+d+",format=raw,if=virtio,readonly=on")
	}
	if _, err := os.Stat("/usr/share/qemu/qboot.rom"); err == nil {
		args = append(args, "-bios", "/usr/share/qemu/qboot.rom")
	}
	if cfg.net {
		args = append(args, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0")
	} else {
		args = append(args, "-nic", "none")
	}
	if cfg.virtfs != "" {
		args = append(args, "-virtfs", cfg.virtfs)
	}
	if cfg.serial != "" {
		args = append(args, "-device", "virtio-serial",
			"-chardev", "socket,id=c0,path="+cfg.serial,
			"-device", "virtserialport,chardev=c0,name=rump9p")
	}

	res := &guestResult{exit: -1, checks: map[string]*checkResult{}}
	t0 := time.Now()
	vmSlots <- struct{}{}
	defer func() { <-vmSlots }()
	res.waited = time.Since(t0)
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.WaitDelay = 5 * time.Second
	logFile, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw

	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		res.scan(pr, logFile, start)
	}()
	res.qemuError = cmd.Wait()
	pw.Close()
	<-scanned
	res.total = time.Since(start)
	if ctx.Err() != nil {
		res.qemuError = fmt.Errorf("guest did not power off within %v: %w", vmTimeout, ctx.Err())
	}
	t.Logf("console log: %s", logFile.Name())
	return res
}

// scan reads the console line by line, cleaning terminal escapes, and
// records the markers.
func (r *guestResult) scan(rd io.Reader, logw io.Writer, start time.Time) {
	verbose := os.Getenv(envVerbose) != ""
	var all strings.Builder
	var last *checkResult
	br := bufio.NewReaderSize(rd, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = reAnsi.ReplaceAllString(strings.TrimRight(line, "\r\n"), "")
			line = strings.ReplaceAll(line, "\r", "")
			fmt.Fprintln(logw, line)
			all.WriteString(line + "\n")
			if verbose {
				fmt.Fprintln(os.Stderr, "guest:", line)
			}
			r.parseLine(line, &last, time.Since(start))
		}
		if err != nil {
			break
		}
	}
	r.log = all.String()
}

func (r *guestResult) parseLine(line string, last **checkResult, at time.Duration) {
	if strings.HasPrefix(line, "  | ") && *last != nil {
		(*last).evidence = append((*last).evidence, line[4:])
		return
	}
	*last = nil
	if m := reBooted.FindStringSubmatch(line); m != nil {
		if r.booted == 0 {
			r.booted, r.uptime = at, m[1]
		}
		r.bootAt = append(r.bootAt, at)
	}
	if m := reExit.FindStringSubmatch(line); m != nil {
		r.exit, _ = strconv.Atoi(m[1])
	}
	if m := reInsmod.FindStringSubmatch(line); m != nil {
		r.insmod = append(r.insmod, m[1])
	}
	if m := reCheck.FindStringSubmatch(line); m != nil {
		c := &checkResult{ok: m[2] == "ok"}
		if _, dup := r.checks[m[1]]; !dup {
			r.order = append(r.order, m[1])
		}
		r.checks[m[1]] = c
		*last = c
		return
	}
	if line == "INFO manifest begins" {
		r.mstat, r.msum = nil, nil
	}
	if m := reMarkers.FindStringSubmatch(line); m != nil {
		switch m[1] {
		case "MSTAT":
			r.mstat = append(r.mstat, line[len("MSTAT "):])
		case "MSUM":
			r.msum = append(r.msum, line[len("MSUM "):])
		default:
			r.info = append(r.info, line)
		}
	}
}

// assertChecks fails t unless the guest powered off with status 0 and
// every name in want printed "CHECK name ok". Each check is a subtest so
// that a failure names the check and shows what the guest printed.
func (r *guestResult) assertChecks(t *testing.T, want []string) {
	t.Helper()
	for _, l := range r.info {
		t.Log(l)
	}
	t.Logf("guest: waited %.1f s for a slot; script started %.2f s after QEMU start (guest uptime %s s); powered off after %.2f s",
		r.waited.Seconds(), r.booted.Seconds(), r.uptime, r.total.Seconds())
	if len(r.bootAt) > 1 {
		t.Logf("guest: %d boots, scripts started at %v", len(r.bootAt), r.bootAt)
	}
	if r.qemuError != nil {
		t.Errorf("qemu: %v", r.qemuError)
	}
	if len(r.insmod) > 0 {
		t.Errorf("modules failed to load: %q", r.insmod)
	}
	if r.booted == 0 {
		t.Errorf("guest never reached its script; console tail:\n%s", tail(r.log, 60))
	}
	seen := map[string]bool{}
	for _, name := range want {
		seen[name] = true
		c := r.checks[name]
		t.Run(name, func(t *testing.T) {
			switch {
			case c == nil:
				t.Errorf("guest printed no CHECK line for %s", name)
			case !c.ok:
				t.Errorf("guest check %s failed; it printed:\n%s", name, strings.Join(c.evidence, "\n"))
			}
		})
	}
	for _, name := range r.order {
		if !seen[name] {
			t.Errorf("unexpected check %s (add it to the expected list)", name)
		}
	}
	if r.exit != 0 {
		t.Errorf("guest exit status %d, want 0; console tail:\n%s", r.exit, tail(r.log, 40))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shellQuote quotes s for a POSIX shell assignment.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var errNoManifest = errors.New("guest printed no manifest")
