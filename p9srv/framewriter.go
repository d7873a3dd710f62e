package p9srv

import (
	"encoding/binary"
	"io"
	"net"
)

// frameWriter is the write side of a connection as the library sees it.
// The library sends a reply as one net.Buffers.WriteTo call (header, then
// fixed part, then payload, each a Write here); frameWriter keeps the
// pieces (without copying: the library keeps them alive until WriteTo
// returns) until the frame is whole and writes it with one
// net.Buffers.WriteTo on the connection, which is a single writev on a
// socket. It shows every reply to the frame reader, which waits for the
// answer to a Tversion. Writes are serialised by the library.
type frameWriter struct {
	fr *frameReader
	w  io.Writer
	cl io.Closer // may be nil

	hdr  [headerLen]byte
	nhdr int
	need int // frame size from the header
	have int
	arr  [4][]byte
	bufs net.Buffers
}

func newFrameWriter(fr *frameReader, w io.Writer) *frameWriter {
	fw := &frameWriter{fr: fr, w: w}
	if cl, ok := w.(io.Closer); ok {
		fw.cl = cl
	}
	fw.bufs = fw.arr[:0]
	return fw
}

// Write implements io.Writer for the library's send; see frameWriter.
func (fw *frameWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if fw.nhdr < headerLen {
			k := copy(fw.hdr[fw.nhdr:], p)
			fw.nhdr += k
			p = p[k:]
			if fw.nhdr < headerLen {
				break
			}
			fw.need = int(binary.LittleEndian.Uint32(fw.hdr[:]))
			fw.have = headerLen
			fw.bufs = append(fw.arr[:0], fw.hdr[:])
		} else {
			k := min(len(p), fw.need-fw.have)
			fw.bufs = append(fw.bufs, p[:k])
			fw.have += k
			p = p[k:]
		}
		if fw.have >= fw.need {
			if err := fw.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (fw *frameWriter) flush() error {
	typ, tag := fw.hdr[4], binary.LittleEndian.Uint16(fw.hdr[5:])
	var body []byte
	if typ == msgTversion+1 && len(fw.bufs) > 1 {
		body = fw.bufs[1]
	}
	bufs := fw.bufs
	fw.bufs = fw.arr[:0]
	fw.nhdr, fw.need, fw.have = 0, 0, 0
	getlock := typ == msgRlock && fw.fr.isGetlock(tag)
	// Account for the reply before writing it: once written, the client
	// may reuse its tag at once.
	fw.fr.replied(typ, tag, body)
	var err error
	switch {
	case fw.fr.ending.Load():
		// The client has started a new session: answers to the old
		// one's requests would reach it under tags it never sent.
	case getlock:
		_, err = fw.w.Write(fw.fr.c.getlockReply(tag))
	default:
		_, err = bufs.WriteTo(fw.w)
	}
	clear(fw.arr[:])
	if err != nil {
		fw.fr.versionReply(false, 0)
	}
	return err
}

// Close is called by the library at the end of each session: it lets a
// reader waiting for an Rversion go on. The stream outlives a session;
// conn.serve closes it (closeStream) when the connection ends.
func (fw *frameWriter) Close() error {
	fw.fr.versionReply(false, 0)
	return nil
}

// closeStream closes the underlying writer.
func (fw *frameWriter) closeStream() error {
	if fw.cl != nil {
		return fw.cl.Close()
	}
	return nil
}
