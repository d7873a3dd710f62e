package p9srv

import (
	"encoding/binary"
	"fmt"
)

// redirectFlush rewrites a Tflush (oldtag[2]) whose old tag is its own
// tag or that of another Tflush in flight to a tag that is free: the
// library's Tflush waits for its old tag to be answered, so a flush of a
// flush (or of itself) could wait forever and hold the connection open.
// A flush of a free tag is answered at once, which is what the client
// asked for: nothing is left to flush. It fails only when every tag is in
// use.
func (fr *frameReader) redirectFlush(frame []byte) error {
	body := frame[headerLen:]
	if len(body) < 2 {
		return nil // the library answers a short message with an error
	}
	tag := binary.LittleEndian.Uint16(frame[5:])
	old := binary.LittleEndian.Uint16(body)
	fr.vmu.Lock()
	defer fr.vmu.Unlock()
	if isFlush, busy := fr.inflight[old]; old != tag && !(busy && isFlush) {
		return nil
	}
	for range 1 << 16 {
		old++
		if _, busy := fr.inflight[old]; !busy && old != tag {
			binary.LittleEndian.PutUint16(body, old)
			return nil
		}
	}
	return fmt.Errorf("%w: no free tag", errProtocol)
}
