package cd9660

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
)

// zisofs ("pz" in the RRIP ZF entry, from zisofs-tools and libisofs): the
// recorded file starts with a header
//
//	magic    8 bytes 37 E4 53 96 C9 DB D6 07
//	size     4 bytes little-endian, the uncompressed size
//	hdrsize  1 byte, header size / 4
//	log2bs   1 byte, log2 of the block size (15, 16 or 17)
//	reserved 2 bytes
//
// then, at hdrsize bytes, nblocks+1 little-endian 32-bit pointers (byte
// offsets in the recorded file) and the blocks: block i is the zlib
// stream between pointers i and i+1, or all zeros when they are equal.

var zisofsMagic = []byte{0x37, 0xE4, 0x53, 0x96, 0xC9, 0xDB, 0xD6, 0x07}

// readZ reads the decompressed file at off.
func (n *node) readZ(p []byte, off int64) (int, error) {
	size := int64(n.zf.realSize)
	if off >= size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), size-off)]
	bsz := int64(1) << n.zf.log2Block
	n.zmu.Lock()
	defer n.zmu.Unlock()
	done := 0
	for done < len(p) {
		at := off + int64(done)
		blk := at / bsz
		data, err := n.zBlock(blk, bsz, size)
		if err != nil {
			return done, err
		}
		done += copy(p[done:], data[at-blk*bsz:])
	}
	return done, nil
}

// zBlock returns decompressed block blk (the last one may be short),
// from the one-block cache or the image. n.zmu is held.
func (n *node) zBlock(blk, bsz, size int64) ([]byte, error) {
	if n.zblk == blk && n.zdata != nil {
		return n.zdata, nil
	}
	fs := n.fs
	want := min(bsz, size-blk*bsz)
	if blk == 0 || n.zdata == nil {
		hdr := make([]byte, 16)
		if m, err := n.readRaw(hdr, 0); err != nil || m != len(hdr) {
			return nil, fs.corrupt(n.ino, "zisofs header unreadable")
		}
		if !bytes.Equal(hdr[:8], zisofsMagic) || int64(binary.LittleEndian.Uint32(hdr[8:])) != size {
			return nil, fs.corrupt(n.ino, "zisofs header does not match the ZF entry")
		}
	}
	ptrs := make([]byte, 8)
	if m, err := n.readRaw(ptrs, int64(n.zf.hdrSize)+4*blk); err != nil || m != len(ptrs) {
		return nil, fs.corrupt(n.ino, "zisofs block pointer %d unreadable", blk)
	}
	start := int64(binary.LittleEndian.Uint32(ptrs))
	end := int64(binary.LittleEndian.Uint32(ptrs[4:]))
	out := make([]byte, want)
	switch {
	case end < start || end > n.rawSize || end-start > 2*bsz+1024:
		return nil, fs.corrupt(n.ino, "zisofs block %d pointers %d..%d out of range", blk, start, end)
	case end > start:
		comp := make([]byte, end-start)
		if m, err := n.readRaw(comp, start); err != nil || m != len(comp) {
			return nil, fs.corrupt(n.ino, "zisofs block %d unreadable", blk)
		}
		zr, err := zlib.NewReader(bytes.NewReader(comp))
		if err != nil {
			return nil, fs.corrupt(n.ino, "zisofs block %d: %v", blk, err)
		}
		if _, err := io.ReadFull(zr, out); err != nil {
			return nil, fs.corrupt(n.ino, "zisofs block %d: %v", blk, err)
		}
	}
	n.zblk, n.zdata = blk, out
	return out, nil
}
