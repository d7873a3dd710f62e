package p9srv

import (
	"encoding/binary"
	"sync"
)

// Flow control. The library starts a goroutine for every request it
// reads and holds its buffers until the reply is written, so a client
// that sends requests and never reads the replies would make the server
// hold memory without bound. The frame reader therefore admits a request
// only while the connection has fewer than Options.MaxInflight requests
// in flight and their cost stays within Options.MaxConnMemory, and the
// server's within Options.MaxMemory; otherwise it stops reading that
// connection (the client's requests wait in the socket) until replies are
// written. A connection with nothing in flight is always admitted one
// request, so that no connection waits for good; the server-wide budget
// may thus be passed by one request per connection.

// Cost estimates, in bytes (see requestCost).
const (
	// requestBase is what every request in flight holds besides its
	// message and reply: the handler goroutine's stack and the decoded
	// message.
	requestBase = 8 << 10
	// xattrReplyMax is the largest Rxattrwalk value the library buffers.
	xattrReplyMax = xattrSizeMax
	// readlinkReplyMax bounds an Rreadlink (PATH_MAX).
	readlinkReplyMax = 4 << 10
	msgTxattrwalk    = 30
	msgTreadlink     = 22
)

// requestCost is the memory a request of type typ and size bytes may hold
// until its reply is written: the message, the largest reply it can get
// and requestBase. A Tread counts a whole msize buffer (the library takes
// one from its pool whatever the count); a Treaddir its count.
func requestCost(typ byte, size uint32, frame []byte, msize uint32) int64 {
	cost := int64(size) + requestBase
	switch typ {
	case msgTread:
		cost += int64(msize)
	case msgTreaddir:
		if len(frame) >= headerLen+16 {
			cost += int64(binary.LittleEndian.Uint32(frame[headerLen+12:]))
		} else {
			cost += int64(msize)
		}
	case msgTxattrwalk:
		cost += xattrReplyMax
	case msgTreadlink:
		cost += readlinkReplyMax
	}
	return cost
}

// budget is a server-wide byte budget shared by connections.
type budget struct {
	mu    sync.Mutex
	limit int64 // 0: none
	used  int64
	// freed is closed (and replaced) whenever bytes are given back, to
	// wake the connections waiting for them.
	freed chan struct{}
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, freed: make(chan struct{})}
}

// take reserves n bytes if they fit, or if force is set; otherwise it
// returns a channel that is closed when bytes are next given back.
func (b *budget) take(n int64, force bool) (ok bool, wait <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limit > 0 && b.used+n > b.limit && !force {
		return false, b.freed
	}
	b.used += n
	return true, nil
}

// give returns n bytes taken before.
func (b *budget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
}

// inUse returns the bytes taken and not given back.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// admit waits until the request with tag and cost may be passed to the
// library, and records it as in flight. It returns false if the
// connection is stopping meanwhile.
func (fr *frameReader) admit(tag uint16, cost int64) bool {
	opts := &fr.c.srv.opts
	for {
		fr.vmu.Lock()
		n, held := len(fr.cost), fr.held
		idle := n == 0
		fits := idle || (opts.MaxInflight <= 0 || n < opts.MaxInflight) &&
			(opts.MaxConnMemory <= 0 || held+cost <= opts.MaxConnMemory)
		var wait <-chan struct{}
		if fits {
			var ok bool
			if ok, wait = fr.c.srv.mem.take(cost, idle); ok {
				fr.cost[tag] += cost
				fr.held += cost
				fr.vmu.Unlock()
				return true
			}
		}
		fr.vmu.Unlock()
		select {
		case <-fr.drained:
		case <-wait: // nil unless the server's budget is short
		case <-fr.c.done:
			return false
		}
	}
}

// settle gives back the cost of the request with tag, once answered.
// The caller holds fr.vmu.
func (fr *frameReader) settle(tag uint16) {
	cost, ok := fr.cost[tag]
	if !ok {
		return
	}
	delete(fr.cost, tag)
	fr.held -= cost
	fr.c.srv.mem.give(cost)
	select {
	case fr.drained <- struct{}{}:
	default:
	}
}

// settleAll gives back the cost of every request still recorded: at the
// end of a session or of the connection, for tags the library never
// answered (a tag the client reused while in flight).
func (fr *frameReader) settleAll() {
	fr.vmu.Lock()
	defer fr.vmu.Unlock()
	for tag := range fr.cost {
		fr.settle(tag)
	}
}
