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
)

// TransportSpeed is what a socket moves with no 9P server behind it.
type TransportSpeed struct {
	BytesPerSec float64       // replies of msize bytes to 11-byte requests, one at a time
	RoundTrip   time.Duration // an 11-byte request and an 11-byte reply
}

// envEcho, set to "network addr", makes a process that calls
// ServeEchoIfAsked serve echo requests there instead of doing its job.
const envEcho = "RUMP9P_BENCH_ECHO"

// echoRequest is the request's size: a 9P header (size[4] type[1]
// tag[2]) and the reply size wanted (want[4]).
const echoRequest = 11

// ServeEchoIfAsked serves the transport measurement's peer and exits if
// the process was started for it by MeasureTransport; otherwise it
// returns at once. Call it first thing in main (or TestMain).
func ServeEchoIfAsked() {
	spec := os.Getenv(envEcho)
	if spec == "" {
		return
	}
	network, addr, _ := strings.Cut(spec, " ")
	l, err := net.Listen(network, addr)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
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

// MeasureTransport runs an echo peer in a child process (this executable
// again, which must call ServeEchoIfAsked) on network (at sock for
// "unix") and measures the socket alone: 9P-like requests one at a time,
// answered with msize bytes (throughput) or 11 bytes (round trip).
func MeasureTransport(network, sock string, msize uint32) (TransportSpeed, error) {
	self, err := os.Executable()
	if err != nil {
		return TransportSpeed{}, err
	}
	addr := sock
	if network == "tcp" {
		addr = fmt.Sprintf("127.0.0.1:%d", freePort())
	} else {
		os.Remove(sock)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envEcho+"="+network+" "+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return TransportSpeed{}, err
	}
	if err := cmd.Start(); err != nil {
		return TransportSpeed{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		return TransportSpeed{}, fmt.Errorf("echo peer: %q", line)
	}
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
	return ts, nil
}
