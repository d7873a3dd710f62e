package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkGuest times what a VM user does on a mounted image (guest/bench.sh:
// dd write and read of 64 MiB, cp -a of 2,000 small files in, and reading
// them all back) over each way a guest reaches rump9p, against the same
// guest on QEMU's own virtio-9p server on a plain host directory (the
// ceiling: the host kernel's file system, no image):
//
//	tcp      rump9p serve (ext2 image) ← guest-mount --tcp, QEMU user networking
//	fd       rump9p serve (ext2 image) ← guest-mount --virtio-port (virtio-serial)
//	virtfs   rump9p mount (FUSE, ext2 image) ← QEMU -virtfs local ← trans=virtio
//	hostdir  a host directory ← QEMU -virtfs local ← trans=virtio
//
// Guests boot one after another (never side by side), each running every
// operation $RUMP9P_VM_BENCH_REPS times (default 3); the table gives the
// median seconds and the ratio to hostdir (above 1: faster than the
// ceiling). Run it on an idle machine:
//
//	go test -run '^$' -bench Guest -benchtime 1x ./tests/vm/
func BenchmarkGuest(b *testing.B) {
	reps := os.Getenv("RUMP9P_VM_BENCH_REPS")
	if reps == "" {
		reps = "3"
	}
	ways := []string{"tcp", "fd", "virtfs", "hostdir"}
	results := map[string]map[string]float64{}
	for range b.N {
		for _, way := range ways {
			results[way] = benchGuestOnce(b, way, reps)
		}
	}
	ops := []string{"write_64MiB", "read_64MiB", "copyin_2000", "readall_2000"}
	var tab strings.Builder
	fmt.Fprintf(&tab, "%-13s", "median s")
	for _, w := range ways {
		fmt.Fprintf(&tab, " %16s", w)
	}
	tab.WriteString("\n")
	for _, op := range ops {
		fmt.Fprintf(&tab, "%-13s", op)
		ceiling := results["hostdir"][op]
		for _, w := range ways {
			s := results[w][op]
			fmt.Fprintf(&tab, " %7.2f (%5.2fx)", s, ceiling/s)
			b.ReportMetric(s, w+"_"+op+"_s")
		}
		tab.WriteString("\n")
	}
	// Printed, not logged: the testing package cuts a benchmark's log short.
	fmt.Printf("guest operations, median of %s runs each (ratio: hostdir time / this time)\n%s", reps, tab.String())
}

// benchGuestOnce boots one guest reaching its files the given way and
// returns the median seconds of each operation guest/bench.sh timed.
func benchGuestOnce(b *testing.B, way, reps string) map[string]float64 {
	name := "bench-" + way
	env := map[string]string{"TRANSPORT": way, "HOST": "10.0.2.2", "MSIZE": "1048576", "REPS": reps}
	cfg := vmConfig{name: name, script: "guest/bench.sh", env: env}
	switch way {
	case "tcp", "fd":
		s := startServerImage(b, name, true)
		env["ANAME"], env["PORT"] = s.aname, strconv.Itoa(s.port)
		cfg.net = way == "tcp"
		if way == "fd" {
			cfg.serial = s.sock
		}
		defer s.stop(b)
	case "virtfs", "hostdir":
		export := filepath.Join(sharedDir(b), name, "export")
		if way == "virtfs" {
			s := startFuseMount(b, name)
			export = s.export
			defer s.stop(b)
		} else if err := os.MkdirAll(export, 0o755); err != nil {
			b.Fatal(err)
		}
		env["TRANSPORT"], env["ANAME"], env["MSIZE"] = "virtio", "img", "512000"
		cfg.virtfs = "local,path=" + export + ",mount_tag=img,security_model=passthrough,id=fs0"
	}
	res := bootGuest(b, cfg)
	if res.exit != 0 || res.qemuError != nil {
		b.Fatalf("%s: guest exit %d, qemu: %v\n%s", way, res.exit, res.qemuError, tail(res.log, 30))
	}
	times := map[string][]float64{}
	for _, l := range res.info {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "BENCH" {
			continue
		}
		s, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			b.Fatalf("%s: bad line %q", way, l)
		}
		times[f[1]] = append(times[f[1]], s)
	}
	med := map[string]float64{}
	for op, ts := range times {
		slices.Sort(ts)
		med[op] = ts[len(ts)/2]
		b.Logf("%s %s: %v", way, op, ts)
	}
	return med
}
