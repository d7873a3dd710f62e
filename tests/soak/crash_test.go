package soak

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// crashWriters is how many clients write while the server is killed.
const crashWriters = 8

// TestCrash kills "rump9p serve" with SIGKILL at random points of a write
// load, repairs the image with the format's fsck, and requires every file
// whose fsync returned to be intact when the image is served again. The
// rounds run on one image, so that each also checks what earlier rounds
// made durable.
func TestCrash(t *testing.T) {
	rounds := int(envInt(t, "CRASH_ROUNDS", 4))
	seed := uint64(envInt(t, "CRASH_SEED", time.Now().UnixNano()&(1<<62-1)))
	t.Logf("CRASH_ROUNDS=%d CRASH_SEED=%d", rounds, seed)
	for i, k := range []fsKind{ext2Kind, fat32Kind} {
		t.Run(k.name, func(t *testing.T) { crash(t, k, rounds, rand.New(rand.NewPCG(seed, uint64(i)))) })
	}
}

func crash(t *testing.T, k fsKind, rounds int, rng *rand.Rand) {
	needTools(t, k.tools...)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	durable := seedFiles() // path -> content of every file that must survive
	k.make(t, img, durable)
	for r := range rounds {
		killAfter := 300*time.Millisecond + time.Duration(rng.Int64N(int64(2700*time.Millisecond)))
		srv := startServer(t, dir, k.typ, img)
		load := crashLoad(t, srv, r, rng.Uint64(), killAfter)
		if t.Failed() {
			return
		}
		found, code := k.fsck(img)
		if found == "" {
			found = "nothing"
		}
		fixed := k.preenImage(t, img)
		k.mustBeClean(t, img, "after the repair")

		srv = startServer(t, dir, k.typ, img)
		cl, root, err := dial(srv.sock, 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		for path, data := range load.synced {
			durable[path] = data
		}
		lost, checked := 0, len(durable)
		for _, path := range sortedKeys(durable) {
			got, err := readAll(root, path, chunkSize, nil)
			if err == nil {
				err = sameContent(path, got, durable[path])
			}
			if err != nil {
				t.Errorf("round %d: a file whose fsync returned (or a seed file): %v", r, err)
				lost++
			}
		}
		files, survived, err := readTree(root, "", load.unsynced)
		if err != nil {
			t.Errorf("round %d: reading the repaired tree: %v", r, err)
		}
		// The round before this one has been checked twice: remove it, so
		// that the image never fills up however many rounds run.
		if r > 0 {
			if err := removeRound(root, r-1); err != nil {
				t.Errorf("round %d: removing round %d: %v", r, r-1, err)
			}
			for path := range durable {
				if strings.HasPrefix(path, fmt.Sprintf("r%d-", r-1)) {
					delete(durable, path)
				}
			}
		}
		cl.Close()
		srv.stop(t)
		k.mustBeClean(t, img, "after serving the repaired image")
		t.Logf("round %d: killed after %v: %d files made, %d rewritten and %d renamed; %d fsync'd files at the kill. %s found: %s (exit %d); %s. Then %d of %d durable files intact, %d of %d others present, %d files in the tree",
			r, killAfter.Round(time.Millisecond), load.made, load.rewrites, load.renames, len(load.synced),
			strings.Join(k.check, " "), found, code, fixed, checked-lost, checked, survived, len(load.unsynced), files)
	}
}

// atRemoveDir is Tunlinkat's flag for a directory (Linux AT_REMOVEDIR).
const atRemoveDir = 0x200

// removeRound removes the directories rN-wM of round n and their files.
func removeRound(root p9.File, n int) error {
	for w := range crashWriters {
		home := fmt.Sprintf("r%d-w%d", n, w)
		names, err := readdirAll(root, home, nil)
		if err != nil {
			return err
		}
		d, err := walk(root, home)
		if err != nil {
			return err
		}
		for name := range names {
			if err := d.UnlinkAt(name, 0); err != nil {
				d.Close()
				return fmt.Errorf("unlink %s/%s: %w", home, name, err)
			}
		}
		d.Close()
		if err := root.UnlinkAt(home, atRemoveDir); err != nil {
			return fmt.Errorf("rmdir %s: %w", home, err)
		}
	}
	return nil
}

// preenImage repairs a crashed image as a boot would and says how it went.
func (k fsKind) preenImage(t *testing.T, img string) string {
	t.Helper()
	cmd := strings.Join(k.preen, " ")
	out, code := run(k.preen[0], append(k.preen[1:], img)...)
	if !strings.Contains(out, k.dirty) {
		t.Errorf("%s does not find the image of a killed server unclean (%q): a boot would skip the check:\n%s", cmd, k.dirty, out)
	}
	if code > k.preenMax {
		t.Errorf("%s could not repair the image (exit %d):\n%s", cmd, code, out)
		cmd = strings.Join(k.repair, " ")
		if out, code = run(k.repair[0], append(k.repair[1:], img)...); code > k.preenMax {
			t.Fatalf("%s could not repair the image (exit %d):\n%s", cmd, code, out)
		}
	}
	return fmt.Sprintf("%s exit %d (%s)", cmd, code, lastLine(out))
}

// loadResult is what a write load did before the kill.
type loadResult struct {
	mu       sync.Mutex
	made     int                 // files created
	rewrites int                 // fsync'd files rewritten and fsync'd again
	renames  int                 // fsync'd files renamed and fsync'd again
	synced   map[string][]byte   // fsync returned: must survive as is
	unsynced map[string]struct{} // not fsync'd since the last change: may be lost or torn
}

// changing moves path to unsynced before a change; synced moves it back
// with its new content once an fsync has returned.
func (r *loadResult) changing(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.synced, path)
	r.unsynced[path] = struct{}{}
}

func (r *loadResult) fsynced(path string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.unsynced, path)
	r.synced[path] = data
}

func (r *loadResult) gone(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.unsynced, path)
}

// crashLoad runs crashWriters clients, each in its own new directory
// rN-wM, and kills the server after killAfter. Each writer creates files
// of random sizes and fsyncs about half of them, and now and then
// rewrites or renames one of its fsync'd files and fsyncs it again, or
// removes an unsynced one. A file counts as synced from the moment an
// fsync of it returns until its next change begins.
func crashLoad(t *testing.T, srv *server, round int, seed uint64, killAfter time.Duration) *loadResult {
	res := &loadResult{synced: map[string][]byte{}, unsynced: map[string]struct{}{}}
	var (
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	for w := range crashWriters {
		cl, root, err := dial(srv.sock, 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		cw := &crashWriter{res: res, root: root, rng: rand.New(rand.NewPCG(seed, uint64(w))),
			home: fmt.Sprintf("r%d-w%d", round, w)}
		wg.Go(func() {
			defer cl.Close()
			if err := cw.run(); err != nil && !killed.Load() {
				t.Errorf("%s: %v", cw.home, err)
			}
		})
	}
	time.Sleep(killAfter)
	killed.Store(true)
	srv.kill()
	wg.Wait()
	return res
}

// crashWriter is one client of crashLoad.
type crashWriter struct {
	res    *loadResult
	root   p9.File
	rng    *rand.Rand
	home   string
	next   int
	synced []string // its files in res.synced
	loose  []string // its files in res.unsynced
}

// run works until the connection fails.
func (w *crashWriter) run() error {
	if _, err := w.root.Mkdir(w.home, 0o755, p9.NoUID, p9.NoGID); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	for {
		var err error
		switch n := w.rng.IntN(8); {
		case n == 0 && len(w.synced) > 0:
			err = w.rewrite()
		case n == 1 && len(w.synced) > 0:
			err = w.rename()
		case n == 2 && len(w.loose) > 0:
			err = w.unlink()
		default:
			err = w.create()
		}
		if err != nil {
			return err
		}
	}
}

func (w *crashWriter) data() []byte {
	data := make([]byte, 1+w.rng.IntN(256<<10))
	for j := range data {
		data[j] = byte(w.rng.Uint32())
	}
	return data
}

func (w *crashWriter) newPath() string {
	w.next++
	return fmt.Sprintf("%s/f%d", w.home, w.next)
}

// create makes a new file and fsyncs it half of the time.
func (w *crashWriter) create() error {
	path, data := w.newPath(), w.data()
	w.res.mu.Lock()
	w.res.made++
	w.res.mu.Unlock()
	w.res.changing(path)
	dir, name := split(path)
	f, err := walk(w.root, dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, _, err := f.Create(name, p9.WriteOnly, 0o644, p9.NoUID, p9.NoGID); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return w.writeAndSync(f, path, data, w.rng.IntN(2) == 0)
}

// oTrunc is Linux's O_TRUNC, as Tlopen carries it.
const oTrunc p9.OpenFlags = 0o1000

// rewrite truncates one of the fsync'd files, writes new content and
// fsyncs it again.
func (w *crashWriter) rewrite() error {
	path := w.takeSynced()
	data := w.data()
	w.res.changing(path)
	f, err := open(w.root, path, p9.WriteOnly|oTrunc, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := w.writeAndSync(f, path, data, true); err != nil {
		return err
	}
	w.res.mu.Lock()
	w.res.rewrites++
	w.res.mu.Unlock()
	return nil
}

// rename gives one of the fsync'd files a new name and fsyncs it: the
// new name is what must then survive.
func (w *crashWriter) rename() error {
	from := w.takeSynced()
	w.res.mu.Lock()
	data := w.res.synced[from]
	w.res.mu.Unlock()
	to := w.newPath()
	w.res.changing(from)
	w.res.changing(to)
	dir, oldName := split(from)
	_, newName := split(to)
	d, err := walk(w.root, dir)
	if err != nil {
		return err
	}
	err = d.RenameAt(oldName, d, newName)
	d.Close()
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	w.res.gone(from)
	f, err := open(w.root, to, p9.ReadOnly, nil)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.FSync(); err != nil {
		return fmt.Errorf("fsync %s: %w", to, err)
	}
	w.res.fsynced(to, data)
	w.synced = append(w.synced, to)
	w.res.mu.Lock()
	w.res.renames++
	w.res.mu.Unlock()
	return nil
}

// unlink removes the oldest unsynced file.
func (w *crashWriter) unlink() error {
	path := w.loose[0]
	w.loose = w.loose[1:]
	dir, name := split(path)
	d, err := walk(w.root, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.UnlinkAt(name, 0); err != nil {
		return fmt.Errorf("unlink %s: %w", path, err)
	}
	w.res.gone(path)
	return nil
}

// takeSynced picks one of the writer's fsync'd files and forgets it.
func (w *crashWriter) takeSynced() string {
	i := w.rng.IntN(len(w.synced))
	path := w.synced[i]
	w.synced = slices.Delete(w.synced, i, i+1)
	return path
}

// writeAndSync writes data to the open f from offset 0 and, if sync,
// fsyncs it and records it as synced.
func (w *crashWriter) writeAndSync(f p9.File, path string, data []byte, sync bool) error {
	for off := 0; off < len(data); off += chunkSize {
		if _, err := f.WriteAt(data[off:min(off+chunkSize, len(data))], int64(off)); err != nil {
			return fmt.Errorf("write %s at %d: %w", path, off, err)
		}
	}
	if !sync {
		w.loose = append(w.loose, path)
		return nil
	}
	if err := f.FSync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	w.res.fsynced(path, data)
	w.synced = append(w.synced, path)
	return nil
}

// readTree reads every file below dir (what fsck left must be readable)
// and counts the files, and how many of them are in unsynced.
func readTree(root p9.File, dir string, unsynced map[string]struct{}) (files, found int, err error) {
	ents, err := readdirAll(root, dir, nil)
	if err != nil {
		return 0, 0, err
	}
	for _, name := range sortedKeys(ents) {
		path := join(dir, name)
		switch ents[name] {
		case p9.TypeDir:
			n, m, err := readTree(root, path, unsynced)
			files, found = files+n, found+m
			if err != nil {
				return files, found, err
			}
		default:
			if _, err := readAll(root, path, chunkSize, nil); err != nil {
				return files, found, err
			}
			files++
			if _, ok := unsynced[path]; ok {
				found++
			}
		}
	}
	return files, found, nil
}
