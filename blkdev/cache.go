package blkdev

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
)

// Cache is a buffer cache of fixed-size blocks of a Device, in the manner
// of NetBSD's vfs_bio: Get returns a pinned buffer holding a block, dirty
// buffers are written back on Sync, on eviction or on request, and
// unpinned buffers are evicted least recently used first once the cache
// holds more than its budget.
//
// A Cache is safe for concurrent use. There is at most one Buf per block:
// concurrent Gets of a block return the same Buf and share its data. The
// cache does not lock buffer contents; the caller (a file system driver)
// serializes access to the data with its own locks, holding them while it
// modifies a buffer. The cache itself reads a buffer's data while writing
// it to the device: in Sync, Flush and WriteBuf for any dirty buffer, and
// in Get/GetNew for dirty unpinned buffers it evicts. So a caller must not
// modify a buffer's data concurrently with Sync, Flush or WriteBuf, and
// must only modify data while it holds a pin (the cache never writes back
// for eviction a buffer that is pinned, nor hands out a buffer while the
// cache is writing it back for eviction).
//
// Block n occupies bytes [n·blockSize, (n+1)·blockSize) of the device; a
// block that does not lie entirely inside the device is out of range.
type Cache struct {
	dev     Device
	bs      int
	maxBufs int
	nblocks int64
	ro      bool

	mu   sync.Mutex
	cond *sync.Cond // signalled when a buffer finishes loading or writing
	bufs map[int64]*Buf
	// lru links every buffer that is in bufs, valid, unpinned and not
	// being written; lru.next is the most recently released.
	lru      Buf
	inflight int   // writes in progress
	writeErr error // a failed eviction write-back, reported by Sync

	hits, misses, reads, writes, evictions atomic.Int64
}

// Buf is one cached block. Its data is valid while the caller holds a pin
// (from Get or GetNew until Release).
type Buf struct {
	c     *Cache
	blkno int64
	data  []byte

	// Guarded by c.mu.
	pins       int
	dirty      bool
	loading    bool // being read from the device
	writing    bool // being written to the device
	prev, next *Buf // in c.lru
}

// CacheStats counts cache events since NewCache.
type CacheStats struct {
	Hits      int64 // Get or GetNew found the block cached
	Misses    int64 // Get or GetNew had to allocate a buffer
	Reads     int64 // blocks read from the device
	Writes    int64 // blocks written to the device
	Evictions int64 // buffers dropped to stay within the budget
}

// NewCache returns a cache of blockSize-byte blocks of dev holding about
// budgetBytes of buffers (at least one). blockSize must be positive.
func NewCache(dev Device, blockSize int, budgetBytes int64) *Cache {
	if blockSize <= 0 {
		panic("blkdev: NewCache with non-positive block size")
	}
	max := budgetBytes / int64(blockSize)
	if max < 1 {
		max = 1
	}
	if max > 1<<30 {
		max = 1 << 30
	}
	c := &Cache{
		dev:     dev,
		bs:      blockSize,
		maxBufs: int(max),
		nblocks: dev.Size() / int64(blockSize),
		ro:      dev.ReadOnly(),
		bufs:    make(map[int64]*Buf),
	}
	c.cond = sync.NewCond(&c.mu)
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// Device returns the device under the cache.
func (c *Cache) Device() Device { return c.dev }

// BlockSize returns the cache's block size in bytes.
func (c *Cache) BlockSize() int { return c.bs }

// Stats returns the event counts so far.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Reads:     c.reads.Load(),
		Writes:    c.writes.Load(),
		Evictions: c.evictions.Load(),
	}
}

func (c *Cache) lruRemove(b *Buf) {
	if b.next != nil {
		b.prev.next, b.next.prev = b.next, b.prev
		b.prev, b.next = nil, nil
	}
}

// relink puts b on the LRU list as most recent if it is evictable.
func (c *Cache) relink(b *Buf) {
	if b.pins == 0 && !b.loading && !b.writing && b.next == nil && c.bufs[b.blkno] == b {
		b.next, b.prev = c.lru.next, &c.lru
		c.lru.next.prev = b
		c.lru.next = b
	}
}

// Get returns the pinned buffer of block blkno, reading it from the
// device on a miss. The caller must Release it. An out-of-range block or
// a failed or short read gives syscall.EIO (and no buffer). Get may
// write back dirty buffers to make room; such a write error is kept and
// returned by the next Sync.
func (c *Cache) Get(blkno int64) (*Buf, error) {
	if blkno < 0 || blkno >= c.nblocks {
		return nil, syscall.EIO
	}
	c.mu.Lock()
	for {
		b := c.bufs[blkno]
		if b == nil {
			break
		}
		if b.loading || b.writing {
			c.cond.Wait()
			continue // b may have been dropped meanwhile
		}
		b.pins++
		c.lruRemove(b)
		c.mu.Unlock()
		c.hits.Add(1)
		return b, nil
	}
	b := &Buf{c: c, blkno: blkno, data: make([]byte, c.bs), pins: 1, loading: true}
	c.bufs[blkno] = b
	c.misses.Add(1)
	c.evict()
	c.mu.Unlock()

	n, err := c.dev.ReadAt(b.data, blkno*int64(c.bs))
	c.reads.Add(1)
	c.mu.Lock()
	b.loading = false
	if err != nil || n != c.bs {
		// Drop the buffer so that waiters retry the read themselves.
		delete(c.bufs, blkno)
		b.pins--
		c.cond.Broadcast()
		c.mu.Unlock()
		return nil, syscall.EIO
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	return b, nil
}

// GetNew returns the pinned buffer of block blkno filled with zeros and
// marked dirty, without reading the device: for a block just allocated,
// whose old contents do not matter. A cached buffer of the block is
// reused (and zeroed). Out of range gives EIO; a read-only cache gives
// EROFS.
func (c *Cache) GetNew(blkno int64) (*Buf, error) {
	if c.ro {
		return nil, syscall.EROFS
	}
	if blkno < 0 || blkno >= c.nblocks {
		return nil, syscall.EIO
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		b := c.bufs[blkno]
		if b == nil {
			break
		}
		if b.loading || b.writing {
			c.cond.Wait()
			continue
		}
		b.pins++
		c.lruRemove(b)
		clear(b.data)
		b.dirty = true
		c.hits.Add(1)
		return b, nil
	}
	b := &Buf{c: c, blkno: blkno, data: make([]byte, c.bs), pins: 1, dirty: true}
	c.bufs[blkno] = b
	c.misses.Add(1)
	c.evict()
	return b, nil
}

// evict drops least recently used unpinned buffers until the cache is
// within its budget or none is left to drop, writing dirty ones back
// first. It is called with c.mu held and may release it during a write.
func (c *Cache) evict() {
	for len(c.bufs) > c.maxBufs {
		v := c.lru.prev
		if v == &c.lru {
			return // everything is pinned or busy: exceed the budget
		}
		c.lruRemove(v)
		if v.dirty {
			if err := c.write(v); err != nil {
				if c.writeErr == nil {
					c.writeErr = err
				}
				c.relink(v)
				return // keep the data; do not spin on a failing device
			}
			// The lock was dropped during the write: drop v only if it is
			// still ours to drop (write relinked it if it is evictable).
			if v.pins != 0 || c.bufs[v.blkno] != v || v.dirty {
				continue
			}
			c.lruRemove(v)
		}
		delete(c.bufs, v.blkno)
		c.evictions.Add(1)
	}
}

// write writes b to the device if it is dirty, with c.mu held on entry
// and exit but not during the I/O. While writing, b is marked busy so that
// Get and eviction leave it alone; on failure it stays dirty.
func (c *Cache) write(b *Buf) error {
	for b.writing || b.loading {
		c.cond.Wait()
	}
	if !b.dirty {
		return nil
	}
	if c.ro {
		return syscall.EROFS
	}
	b.dirty = false
	b.writing = true
	c.inflight++
	c.lruRemove(b)
	c.mu.Unlock()
	n, err := c.dev.WriteAt(b.data, b.blkno*int64(c.bs))
	c.writes.Add(1)
	c.mu.Lock()
	b.writing = false
	c.inflight--
	if err == nil && n != c.bs {
		err = syscall.EIO
	}
	if err != nil {
		b.dirty = true
		err = toErrno(err)
	}
	c.relink(b)
	c.cond.Broadcast()
	return err
}

// toErrno reduces a device error to the syscall.Errno under it, or EIO.
func toErrno(err error) error {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// Sync is WriteBack followed by a sync of the device: when it returns
// nil, every block dirtied before the call is durable.
func (c *Cache) Sync() error {
	if err := c.WriteBack(); err != nil {
		return err
	}
	return c.SyncDevice()
}

// SyncDevice syncs the device, making durable what has been written to
// it (not dirty buffers: see WriteBack). It reads no buffer, so it may run
// while the driver changes buffers. On a read-only cache it does nothing.
func (c *Cache) SyncDevice() error {
	if c.ro {
		return nil
	}
	if err := c.dev.Sync(); err != nil {
		return toErrno(err)
	}
	return nil
}

// WriteBack writes every dirty buffer to the device in ascending block
// order and waits for writes already in progress, without syncing the
// device. It stops at the first failed write (leaving that buffer and the
// later ones dirty) so that a later block never reaches the device ahead
// of an earlier one that failed. An eviction write-back error kept since
// the last WriteBack is returned (once). On a read-only cache it does
// nothing.
//
// WriteBack reads the data of pinned dirty buffers too: callers must not
// modify buffers while it runs (see Cache). Once it returns they may, and
// a driver can then sync the device (Device().Sync(), the slow part of an
// fsync) without holding its own locks: the data is already with the
// device.
func (c *Cache) WriteBack() error {
	if c.ro {
		return nil
	}
	c.mu.Lock()
	var dirty []*Buf
	for _, b := range c.bufs {
		if b.dirty {
			dirty = append(dirty, b)
		}
	}
	slices.SortFunc(dirty, func(a, b *Buf) int {
		switch {
		case a.blkno < b.blkno:
			return -1
		case a.blkno > b.blkno:
			return 1
		}
		return 0
	})
	for _, b := range dirty {
		if err := c.write(b); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	for c.inflight > 0 {
		c.cond.Wait()
	}
	err := c.writeErr
	c.writeErr = nil
	c.mu.Unlock()
	return err
}

// Flush writes block blkno now if it is cached and dirty (without syncing
// the device), for metadata that must reach the image before what refers
// to it. Writes reach the image in the order of Flush/WriteBuf calls;
// call Device().Sync() for durability against a host crash.
func (c *Cache) Flush(blkno int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bufs[blkno]
	if b == nil {
		return nil
	}
	return c.write(b)
}

// WriteBuf writes b now if it is dirty; see Flush. The caller normally
// holds a pin on b and keeps it.
func (c *Cache) WriteBuf(b *Buf) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.write(b)
}

// Invalidate drops block blkno from the cache, discarding its contents
// even if dirty: for a block just freed, whose data must never be written
// again. A pinned buffer is left alone (its holder still uses it).
func (c *Cache) Invalidate(blkno int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		b := c.bufs[blkno]
		if b == nil || b.pins > 0 {
			return
		}
		if b.loading || b.writing {
			c.cond.Wait()
			continue
		}
		c.lruRemove(b)
		b.dirty = false
		delete(c.bufs, blkno)
		return
	}
}

// Blkno returns the buffer's block number.
func (b *Buf) Blkno() int64 { return b.blkno }

// Data returns the block's bytes (BlockSize long), shared by every holder
// of the buffer. It is valid until the caller's Release.
func (b *Buf) Data() []byte { return b.data }

// MarkDirty records that the caller changed Data, so the block is written
// back before its buffer is dropped and on Sync. The caller must hold a
// pin. Marking a buffer of a read-only cache dirty is a programming error
// and panics (read-only drivers return EROFS before modifying anything).
func (b *Buf) MarkDirty() {
	c := b.c
	if c.ro {
		panic("blkdev: MarkDirty on a read-only cache of " + c.dev.Name())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.pins <= 0 {
		panic("blkdev: MarkDirty on an unpinned buffer")
	}
	b.dirty = true
}

// Release drops the caller's pin; the caller must not use the buffer
// afterwards. A dirty buffer stays cached until written back. Releasing
// more often than pinned panics.
func (b *Buf) Release() {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.pins <= 0 {
		panic("blkdev: Release of an unpinned buffer")
	}
	b.pins--
	c.relink(b)
}
