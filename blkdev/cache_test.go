package blkdev

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// recDevice wraps a Device, recording the block offsets written, counting
// Syncs, and optionally failing or delaying I/O.
type recDevice struct {
	Device
	mu        sync.Mutex
	writes    []int64
	syncs     int
	failRead  int64 // offset whose read fails, -1 none
	failWrite int64 // offset whose write fails, -1 none
	readDelay time.Duration
	reads     atomic.Int64
}

func newRecDevice(d Device) *recDevice {
	return &recDevice{Device: d, failRead: -1, failWrite: -1}
}

func (r *recDevice) ReadAt(p []byte, off int64) (int, error) {
	r.reads.Add(1)
	time.Sleep(r.readDelay)
	r.mu.Lock()
	fail := off == r.failRead
	r.mu.Unlock()
	if fail {
		return 0, syscall.EIO
	}
	return r.Device.ReadAt(p, off)
}

func (r *recDevice) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, off)
	fail := off == r.failWrite
	r.mu.Unlock()
	if fail {
		return 0, &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	}
	return r.Device.WriteAt(p, off)
}

func (r *recDevice) Sync() error {
	r.mu.Lock()
	r.syncs++
	r.mu.Unlock()
	return r.Device.Sync()
}

func (r *recDevice) written() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

// patterned returns a MemDevice of n blocks of bs bytes, each byte of
// block i holding byte(i).
func patterned(n, bs int) *MemDevice {
	data := make([]byte, n*bs)
	for i := range data {
		data[i] = byte(i / bs)
	}
	return NewMemDeviceFrom(data, false)
}

func cached(c *Cache, blkno int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bufs[blkno] != nil
}

func get(t *testing.T, c *Cache, blkno int64) *Buf {
	t.Helper()
	b, err := c.Get(blkno)
	if err != nil {
		t.Fatalf("Get(%d): %v", blkno, err)
	}
	return b
}

func TestCacheGet(t *testing.T) {
	c := NewCache(patterned(16, 512), 512, 1<<20)
	b := get(t, c, 3)
	if len(b.Data()) != 512 || b.Data()[0] != 3 || b.Data()[511] != 3 || b.Blkno() != 3 {
		t.Fatalf("block 3 holds %d… (%d bytes)", b.Data()[0], len(b.Data()))
	}
	b2 := get(t, c, 3)
	if b2 != b {
		t.Fatal("two Gets of a block returned different buffers")
	}
	b.Release()
	b2.Release()
	if s := c.Stats(); s.Hits != 1 || s.Misses != 1 || s.Reads != 1 {
		t.Fatalf("stats %+v", s)
	}
	for _, blk := range []int64{-1, 16, 1 << 62} {
		if _, err := c.Get(blk); err != syscall.EIO {
			t.Errorf("Get(%d): %v, want EIO", blk, err)
		}
	}
	// A device whose size is not a multiple of the block size: the
	// partial last block is out of range.
	c2 := NewCache(NewMemDevice(1000), 512, 1<<20)
	if _, err := c2.Get(1); err != syscall.EIO {
		t.Errorf("partial block: %v", err)
	}
}

func TestCacheReadError(t *testing.T) {
	rd := newRecDevice(patterned(8, 512))
	rd.failRead = 2 * 512
	c := NewCache(rd, 512, 1<<20)
	if _, err := c.Get(2); err != syscall.EIO {
		t.Fatalf("failed read: %v", err)
	}
	if cached(c, 2) {
		t.Fatal("failed block stays cached")
	}
	rd.mu.Lock()
	rd.failRead = -1
	rd.mu.Unlock()
	b := get(t, c, 2) // retried
	if b.Data()[0] != 2 {
		t.Fatal("retry read wrong data")
	}
	b.Release()
}

func TestCacheLRU(t *testing.T) {
	c := NewCache(patterned(16, 512), 512, 4*512)
	for i := int64(0); i < 4; i++ {
		get(t, c, i).Release()
	}
	get(t, c, 0).Release() // 0 is now the most recent; 1 the least
	get(t, c, 4).Release()
	if cached(c, 1) || !cached(c, 0) || !cached(c, 2) || !cached(c, 4) {
		t.Fatal("eviction did not drop the least recently used block 1")
	}
	get(t, c, 5).Release()
	if cached(c, 2) || !cached(c, 3) {
		t.Fatal("second eviction did not drop block 2")
	}
	if s := c.Stats(); s.Evictions != 2 || len(c.bufs) != 4 {
		t.Fatalf("stats %+v, %d cached", s, len(c.bufs))
	}
}

func TestCachePinningPreventsEviction(t *testing.T) {
	c := NewCache(patterned(16, 512), 512, 2*512)
	var held []*Buf
	for i := int64(0); i < 5; i++ {
		held = append(held, get(t, c, i))
	}
	for i := int64(0); i < 5; i++ {
		if !cached(c, i) || held[i].Data()[0] != byte(i) {
			t.Fatalf("pinned block %d evicted or clobbered", i)
		}
	}
	for _, b := range held {
		b.Release()
	}
	get(t, c, 10).Release() // now the cache shrinks back to its budget
	if n := len(c.bufs); n != 2 {
		t.Fatalf("%d buffers cached after release, want 2", n)
	}
	if !cached(c, 10) || !cached(c, 4) {
		t.Fatal("wrong buffers kept")
	}
}

func TestCacheWriteBackOnEviction(t *testing.T) {
	p := tempImage(t, 16*4096)
	dev := mustOpen(t, p, false)
	c := NewCache(dev, 4096, 2*4096)
	b := get(t, c, 1)
	copy(b.Data(), "dirty block one")
	b.MarkDirty()
	b.Release()
	get(t, c, 2).Release()
	get(t, c, 3).Release() // evicts 1, writing it back
	if cached(c, 1) {
		t.Fatal("block 1 not evicted")
	}
	img, _ := os.ReadFile(p)
	if !bytes.HasPrefix(img[4096:], []byte("dirty block one")) {
		t.Fatalf("image block 1 starts %q", img[4096:4096+15])
	}
	if s := c.Stats(); s.Writes != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Reading it back goes to the device and sees the written data.
	b = get(t, c, 1)
	if !bytes.HasPrefix(b.Data(), []byte("dirty block one")) {
		t.Fatal("reloaded block lost the write")
	}
	b.Release()
}

func TestCacheEvictionWriteError(t *testing.T) {
	rd := newRecDevice(patterned(8, 512))
	rd.failWrite = 512
	c := NewCache(rd, 512, 512)
	b := get(t, c, 1)
	b.Data()[0] = 0xAA
	b.MarkDirty()
	b.Release()
	get(t, c, 2).Release() // write-back of 1 fails: 1 stays
	if !cached(c, 1) {
		t.Fatal("dirty block dropped after a failed write-back")
	}
	rd.mu.Lock()
	rd.failWrite = -1
	rd.mu.Unlock()
	if err := c.Sync(); err != syscall.ENOSPC {
		t.Fatalf("Sync after failed write-back: %v, want ENOSPC", err)
	}
	if err := c.Sync(); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
}

func TestCacheSync(t *testing.T) {
	p := tempImage(t, 32*1024)
	rd := newRecDevice(mustOpen(t, p, false))
	c := NewCache(rd, 1024, 1<<20)
	order := []int64{7, 3, 30, 1, 12, 0}
	for _, blk := range order {
		b := get(t, c, blk)
		binary.LittleEndian.PutUint64(b.Data(), uint64(blk)+1000)
		b.MarkDirty()
		if blk != 12 { // a pinned dirty buffer is written as well
			b.Release()
		}
	}
	get(t, c, 5).Release() // clean: not written
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, blk := range slices.Sorted(slices.Values(order)) {
		want = append(want, blk*1024)
	}
	if got := rd.written(); !slices.Equal(got, want) {
		t.Fatalf("Sync wrote offsets %v, want %v (ascending)", got, want)
	}
	if rd.syncs != 1 {
		t.Fatalf("device synced %d times", rd.syncs)
	}
	img, _ := os.ReadFile(p)
	for _, blk := range order {
		if v := binary.LittleEndian.Uint64(img[blk*1024:]); v != uint64(blk)+1000 {
			t.Fatalf("image block %d holds %d", blk, v)
		}
	}
	// Nothing dirty: a second Sync writes nothing.
	if err := c.Sync(); err != nil || len(rd.written()) != len(want) {
		t.Fatalf("second Sync: %v, %d writes", err, len(rd.written()))
	}
}

func TestCacheSyncStopsAtFailure(t *testing.T) {
	rd := newRecDevice(patterned(8, 512))
	rd.failWrite = 3 * 512
	c := NewCache(rd, 512, 1<<20)
	for _, blk := range []int64{5, 3, 1} {
		b := get(t, c, blk)
		b.MarkDirty()
		b.Release()
	}
	if err := c.Sync(); err != syscall.ENOSPC {
		t.Fatalf("Sync: %v", err)
	}
	if got := rd.written(); !slices.Equal(got, []int64{512, 3 * 512}) {
		t.Fatalf("writes %v: block 5 must wait for block 3", got)
	}
	if rd.syncs != 0 {
		t.Fatal("device synced after a failed write")
	}
	rd.mu.Lock()
	rd.failWrite = -1
	rd.mu.Unlock()
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := rd.written(); !slices.Equal(got[2:], []int64{3 * 512, 5 * 512}) {
		t.Fatalf("retry writes %v", got)
	}
}

func TestCacheFlush(t *testing.T) {
	rd := newRecDevice(patterned(8, 512))
	c := NewCache(rd, 512, 1<<20)
	a, b := get(t, c, 6), get(t, c, 2)
	a.MarkDirty()
	b.MarkDirty()
	if err := c.WriteBuf(a); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(2); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(7); err != nil { // not cached: nothing to do
		t.Fatal(err)
	}
	if got := rd.written(); !slices.Equal(got, []int64{6 * 512, 2 * 512}) {
		t.Fatalf("writes %v", got)
	}
	a.Release()
	b.Release()
	if err := c.Sync(); err != nil || len(rd.written()) != 2 {
		t.Fatalf("Sync rewrote clean buffers: %v %v", err, rd.written())
	}
}

func TestCacheGetNewAndInvalidate(t *testing.T) {
	rd := newRecDevice(patterned(8, 512))
	c := NewCache(rd, 512, 1<<20)
	b, err := c.GetNew(4)
	if err != nil {
		t.Fatal(err)
	}
	if rd.reads.Load() != 0 || !bytes.Equal(b.Data(), make([]byte, 512)) {
		t.Fatal("GetNew read the device or returned non-zero data")
	}
	b.Release()
	// A cached block is zeroed by GetNew.
	get(t, c, 5).Release()
	b, _ = c.GetNew(5)
	if b.Data()[0] != 0 {
		t.Fatal("GetNew of a cached block kept its data")
	}
	b.Release()
	// Invalidate discards an unpinned dirty buffer without writing it.
	c.Invalidate(5)
	if cached(c, 5) {
		t.Fatal("Invalidate kept block 5")
	}
	// A pinned buffer stays.
	p := get(t, c, 6)
	c.Invalidate(6)
	if !cached(c, 6) {
		t.Fatal("Invalidate dropped a pinned buffer")
	}
	p.Release()
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := rd.written(); !slices.Equal(got, []int64{4 * 512}) {
		t.Fatalf("writes %v: want only the GetNew block 4", got)
	}
	if _, err := c.GetNew(8); err != syscall.EIO {
		t.Fatalf("GetNew out of range: %v", err)
	}
}

func TestCacheReadOnly(t *testing.T) {
	rd := newRecDevice(NewMemDeviceFrom(make([]byte, 4096), true))
	c := NewCache(rd, 512, 1<<20)
	if _, err := c.GetNew(1); err != syscall.EROFS {
		t.Fatalf("GetNew on read-only: %v", err)
	}
	b := get(t, c, 1)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("MarkDirty on a read-only cache did not panic")
			}
		}()
		b.MarkDirty()
	}()
	b.Release()
	if err := c.Sync(); err != nil || rd.syncs != 0 || len(rd.written()) != 0 {
		t.Fatalf("Sync on read-only: %v, %d syncs", err, rd.syncs)
	}
}

func TestCacheReleaseTwicePanics(t *testing.T) {
	c := NewCache(patterned(2, 512), 512, 4096)
	b := get(t, c, 0)
	b.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("double Release did not panic")
		}
	}()
	b.Release()
}

// TestCacheSameBufferConcurrently starts many Gets of one block while its
// read is slow: all get the one buffer and the device is read once.
func TestCacheSameBufferConcurrently(t *testing.T) {
	rd := newRecDevice(patterned(4, 512))
	rd.readDelay = 20 * time.Millisecond
	c := NewCache(rd, 512, 1<<20)
	const n = 16
	bufs := make([]*Buf, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := c.Get(2)
			if err != nil {
				t.Error(err)
				return
			}
			bufs[i] = b
		})
	}
	wg.Wait()
	for _, b := range bufs {
		if b != bufs[0] || b.Data()[0] != 2 {
			t.Fatal("concurrent Gets returned different buffers or wrong data")
		}
		b.Release()
	}
	if r := rd.reads.Load(); r != 1 {
		t.Fatalf("device read %d times", r)
	}
}

// TestCacheConcurrent hammers a small cache from many goroutines. Each
// block has a content lock (as a driver would), a counter stored in every
// word of the block, and an expected value; writers increment it, readers
// check that every word agrees. Eviction write-back and reload happen all
// the time because the budget is far below the working set.
func TestCacheConcurrent(t *testing.T) {
	const (
		nblocks    = 64
		bs         = 256
		goroutines = 16
		ops        = 1500
	)
	p := tempImage(t, nblocks*bs)
	dev := mustOpen(t, p, false)
	// Start every block consistent: all words 0.
	if _, err := dev.WriteAt(make([]byte, nblocks*bs), 0); err != nil {
		t.Fatal(err)
	}
	c := NewCache(dev, bs, 8*bs)
	var locks [nblocks]sync.RWMutex
	var counts [nblocks]uint64 // under locks[i]

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range ops {
				blk := r.IntN(nblocks)
				switch op := r.IntN(10); {
				case op < 4: // write
					locks[blk].Lock()
					b, err := c.Get(int64(blk))
					if err != nil {
						locks[blk].Unlock()
						t.Error(err)
						return
					}
					counts[blk]++
					for w := 0; w < bs; w += 8 {
						binary.LittleEndian.PutUint64(b.Data()[w:], counts[blk])
					}
					b.MarkDirty()
					if op == 0 {
						if err := c.WriteBuf(b); err != nil {
							t.Error(err)
						}
					}
					b.Release()
					locks[blk].Unlock()
				default: // read
					locks[blk].RLock()
					b, err := c.Get(int64(blk))
					if err != nil {
						locks[blk].RUnlock()
						t.Error(err)
						return
					}
					want := counts[blk]
					for w := 0; w < bs; w += 8 {
						if v := binary.LittleEndian.Uint64(b.Data()[w:]); v != want {
							t.Errorf("block %d word %d = %d, want %d", blk, w/8, v, want)
							break
						}
					}
					b.Release()
					locks[blk].RUnlock()
				}
			}
		})
	}
	wg.Wait()
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for blk := range nblocks {
		for w := 0; w < bs; w += 8 {
			if v := binary.LittleEndian.Uint64(img[blk*bs+w:]); v != counts[blk] {
				t.Fatalf("image block %d word %d = %d, want %d", blk, w/8, v, counts[blk])
			}
		}
	}
	s := c.Stats()
	if s.Evictions == 0 || s.Hits == 0 || len(c.bufs) > 8 {
		t.Fatalf("stats %+v, %d cached: the test did not exercise eviction", s, len(c.bufs))
	}
	t.Logf("stats %+v", s)
}

func BenchmarkCacheGetHit(b *testing.B) {
	c := NewCache(patterned(64, 4096), 4096, 64*4096)
	for i := range int64(64) {
		buf, _ := c.Get(i)
		buf.Release()
	}
	for i := 0; b.Loop(); i++ {
		buf, err := c.Get(int64(i % 64))
		if err != nil {
			b.Fatal(err)
		}
		buf.Release()
	}
}

func BenchmarkCacheGetHitParallel(b *testing.B) {
	c := NewCache(patterned(64, 4096), 4096, 64*4096)
	var seed atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := seed.Add(7)
		for pb.Next() {
			buf, err := c.Get(i % 64)
			if err != nil {
				b.Error(err)
				return
			}
			buf.Release()
			i++
		}
	})
}
