package soak

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hugelgupf/p9/p9"
)

// Limits that keep each client's tree small enough for the images and the
// test's memory: at most maxFiles files of at most maxSize bytes.
const (
	maxFiles  = 24
	maxSize   = 128 << 10
	chunkSize = 32 << 10 // bytes per Tread and Twrite: one request each
)

// worker is one soak client on its own 9P connection. It works in its own
// directory cNN (with one subdirectory, sub), where it alone makes
// changes, so that its model of that tree says exactly what every reply
// must be; it also takes part in the shared-directory races.
type worker struct {
	id    int
	rng   *rand.Rand
	root  p9.File            // the mount's root
	dirs  map[string]p9.File // "" (cNN) and "sub" (cNN/sub), walked once
	files map[string][]byte  // path below cNN -> content
	next  int                // the number of the next new name
	seed  map[string][]byte  // files every client may read
	shdir p9.File            // shared/
	sh    *shared

	lat      []time.Duration // of every request
	loadReqs int             // how many of lat are the load's (the rest: the final check)
	ops      map[string]int
	failed   bool
}

// subdirs are the directories of a worker's tree, below cNN.
var subdirs = []string{"", "sub"}

func (w *worker) home() string { return fmt.Sprintf("c%02d", w.id) }

// do times one request.
func (w *worker) do(f func() error) error {
	start := time.Now()
	err := f()
	w.lat = append(w.lat, time.Since(start))
	return err
}

// op is one kind of operation, chosen with probability weight/total.
type op struct {
	name      string
	weight    int
	needsFile bool // works on one of the worker's files
	run       func(*worker) error
}

var ops = []op{
	{"create", 12, false, (*worker).create},
	{"create-existing", 2, true, (*worker).createExisting},
	{"write", 15, true, (*worker).write},
	{"truncate", 4, true, (*worker).truncate},
	{"read", 18, true, (*worker).read},
	{"getattr", 12, true, (*worker).getattr},
	{"walk-missing", 2, false, (*worker).walkMissing},
	{"rename", 8, true, (*worker).rename},
	{"unlink", 8, true, (*worker).unlink},
	{"readdir", 6, false, (*worker).readdir},
	{"lock", 5, true, (*worker).lock},
	{"shared-lock", 3, false, (*worker).sharedLock},
	{"rename-race", 4, false, (*worker).renameRace},
	{"read-seed", 3, false, (*worker).readSeed},
}

// opCreate and opUnlink keep a worker's tree between empty and full.
var (
	opCreate = ops[0]
	opUnlink = ops[8]
)

// step runs one operation chosen at random; its error says which and why.
func (w *worker) step() error {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := w.rng.IntN(total)
	for _, o := range ops {
		if n -= o.weight; n < 0 {
			// Keep the tree between empty and full by turning the op
			// into one that shrinks or grows it.
			switch {
			case len(w.files) == 0 && o.needsFile:
				o = opCreate
			case len(w.files) >= maxFiles && o.name == opCreate.name:
				o = opUnlink
			}
			w.ops[o.name]++
			if err := o.run(w); err != nil {
				return fmt.Errorf("client %d, op %d (%s): %w", w.id, w.total(), o.name, err)
			}
			return nil
		}
	}
	panic("unreachable")
}

func (w *worker) total() int {
	n := 0
	for _, c := range w.ops {
		n += c
	}
	return n
}

// pick returns a random path of the model.
func (w *worker) pick() string {
	paths := make([]string, 0, len(w.files))
	for p := range w.files {
		paths = append(paths, p)
	}
	slices.Sort(paths) // map order is not seeded
	return paths[w.rng.IntN(len(paths))]
}

// split turns "sub/f3" into ("sub", "f3") and "f3" into ("", "f3").
func split(path string) (dir, name string) {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}

func join(dir, name string) string {
	if dir == "" || name == "" {
		return dir + name
	}
	return dir + "/" + name
}

func (w *worker) newPath() string {
	w.next++
	return join(subdirs[w.rng.IntN(len(subdirs))], fmt.Sprintf("f%d", w.next))
}

func (w *worker) randBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := w.rng.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b
}

// writeAt writes data at off through f in chunkSize requests.
func (w *worker) writeAt(f p9.File, data []byte, off int64) error {
	for len(data) > 0 {
		part := data[:min(len(data), chunkSize)]
		var n int
		if err := w.do(func() (err error) { n, err = f.WriteAt(part, off); return }); err != nil {
			return fmt.Errorf("write %d bytes at %d: %w", len(part), off, err)
		}
		if n != len(part) {
			return fmt.Errorf("short write at %d: %d of %d", off, n, len(part))
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

// modelWrite is what a write of data at off does to content.
func modelWrite(content, data []byte, off int) []byte {
	if end := off + len(data); end > len(content) {
		content = append(content, make([]byte, end-len(content))...)
	}
	copy(content[off:], data)
	return content
}

func (w *worker) create() error {
	path := w.newPath()
	dir, name := split(path)
	data := w.randBytes(w.rng.IntN(16 << 10))
	var f p9.File
	if err := w.do(func() (err error) { f, err = walk(w.dirs[dir], ""); return }); err != nil {
		return err
	}
	defer w.do(f.Close)
	if err := w.do(func() error { _, _, _, err := f.Create(name, p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID); return err }); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w.files[path] = []byte{}
	if err := w.writeAt(f, data, 0); err != nil {
		return err
	}
	w.files[path] = data
	return nil
}

func (w *worker) createExisting() error {
	path := w.pick()
	dir, name := split(path)
	var f p9.File
	if err := w.do(func() (err error) { f, err = walk(w.dirs[dir], ""); return }); err != nil {
		return err
	}
	defer w.do(f.Close)
	err := w.do(func() error { _, _, _, err := f.Create(name, p9.ReadWrite, 0o644, p9.NoUID, p9.NoGID); return err })
	if !isErrno(err, syscall.EEXIST) {
		return fmt.Errorf("create over the existing %s: %v, want EEXIST", path, err)
	}
	return nil
}

func (w *worker) write() error {
	path := w.pick()
	content := w.files[path]
	off := w.rng.IntN(len(content) + 4096)
	n := 1 + w.rng.IntN(48<<10)
	if off+n > maxSize {
		off, n = 0, min(n, maxSize)
	}
	data := w.randBytes(n)
	f, err := open(w.dirs[""], path, p9.WriteOnly, w.do)
	if err != nil {
		return err
	}
	defer w.do(f.Close)
	if err := w.writeAt(f, data, int64(off)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	w.files[path] = modelWrite(content, data, off)
	if w.rng.IntN(8) == 0 {
		if err := w.do(f.FSync); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	return nil
}

func (w *worker) truncate() error {
	path := w.pick()
	size := w.rng.IntN(maxSize / 2)
	var f p9.File
	if err := w.do(func() (err error) { f, err = walk(w.dirs[""], path); return }); err != nil {
		return fmt.Errorf("walk %s: %w", path, err)
	}
	defer w.do(f.Close)
	if err := w.do(func() error {
		return f.SetAttr(p9.SetAttrMask{Size: true}, p9.SetAttr{Size: uint64(size)})
	}); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", path, size, err)
	}
	content := w.files[path]
	if size <= len(content) {
		w.files[path] = content[:size]
	} else {
		w.files[path] = append(content, make([]byte, size-len(content))...)
	}
	return nil
}

// checkFile reads path and compares it with the model.
func (w *worker) checkFile(path string) error {
	got, err := readAll(w.dirs[""], path, chunkSize, w.do)
	if err != nil {
		return err
	}
	return sameContent(path, got, w.files[path])
}

func sameContent(path string, got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("%s: read %d bytes, the model has %d; first difference at byte %d", path, len(got), len(want), i)
}

func (w *worker) read() error { return w.checkFile(w.pick()) }

func (w *worker) getattr() error {
	path := w.pick()
	var (
		f    p9.File
		attr p9.Attr
		mask p9.AttrMask
	)
	names := strings.Split(path, "/")
	if err := w.do(func() (err error) {
		_, f, mask, attr, err = w.dirs[""].WalkGetAttr(names)
		return
	}); err != nil {
		return fmt.Errorf("walkgetattr %s: %w", path, err)
	}
	defer w.do(f.Close)
	if !mask.Size || attr.Size != uint64(len(w.files[path])) || !attr.Mode.IsRegular() {
		return fmt.Errorf("getattr %s: size %d (valid %v), mode %v; the model has a regular file of %d bytes",
			path, attr.Size, mask.Size, attr.Mode, len(w.files[path]))
	}
	return nil
}

func (w *worker) walkMissing() error {
	path := join(subdirs[w.rng.IntN(len(subdirs))], "missing")
	var f p9.File
	err := w.do(func() (err error) { f, err = walk(w.dirs[""], path); return })
	if err == nil {
		w.do(f.Close)
	}
	if !isErrno(err, syscall.ENOENT) {
		return fmt.Errorf("walk to %s that was never made: %v, want ENOENT", path, err)
	}
	return nil
}

func (w *worker) rename() error {
	from := w.pick()
	to := w.newPath()
	if w.rng.IntN(2) == 0 && len(w.files) > 1 {
		to = w.pick() // replace an existing file (or rename onto itself)
	}
	fd, fn := split(from)
	td, tn := split(to)
	if err := w.do(func() error { return w.dirs[fd].RenameAt(fn, w.dirs[td], tn) }); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	content := w.files[from]
	delete(w.files, from)
	w.files[to] = content
	return nil
}

func (w *worker) unlink() error {
	path := w.pick()
	if w.rng.IntN(8) == 0 {
		path = join(subdirs[w.rng.IntN(len(subdirs))], "missing")
	}
	dir, name := split(path)
	err := w.do(func() error { return w.dirs[dir].UnlinkAt(name, 0) })
	if _, ok := w.files[path]; !ok {
		if !isErrno(err, syscall.ENOENT) {
			return fmt.Errorf("unlink of %s that does not exist: %v, want ENOENT", path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("unlink %s: %w", path, err)
	}
	delete(w.files, path)
	return nil
}

// checkDir lists one of the worker's directories and compares it with
// the model.
func (w *worker) checkDir(dir string) error {
	got, err := readdirAll(w.dirs[dir], "", w.do)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", w.home(), dir, err)
	}
	want := map[string]p9.QIDType{}
	for p := range w.files {
		if d, name := split(p); d == dir {
			want[name] = p9.TypeRegular
		}
	}
	if dir == "" {
		want["sub"] = p9.TypeDir
	}
	if !maps.Equal(got, want) {
		return fmt.Errorf("readdir %s/%s lists %v; the model has %v", w.home(), dir, sortedKeys(got), sortedKeys(want))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (w *worker) readdir() error { return w.checkDir(subdirs[w.rng.IntN(len(subdirs))]) }

// lock takes and drops POSIX locks on one of the worker's own files: no
// other client touches them, so every request must be granted.
func (w *worker) lock() error {
	path := w.pick()
	f, err := open(w.dirs[""], path, p9.ReadWrite, w.do)
	if err != nil {
		return err
	}
	defer w.do(f.Close)
	pid := 1000 + w.id
	steps := []struct {
		typ           p9.LockType
		start, length uint64
	}{
		{p9.WriteLock, 0, 100},
		{p9.ReadLock, 200, 0}, // to the end
		{p9.WriteLock, 50, 100},
		{p9.Unlock, 0, 0},
	}
	for _, s := range steps {
		var st p9.LockStatus
		if err := w.do(func() (err error) { st, err = lock(f, pid, s.typ, s.start, s.length); return }); err != nil || st != p9.LockStatusOK {
			return fmt.Errorf("lock %s %v [%d,+%d): %v %v, want granted (nobody else locks it)", path, s.typ, s.start, s.length, st, err)
		}
	}
	return nil
}

func (w *worker) readSeed() error {
	paths := sortedKeys(w.seed)
	path := paths[w.rng.IntN(len(paths))]
	got, err := readAll(w.root, path, chunkSize, w.do)
	if err != nil {
		return err
	}
	return sameContent(path, got, w.seed[path])
}

// verify checks the worker's whole tree against the model: both listings
// and every file.
func (w *worker) verify() error {
	for _, d := range subdirs {
		if err := w.checkDir(d); err != nil {
			return err
		}
	}
	for _, p := range sortedKeys(w.files) {
		if err := w.checkFile(p); err != nil {
			return err
		}
	}
	return nil
}

// shared is the state of the operations in the shared directory, whose
// outcomes are checked for consistency across clients.
type shared struct {
	// The rename race: a coordinator makes shared/tok-K, sets cur to K and
	// waits for a winner; every client that races renames tok-K to its
	// own won-K. Exactly one may succeed; the others get ENOENT.
	cur    atomic.Int64
	mu     sync.Mutex
	winner map[int64]int // token -> the client whose rename succeeded
	losers map[int64]int // token -> how many renames got ENOENT
	won    chan struct{} // a token was won
	made   int64         // tokens made

	// The shared lock: clients take a whole-file write lock on
	// shared/lockfile; holder is the client that holds it (0: nobody).
	holder  atomic.Int64
	granted atomic.Int64
	refused atomic.Int64
}

func newShared() *shared {
	s := &shared{winner: map[int64]int{}, losers: map[int64]int{}, won: make(chan struct{}, 1)}
	s.cur.Store(-1)
	return s
}

// tokenName is the shared name of token k and winnerName its name once won.
func tokenName(k int64) string  { return fmt.Sprintf("tok-%d", k) }
func winnerName(k int64) string { return fmt.Sprintf("won-%d", k) }
func tokenData(k int64) []byte  { return fmt.Appendf(nil, "token %d\n", k) }

func (w *worker) renameRace() error {
	k := w.sh.cur.Load()
	if k < 0 {
		return nil
	}
	err := w.do(func() error { return w.shdir.RenameAt(tokenName(k), w.dirs[""], winnerName(k)) })
	s := w.sh
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		if prev, taken := s.winner[k]; taken {
			return fmt.Errorf("rename race on %s: client %d won, but client %d had won it already", tokenName(k), w.id, prev)
		}
		s.winner[k] = w.id
		w.files[winnerName(k)] = tokenData(k)
		select {
		case s.won <- struct{}{}:
		default:
		}
	case isErrno(err, syscall.ENOENT):
		s.losers[k]++
	default:
		return fmt.Errorf("rename race on %s: %v, want success or ENOENT", tokenName(k), err)
	}
	return nil
}

// runTokens is the race's coordinator, on its own connection: it makes a
// token, publishes it and waits (at most 50 ms) for a client to take it.
func (s *shared) runTokens(dir p9.File, until time.Time) error {
	for k := int64(0); time.Now().Before(until); k++ {
		_, f, err := dir.Walk(nil)
		if err != nil {
			return err
		}
		if _, _, _, err := f.Create(tokenName(k), p9.WriteOnly, 0o644, p9.NoUID, p9.NoGID); err != nil {
			f.Close()
			return fmt.Errorf("making %s: %w", tokenName(k), err)
		}
		_, err = f.WriteAt(tokenData(k), 0)
		f.Close()
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.made = k + 1
		s.mu.Unlock()
		s.cur.Store(k)
		select {
		case <-s.won:
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.cur.Store(-1)
	return nil
}

// checkTokens, after the load: a token that some client got ENOENT for
// must have a winner, and shared/ must hold exactly the tokens nobody won.
func (s *shared) checkTokens(dir p9.File) error {
	names, err := readdirAll(dir, "", nil)
	if err != nil {
		return err
	}
	var errs []error
	for k := range s.made {
		_, won := s.winner[k]
		_, present := names[tokenName(k)]
		if won == present {
			errs = append(errs, fmt.Errorf("%s: won %v, and still in shared/ %v", tokenName(k), won, present))
		}
		if !won && s.losers[k] > 0 {
			errs = append(errs, fmt.Errorf("%s: %d renames got ENOENT, but nobody won it", tokenName(k), s.losers[k]))
		}
	}
	return errors.Join(errs...)
}

// raced reports how many tokens were made, won, and contended (more than
// one client raced).
func (s *shared) raced() (made, won, contended int) {
	for k := range s.made {
		if _, ok := s.winner[k]; ok {
			won++
			if s.losers[k] > 0 {
				contended++
			}
		}
	}
	return int(s.made), won, contended
}

// sharedLock takes a whole-file write lock on shared/lockfile without
// blocking. While a client holds it nobody else may: the test's own record
// of the holder must be free when a lock is granted.
func (w *worker) sharedLock() error {
	f, err := open(w.shdir, "lockfile", p9.ReadWrite, w.do)
	if err != nil {
		return fmt.Errorf("shared/%w", err)
	}
	defer w.do(f.Close)
	pid := 1000 + w.id
	var st p9.LockStatus
	if err := w.do(func() (err error) { st, err = lock(f, pid, p9.WriteLock, 0, 0); return }); err != nil {
		return fmt.Errorf("lock shared/lockfile: %w", err)
	}
	switch st {
	case p9.LockStatusBlocked:
		w.sh.refused.Add(1)
		return nil
	case p9.LockStatusOK:
	default:
		return fmt.Errorf("lock shared/lockfile: status %v", st)
	}
	me := int64(w.id + 1)
	if !w.sh.holder.CompareAndSwap(0, me) {
		return fmt.Errorf("shared/lockfile: write lock granted to client %d while client %d holds it", w.id, w.sh.holder.Load()-1)
	}
	w.sh.granted.Add(1)
	// Hold it for a request, so that others find it taken.
	err = w.do(func() error { _, err := f.WriteAt(fmt.Appendf(nil, "%02d", w.id), int64(2*w.id)); return err })
	w.sh.holder.Store(0)
	if err != nil {
		return fmt.Errorf("write shared/lockfile: %w", err)
	}
	if err := w.do(func() (err error) { st, err = lock(f, pid, p9.Unlock, 0, 0); return }); err != nil || st != p9.LockStatusOK {
		return fmt.Errorf("unlock shared/lockfile: %v %v", st, err)
	}
	return nil
}
