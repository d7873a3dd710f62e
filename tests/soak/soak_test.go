package soak

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// envDuration reads a duration knob, or returns def.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 60s", name, v)
	}
	return d
}

// envInt reads an integer knob, or returns def.
func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// rssLimitMiB bounds the server's peak RSS under the soak: the buffer
// cache (64 MiB by default), the files of a tmpfs (at most 32 × 24 ×
// 128 KiB = 96 MiB plus the seed), the requests in flight (security.max_memory,
// 256 MiB by default) and the Go heap's slack. Going past it means memory
// that nothing in the configuration accounts for.
const rssLimitMiB = 512

// TestSoak runs the mixed load on tmpfs, ext2 and FAT32 in turn.
func TestSoak(t *testing.T) {
	dur := envDuration(t, "SOAK_TIME", 20*time.Second)
	clients := int(envInt(t, "SOAK_CLIENTS", 32))
	seed := uint64(envInt(t, "SOAK_SEED", time.Now().UnixNano()&(1<<62-1)))
	t.Logf("SOAK_TIME=%v SOAK_CLIENTS=%d SOAK_SEED=%d", dur, clients, seed)
	for _, k := range []fsKind{tmpfsKind, ext2Kind, fat32Kind} {
		t.Run(k.name, func(t *testing.T) { soak(t, k, dur, clients, seed) })
	}
}

func soak(t *testing.T, k fsKind, dur time.Duration, clients int, seed uint64) {
	needTools(t, k.tools...)
	dir := t.TempDir()
	seedData := seedFiles()
	img := ""
	if k.make != nil {
		img = filepath.Join(dir, "disk.img")
		k.make(t, img, seedData)
	}
	srv := startServer(t, dir, k.typ, img)
	// Before and after: the server without a client.
	before := srv.mustStats(t)
	gBefore := srv.goroutinesAfter(t, time.Now())

	// The layout: seed files (written here on tmpfs), shared/ with the lock
	// file, and each client's own cNN and cNN/sub.
	setup, root, err := dial(srv.sock, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	if img == "" {
		writeTree(t, root, seedData)
	}
	mkdirs := []string{"shared"}
	for i := range clients {
		mkdirs = append(mkdirs, fmt.Sprintf("c%02d", i), fmt.Sprintf("c%02d/sub", i))
	}
	for _, d := range mkdirs {
		parent, name := split(d)
		pf, err := walk(root, parent)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pf.Mkdir(name, 0o755, p9.NoUID, p9.NoGID); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
		pf.Close()
	}
	writeTree(t, root, map[string][]byte{"shared/lockfile": make([]byte, 2*clients)})
	sh := newShared()
	tokDir, err := walk(root, "shared")
	if err != nil {
		t.Fatal(err)
	}

	workers := make([]*worker, clients)
	conns := make([]*p9.Client, clients)
	for i := range workers {
		cl, r, err := dial(srv.sock, 256<<10)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		w := &worker{id: i, rng: rand.New(rand.NewPCG(seed, uint64(i))), root: r, files: map[string][]byte{},
			dirs: map[string]p9.File{}, seed: seedData, sh: sh, ops: map[string]int{}}
		for _, d := range subdirs {
			if w.dirs[d], err = walk(r, join(w.home(), d)); err != nil {
				t.Fatal(err)
			}
		}
		if w.shdir, err = walk(r, "shared"); err != nil {
			t.Fatal(err)
		}
		workers[i], conns[i] = w, cl
	}

	// Sample the server while the load runs.
	var (
		peak     procStats
		sampling = make(chan struct{})
		sampled  sync.WaitGroup
	)
	sampled.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-tick.C:
			}
			st, err := srv.stats()
			if err != nil {
				continue // the end of the load will say why
			}
			peak.fds = max(peak.fds, st.fds)
			peak.threads = max(peak.threads, st.threads)
		}
	})

	start := time.Now()
	until := start.Add(dur)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []string
		loadEnd time.Time
	)
	fail := func(w *worker, err error) {
		mu.Lock()
		errs = append(errs, err.Error())
		mu.Unlock()
		if w != nil {
			w.failed = true // its model no longer says what the tree holds
		}
	}
	for i, w := range workers {
		wg.Go(func() {
			defer conns[i].Close()
			for time.Now().Before(until) {
				if err := w.step(); err != nil {
					fail(w, err)
					return
				}
			}
			w.loadReqs = len(w.lat)
			mu.Lock()
			if now := time.Now(); now.After(loadEnd) {
				loadEnd = now
			}
			mu.Unlock()
			if err := w.verify(); err != nil {
				fail(w, fmt.Errorf("client %d, final check: %w", w.id, err))
			}
		})
	}
	if err := sh.runTokens(tokDir, until); err != nil {
		fail(nil, fmt.Errorf("race coordinator: %w", err))
	}
	wg.Wait()
	gDuring, _ := srv.out.goroutinesAfter(start.Add(dur/2), 0)
	if err := sh.checkTokens(tokDir); err != nil {
		fail(nil, fmt.Errorf("rename race: %w", err))
	}
	tokDir.Close()
	setup.Close()
	close(sampling)
	sampled.Wait()
	for _, e := range errs {
		t.Error(e)
	}

	// What the load left behind, once the server has seen every client go.
	var after procStats
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if after = srv.mustStats(t); after.fds <= before.fds || time.Now().After(deadline) {
			break
		}
	}
	gAfter := srv.goroutinesAfter(t, time.Now())

	report(t, workers, loadEnd.Sub(start), sh)
	t.Logf("server: RSS %d MiB before, %d MiB peak (VmHWM), %d MiB after; fds %d before, %d peak, %d after; threads %d before, %d peak, %d after",
		before.rssKiB>>10, after.hwmKiB>>10, after.rssKiB>>10, before.fds, peak.fds, after.fds, before.threads, peak.threads, after.threads)
	t.Logf("server goroutines (runtime's own included): %d before, %d mid-load, %d after", gBefore, gDuring, gAfter)
	if after.fds > before.fds {
		t.Errorf("server holds %d descriptors after every client left, %d before the load: a leak", after.fds, before.fds)
	}
	if hwm := after.hwmKiB >> 10; hwm > rssLimitMiB {
		t.Errorf("server peak RSS %d MiB, more than the %d MiB that its configuration accounts for", hwm, rssLimitMiB)
	}

	srv.stop(t)
	if img == "" {
		return
	}
	k.mustBeClean(t, img, "after the soak and SIGTERM")
	// The models again, from the image as the clean shutdown left it.
	srv = startServer(t, dir, k.typ, img)
	cl, r, err := dial(srv.sock, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workers {
		if w.failed {
			continue
		}
		w.root = r
		for _, d := range subdirs {
			if w.dirs[d], err = walk(r, join(w.home(), d)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.verify(); err != nil {
			t.Errorf("client %d's tree after a restart: %v", w.id, err)
		}
	}
	cl.Close()
	srv.stop(t)
	k.mustBeClean(t, img, "after the restart")
}

// writeTree writes files (paths with '/', directories made as needed)
// below root.
func writeTree(t *testing.T, root p9.File, files map[string][]byte) {
	t.Helper()
	for _, path := range sortedKeys(files) {
		dir, name := split(path)
		made := ""
		for _, c := range strings.Split(dir, "/") {
			if c == "" {
				continue
			}
			d, err := walk(root, made)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Mkdir(c, 0o755, p9.NoUID, p9.NoGID); err != nil && !isErrno(err, syscall.EEXIST) {
				t.Fatalf("mkdir %s/%s: %v", made, c, err)
			}
			d.Close()
			made = join(made, c)
		}
		d, err := walk(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := d.Create(name, p9.WriteOnly, 0o644, p9.NoUID, p9.NoGID); err != nil {
			t.Fatalf("create %s: %v", path, err)
		}
		for off := 0; off < len(files[path]); off += chunkSize {
			if _, err := d.WriteAt(files[path][off:min(off+chunkSize, len(files[path]))], int64(off)); err != nil {
				t.Fatalf("write %s: %v", path, err)
			}
		}
		d.Close()
	}
}

// report logs the load's figures (the final checks not included).
func report(t *testing.T, workers []*worker, elapsed time.Duration, sh *shared) {
	var lat []time.Duration
	counts := map[string]int{}
	ops := 0
	for _, w := range workers {
		lat = append(lat, w.lat[:w.loadReqs]...)
		for k, n := range w.ops {
			counts[k] += n
			ops += n
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	secs := elapsed.Seconds()
	t.Logf("%d clients, %.1f s: %d operations (%.0f ops/s), %d 9P requests (%.0f req/s); request latency p50 %v, p99 %v, max %v",
		len(workers), secs, ops, float64(ops)/secs, len(lat), float64(len(lat))/secs,
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	t.Logf("operations: %s", strings.Join(parts, ", "))
	made, won, contended := sh.raced()
	t.Logf("shared: %d rename-race tokens, %d won (%d with losers); shared lock granted %d times, refused %d times",
		made, won, contended, sh.granted.Load(), sh.refused.Load())
}
