package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Config is one comparison run.
type Config struct {
	Tree     Tree
	Sizes    Sizes
	Reps     int      // runs of each workload on each server and transport; the median counts
	Networks []string // "unix", "tcp"
	Msize    uint32
	Only     []string // workload names to run; every one if empty
	Dir      string   // scratch directory for the source tree and the images
	Server   Options
	Log      io.Writer // progress lines; nil for none
}

// logf writes one progress line to cfg.Log, if any.
func (cfg Config) logf(format string, a ...any) {
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, format+"\n", a...)
	}
}

// runs reports whether the workload name is to run (cfg.Only).
func (cfg Config) runs(name string) bool {
	return len(cfg.Only) == 0 || slices.Contains(cfg.Only, name)
}

// Sample is one timed run.
type Sample struct {
	N       int64 // operations or bytes
	Elapsed time.Duration
	CPU     time.Duration // the server's processor time during the run
}

// Result holds every sample of a comparison, by workload, transport and
// server name.
type Result struct {
	Config    Config
	Workloads []WorkloadInfo      // the rows, in order
	Networks  []string            // "unix", "tcp"; "fuse" for CompareFUSE
	Servers   [2]string           // rump9p and its peer
	Samples   map[string][]Sample // key: workload/network/server
	Transport map[string]TransportSpeed
}

// WorkloadInfo names a workload and its unit in a table.
type WorkloadInfo struct {
	Name, What string
	Unit       string // "ops", "bytes" or "latency"
}

func key(w, network, server string) string { return w + "/" + network + "/" + server }

// Median is the sample of median elapsed time per unit of work.
func (r *Result) Median(w, network, server string) (Sample, bool) {
	s := slices.Clone(r.Samples[key(w, network, server)])
	if len(s) == 0 {
		return Sample{}, false
	}
	slices.SortFunc(s, func(a, b Sample) int {
		return cmpFloat(float64(a.Elapsed)/float64(a.N), float64(b.Elapsed)/float64(b.N))
	})
	return s[len(s)/2], true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compare builds the tree and one image per server, starts rump9p and
// diod, measures each transport alone, and runs every workload cfg.Reps
// times on each server and transport, the servers taking turns.
func Compare(cfg Config) (*Result, error) {
	logf := cfg.logf
	imgs, err := makeImages(cfg, logf, "rump9p", "diod")
	if err != nil {
		return nil, err
	}
	var servers []*Server
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	for _, name := range []string{"rump9p", "diod"} {
		var s *Server
		var err error
		if name == "rump9p" {
			s, err = StartRump9p(cfg.Server, imgs[name], filepath.Dir(imgs[name]))
		} else {
			s, err = StartDiod(imgs[name], filepath.Dir(imgs[name]))
		}
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	res := &Result{Config: cfg, Networks: cfg.Networks, Servers: [2]string{"rump9p", "diod"},
		Samples: map[string][]Sample{}, Transport: map[string]TransportSpeed{}}
	for _, w := range Workloads {
		if cfg.runs(w.Name) {
			res.Workloads = append(res.Workloads, WorkloadInfo{w.Name, w.What, w.Unit})
		}
	}
	for _, network := range cfg.Networks {
		ts, err := MeasureTransport(network, filepath.Join(cfg.Dir, "echo.sock"), cfg.Msize)
		if err != nil {
			return nil, fmt.Errorf("transport %s alone: %w", network, err)
		}
		res.Transport[network] = ts
		logf("%s alone: %.0f MB/s, round trip %v; the 9P library alone: %v", network, ts.BytesPerSec/1e6, ts.RoundTrip, ts.Library)
	}
	for rep := 0; rep < cfg.Reps; rep++ {
		for _, w := range Workloads {
			if !cfg.runs(w.Name) {
				continue
			}
			for _, network := range cfg.Networks {
				for _, s := range servers {
					t := &Target{Server: s, Network: network, Msize: cfg.Msize, Tree: cfg.Tree, Sizes: cfg.Sizes, Rep: rep}
					sample, err := runOne(w, t)
					if err != nil {
						return nil, fmt.Errorf("%s on %s over %s: %w", w.Name, s.Name, network, err)
					}
					k := key(w.Name, network, s.Name)
					res.Samples[k] = append(res.Samples[k], sample)
					logf("rep %d %-9s %-5s %-7s %s", rep+1, w.Name, network, s.Name, describe(WorkloadInfo{w.Name, w.What, w.Unit}, sample))
				}
			}
		}
	}
	return res, nil
}

// makeImages builds cfg's tree once and an ext2 image of it for each
// name, as cfg.Dir/NAME/ext2.img.
func makeImages(cfg Config, logf func(string, ...any), names ...string) (map[string]string, error) {
	src := filepath.Join(cfg.Dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	logf("making the tree (%d small files, %d MiB big file, %d-entry directory) and %d ext2 images",
		cfg.Tree.SmallFiles, cfg.Tree.BigSize>>20, cfg.Tree.WideFiles, len(names))
	if err := makeTree(src, cfg.Tree); err != nil {
		return nil, err
	}
	imgs := map[string]string{}
	for _, name := range names {
		dir := filepath.Join(cfg.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		imgs[name] = filepath.Join(dir, "ext2.img")
		if err := makeImage(src, imgs[name], cfg.Tree); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// runOne connects, runs w's setup, then times w.Run.
func runOne(w Workload, t *Target) (Sample, error) {
	c, err := t.Server.Connect(t.Network, t.Msize)
	if err != nil {
		return Sample{}, err
	}
	defer c.Close()
	var setup func() error
	if w.Setup != nil {
		setup = func() error { return w.Setup(c, t) }
	}
	return timed(setup, func() (int64, error) { return w.Run(c, t) }, t.Server.CPU)
}

// timed runs setup (if any), then times run with the server's CPU time
// (cpu) before and after.
func timed(setup func() error, run func() (int64, error), cpu func() time.Duration) (Sample, error) {
	if setup != nil {
		if err := setup(); err != nil {
			return Sample{}, fmt.Errorf("setup: %w", err)
		}
	}
	cpu0 := cpu()
	start := time.Now()
	n, err := run()
	elapsed := time.Since(start)
	used := cpu() - cpu0
	if err != nil {
		return Sample{}, err
	}
	if n == 0 {
		return Sample{}, fmt.Errorf("did no work")
	}
	return Sample{N: n, Elapsed: elapsed, CPU: used}, nil
}

// rate is s's speed in w's unit: operations or megabytes per second, or
// microseconds per operation.
func rate(w WorkloadInfo, s Sample) float64 {
	switch w.Unit {
	case "bytes":
		return float64(s.N) / s.Elapsed.Seconds() / 1e6
	case "latency":
		return float64(s.Elapsed.Microseconds()) / float64(s.N)
	}
	return float64(s.N) / s.Elapsed.Seconds()
}

func unitName(w WorkloadInfo) string {
	switch w.Unit {
	case "bytes":
		return "MB/s"
	case "latency":
		return "µs/op"
	}
	return "ops/s"
}

// cpuPer is the server's CPU per operation (µs), or per MiB for bytes.
func cpuPer(w WorkloadInfo, s Sample) float64 {
	if w.Unit == "bytes" {
		return float64(s.CPU.Microseconds()) / (float64(s.N) / (1 << 20))
	}
	return float64(s.CPU.Microseconds()) / float64(s.N)
}

func describe(w WorkloadInfo, s Sample) string {
	return fmt.Sprintf("%10.1f %s  server CPU %6.1f µs/%s", rate(w, s), unitName(w), cpuPer(w, s), perWhat(w))
}

func perWhat(w WorkloadInfo) string {
	if w.Unit == "bytes" {
		return "MiB"
	}
	return "op"
}

// Table writes the medians: for each workload and transport, rump9p's and
// diod's speed, their ratio (above 1: rump9p is faster) and each server's
// CPU per operation (or per MiB moved).
func (r *Result) Table(out io.Writer) {
	a, b := r.Servers[0], r.Servers[1]
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\ttransport\tunit\t%s\t%s\tratio\t%s CPU\t%s CPU\tCPU per\t\n", a, b, a, b)
	for _, w := range r.Workloads {
		for _, network := range r.Networks {
			sa, okA := r.Median(w.Name, network, a)
			sb, okB := r.Median(w.Name, network, b)
			if !okA || !okB {
				continue
			}
			ratio := rate(w, sa) / rate(w, sb)
			if w.Unit == "latency" {
				ratio = 1 / ratio
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.1f\t%.2fx\t%.1f µs\t%.1f µs\t%s\t\n",
				w.Name, network, unitName(w), rate(w, sa), rate(w, sb), ratio, cpuPer(w, sa), cpuPer(w, sb), perWhat(w))
		}
	}
	tw.Flush()
	for _, network := range r.Networks {
		ts, ok := r.Transport[network]
		if !ok {
			continue
		}
		line := fmt.Sprintf("%s socket alone: %.0f MB/s one way in %d KiB messages, round trip %.1f µs; hugelgupf/p9 alone (constant directory, one processor): getattr %.1f µs",
			network, ts.BytesPerSec/1e6, r.Config.Msize>>10, float64(ts.RoundTrip.Nanoseconds())/1e3, float64(ts.Library.Nanoseconds())/1e3)
		if s, ok := r.Median("seqread", network, a); ok {
			line += fmt.Sprintf("; %s seqread is %.0f%% of it", a, 100*float64(s.N)/s.Elapsed.Seconds()/ts.BytesPerSec)
		}
		if s, ok := r.Median("getattr", network, a); ok {
			per := s.Elapsed / time.Duration(s.N)
			line += fmt.Sprintf("; getattr round trip %.2fx the socket's", float64(per)/float64(ts.RoundTrip))
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(out, "medians of %d runs; ratio = %s speed / %s speed; CPU = server process time\n", r.Config.Reps, a, b)
	if b == "diod" {
		fmt.Fprintln(out, "(diod's CPU excludes the loop device's kernel threads)")
	}
	var legend []string
	for _, w := range r.Workloads {
		legend = append(legend, fmt.Sprintf("  %-9s %s", w.Name, w.What))
	}
	fmt.Fprintln(out, strings.Join(legend, "\n"))
}
