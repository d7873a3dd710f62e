package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hugelgupf/p9/fsimpl/templatefs"
	"github.com/hugelgupf/p9/p9"
	"github.com/rump9p/rump9p/tests/p9raw"
)

// TransportSpeed is what a socket moves with no 9P server behind it, and
// the round trip of the 9P library alone.
type TransportSpeed struct {
	BytesPerSec float64       // replies of msize bytes to 11-byte requests, one at a time
	RoundTrip   time.Duration // an 11-byte request and an 11-byte reply
	// Library is a Tgetattr round trip to hugelgupf/p9's server serving
	// a constant directory (staticRoot): the library's and the Go
	// runtime's share of every request, with no file system behind it.
	Library time.Duration
}

// envEcho, set to "network addr", makes a process that calls
// ServeEchoIfAsked serve echo requests there instead of doing its job;
// envLibrary the same for a hugelgupf/p9 server of a static file.
const (
	envEcho    = "RUMP9P_BENCH_ECHO"
	envLibrary = "RUMP9P_BENCH_LIBRARY"
)

// echoRequest is the request's size: a 9P header (size[4] type[1]
// tag[2]) and the reply size wanted (want[4]).
const echoRequest = 11

// ServeEchoIfAsked serves the transport measurement's peer and exits if
// the process was started for it by MeasureTransport; otherwise it
// returns at once. Call it first thing in main (or TestMain).
func ServeEchoIfAsked() {
	if spec := os.Getenv(envLibrary); spec != "" {
		network, addr, _ := strings.Cut(spec, " ")
		l := listenOrExit(network, addr)
		p9.NewServer(staticRoot{}).Serve(l)
		os.Exit(0)
	}
	spec := os.Getenv(envEcho)
	if spec == "" {
		return
	}
	network, addr, _ := strings.Cut(spec, " ")
	l := listenOrExit(network, addr)
	c, err := l.Accept()
	if err != nil {
		os.Exit(1)
	}
	buf := make([]byte, 16<<20)
	req := make([]byte, echoRequest)
	for {
		if _, err := io.ReadFull(c, req); err != nil {
			os.Exit(0)
		}
		want := min(int(binary.LittleEndian.Uint32(req[7:])), len(buf))
		binary.LittleEndian.PutUint32(buf, uint32(want))
		if _, err := c.Write(buf[:want]); err != nil {
			os.Exit(0)
		}
	}
}

// staticRoot is the 9P library's least file system: one directory whose
// Walk (clone) and GetAttr answer from constants. Every other operation
// is ENOSYS.
type staticRoot struct{ templatefs.NoopFile }

func (staticRoot) Attach() (p9.File, error) { return staticRoot{}, nil }

func (staticRoot) Walk(names []string) ([]p9.QID, p9.File, error) {
	if len(names) > 0 {
		return nil, nil, os.ErrNotExist
	}
	return nil, staticRoot{}, nil
}

func (staticRoot) GetAttr(req p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	qid := p9.QID{Type: p9.TypeDir, Path: 1}
	return qid, req, p9.Attr{Mode: p9.ModeDirectory | 0o755, NLink: 2}, nil
}

// listenOrExit listens for a peer process and says "ready" on stdout.
func listenOrExit(network, addr string) net.Listener {
	l, err := net.Listen(network, addr)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	return l
}

// startPeer runs this executable again as the peer env names, listening
// on network (at sock for "unix"), and returns its address and a stop
// function.
func startPeer(env, network, sock string) (addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	addr = sock
	if network == "tcp" {
		addr = fmt.Sprintf("127.0.0.1:%d", freePort())
	} else {
		os.Remove(sock)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env+"="+network+" "+addr)
	if env == envLibrary {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1") // its best case, see rumpcore.CPUs
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		stop()
		return "", nil, fmt.Errorf("peer %s: %q", env, line)
	}
	return addr, stop, nil
}

// MeasureTransport runs an echo peer in a child process (this executable
// again, which must call ServeEchoIfAsked) on network (at sock for
// "unix") and measures the socket alone: 9P-like requests one at a time,
// answered with msize bytes (throughput) or 11 bytes (round trip).
func MeasureTransport(network, sock string, msize uint32) (TransportSpeed, error) {
	addr, stop, err := startPeer(envEcho, network, sock)
	if err != nil {
		return TransportSpeed{}, err
	}
	defer stop()
	c, err := net.Dial(network, addr)
	if err != nil {
		return TransportSpeed{}, err
	}
	defer c.Close()
	buf := make([]byte, msize)
	req := make([]byte, echoRequest)
	ask := func(want uint32) error {
		binary.LittleEndian.PutUint32(req[7:], want)
		if _, err := c.Write(req); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf[:want])
		return err
	}
	var ts TransportSpeed
	const trips = 20000
	start := time.Now()
	for range trips {
		if err := ask(echoRequest); err != nil {
			return ts, err
		}
	}
	ts.RoundTrip = time.Since(start) / trips
	var moved int64
	start = time.Now()
	for moved < 2<<30 && time.Since(start) < 2*time.Second {
		if err := ask(msize); err != nil {
			return ts, err
		}
		moved += int64(msize)
	}
	ts.BytesPerSec = float64(moved) / time.Since(start).Seconds()
	ts.Library, err = libraryRoundTrip(network, sock+".lib", trips)
	return ts, err
}

// libraryRoundTrip times Tgetattr round trips to a hugelgupf/p9 server of
// staticRoot in a peer process.
func libraryRoundTrip(network, sock string, trips int) (time.Duration, error) {
	addr, stop, err := startPeer(envLibrary, network, sock)
	if err != nil {
		return 0, err
	}
	defer stop()
	c, root, err := p9raw.DialClient(network, addr, "", 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	for range trips {
		if _, err := c.Getattr(root); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(trips), nil
}
