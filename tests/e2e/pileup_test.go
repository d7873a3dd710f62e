package e2e

import (
	"bufio"
	"fmt"
	"github.com/rump9p/rump9p/tests/p9raw"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// plainBin is rump9p built without the race detector, whose shadow
// memory would swamp a measurement of the server's own.
var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

func buildPlain(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() {
		plainBin = filepath.Join(filepath.Dir(rump9pBin), "rump9p-plain")
		out, err := exec.Command("go", "build", "-o", plainBin, "github.com/rump9p/rump9p/cmd/rump9p").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("building rump9p: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainBin
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestPileUpClientsStayInBudget: clients that send requests and never
// read a reply (1 MiB Treads; tiny Tgetattrs) must not make the server
// hold more than its memory budget, and must not stop it serving others.
func TestPileUpClientsStayInBudget(t *testing.T) {
	const budgetMiB = 64
	bin := buildPlain(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "9p.sock")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "listen: [unix:%s]\nmsize: 1M\nmounts: [{name: t, type: tmpfs}]\nsecurity: {max_memory: %dMiB}\n", sock, budgetMiB), 0o644)
	srv := startBin(t, bin, "serve", "-c", cfg)
	pid := srv.cmd.Process.Pid

	cl := dial(t, "unix", sock)
	root, err := cl.Attach("t")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "f", make([]byte, 1<<20)) // whole-msize replies
	time.Sleep(200 * time.Millisecond)
	base := rssKiB(t, pid)

	hog := func(burst func(r *raw9p) []byte) *raw9p {
		nc, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		r := &raw9p{&p9raw.Session{T: t, Nc: nc}}
		r.Version(1 << 20)
		r.Call(104, u32(1), u32(^uint32(0)), s9(""), s9("t"), u32(0))
		r.Call(110, u32(1), u32(2), []byte{1, 0}, s9("f"))
		r.Call(12, u32(2), u32(0))
		go nc.Write(burst(r))
		return r
	}
	frames := func(n int, typ byte, body []byte) []byte {
		var out []byte
		for i := range n {
			out = append(out, u32(uint32(7+len(body)))...)
			out = append(out, typ, byte(i), byte(i>>8))
			out = append(out, body...)
		}
		return out
	}
	// Two clients with 1,000 Treads of 1 MiB each (without flow control
	// the server would hold 2 GiB), two with 200,000 Tgetattrs each.
	for range 2 {
		hog(func(*raw9p) []byte { return frames(1000, 116, append(append(u32(2), u64(0)...), u32(1<<20)...)) })
	}
	for range 2 {
		hog(func(*raw9p) []byte { return frames(200000, 24, append(u32(2), u64(0x3fff)...)) })
	}
	var peak int64
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, rssKiB(t, pid))
	}
	// Another client is still served.
	other := dial(t, "unix", sock)
	od, err := other.Attach("t")
	if err != nil {
		t.Fatalf("attach beside the hogs: %v", err)
	}
	if got := readFile(t, od, "f"); len(got) != 1<<20 {
		t.Errorf("read beside the hogs: %d bytes", len(got))
	}
	growth := (peak - base) / 1024
	t.Logf("server RSS: %d MiB before, peak %d MiB with the hogs (+%d MiB; budget %d MiB)", base/1024, peak/1024, growth, budgetMiB)
	// The budget, one request per connection past it, and the Go heap's
	// own slack (a collection runs once the heap doubles).
	if limit := int64(3*budgetMiB + 6); growth > limit {
		t.Errorf("server grew by %d MiB with clients that read no replies; want at most %d MiB", growth, limit)
	}
}
