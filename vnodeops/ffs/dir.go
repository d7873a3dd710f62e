package ffs

import (
	"syscall"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// dirBlock pins the block holding directory bytes from lbn·bsize and
// returns its data, cut to the directory's size. A hole in a directory is
// corruption.
func (v *vnode) dirBlock(lbn int64) (*blkdev.Buf, []byte, error) {
	fs := v.fs
	sb := fs.sb
	size := v.di.size()
	bsz := sb.blkSize(size, lbn)
	a, err := v.bmap(lbn)
	if err != nil {
		return nil, nil, err
	}
	if a == 0 {
		return nil, nil, fs.corrupt(v.ino, "hole at block %d of a directory", lbn)
	}
	b, data, err := fs.fragBuf(v.ino, a, bsz)
	if err != nil {
		return nil, nil, err
	}
	return b, data[:min(bsz, int64(size)-lbn<<sb.bshift)], nil
}

// entryRef locates an entry for a caller that changes it: the pinned
// buffer, the DIRBLKSIZ chunk, the entry's offset in the chunk and the
// offset of the entry before it in the chunk (-1: it is the first).
type entryRef struct {
	buf   *blkdev.Buf
	chunk []byte
	off   int
	prev  int
}

// walk is what a forEachEntry callback asks for next.
type walk int

const (
	walkNext walk = iota // go on
	walkStop             // stop
	walkKeep             // stop, leaving the entry's buffer pinned for the caller
)

// forEachEntry calls fn for every entry, free or not, at or after
// directory offset from, in order, until fn stops. The entry's name
// aliases the buffer: fn copies what it keeps. Caller holds fs.mu.
func (v *vnode) forEachEntry(from int64, fn func(pos int64, e dirent, r entryRef) walk) error {
	fs := v.fs
	sb := fs.sb
	size := int64(v.di.size())
	for lbn := from >> sb.bshift; lbn<<sb.bshift < size; lbn++ {
		b, data, err := v.dirBlock(lbn)
		if err != nil {
			return err
		}
		for c := 0; c+dirBlkSize <= len(data); c += dirBlkSize {
			chunkPos := lbn<<sb.bshift + int64(c)
			if chunkPos+dirBlkSize <= from {
				continue
			}
			chunk := data[c : c+dirBlkSize]
			prev := -1
			for o := 0; o < dirBlkSize; {
				e, err := decodeDirent(sb.bo, sb.oldDirFormat, chunk, o)
				if err == nil && uint64(e.ino) >= sb.numInodes() {
					err = errInoRange
				}
				if err != nil {
					b.Release()
					return fs.corrupt(v.ino, "directory chunk at %d: %v", chunkPos, err)
				}
				if pos := chunkPos + int64(o); pos >= from {
					switch fn(pos, e, entryRef{buf: b, chunk: chunk, off: o, prev: prev}) {
					case walkStop:
						b.Release()
						return nil
					case walkKeep:
						return nil
					}
				}
				prev = o
				o += e.reclen
			}
		}
		b.Release()
	}
	return nil
}

type dirError string

func (e dirError) Error() string { return string(e) }

const errInoRange = dirError("inode number out of range")

// lookupLocked finds name; ok false when absent. Caller holds fs.mu.
func (v *vnode) lookupLocked(name string) (ino uint64, ref entryRef, ok bool, err error) {
	err = v.forEachEntry(0, func(_ int64, e dirent, r entryRef) walk {
		if e.ino != 0 && string(e.name) == name {
			ino, ref, ok = uint64(e.ino), r, true
			return walkKeep
		}
		return walkNext
	})
	return ino, ref, ok, err
}

// Lookup implements vnodeops.Vnode.
func (v *vnode) Lookup(name string) (uint64, error) {
	v.fs.mu.RLock()
	defer v.fs.mu.RUnlock()
	if !v.isDir() {
		return 0, syscall.ENOTDIR
	}
	if name == ".." && v.ino == rootIno {
		return rootIno, nil
	}
	ino, ok, err := v.fs.indexLookup(v, name)
	if err != nil {
		return 0, err
	}
	if !ok {
		var ref entryRef
		ino, ref, ok, err = v.lookupLocked(name)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, syscall.ENOENT
		}
		ref.buf.Release()
	}
	if ino == whiteoutIno {
		return 0, syscall.ENOENT
	}
	if ino < rootIno {
		return 0, v.fs.corrupt(v.ino, "entry %q names reserved inode %d", name, ino)
	}
	return ino, nil
}

// indexMin is the size from which a directory gets a name index on its
// first Lookup, so that looking up every entry of a big directory does
// not read it once per name.
const indexMin = 16 << 10

// indexLookup answers a lookup from the directory's name index, building
// it when the directory is big. ok false: the index has no answer (not
// built, or the name is absent from a small directory). Caller holds
// fs.mu shared; changes to the directory drop the index (dropIndex) with
// fs.mu held exclusively.
func (fs *fsys) indexLookup(v *vnode, name string) (uint64, bool, error) {
	if v.di.size() < indexMin {
		return 0, false, nil
	}
	fs.idxMu.Lock()
	defer fs.idxMu.Unlock()
	idx, built := fs.idx[v.ino]
	if !built {
		idx = map[string]uint32{}
		err := v.forEachEntry(0, func(_ int64, e dirent, _ entryRef) walk {
			if e.ino != 0 {
				idx[string(e.name)] = e.ino
			}
			return walkNext
		})
		if err != nil {
			return 0, false, err
		}
		if fs.idx == nil {
			fs.idx = map[uint64]map[string]uint32{}
		}
		fs.idx[v.ino] = idx
	}
	ino, found := idx[name]
	if !found {
		return 0, false, syscall.ENOENT
	}
	return uint64(ino), true, nil
}

// dropIndex forgets the name index of directory ino.
func (fs *fsys) dropIndex(ino uint64) {
	fs.idxMu.Lock()
	delete(fs.idx, ino)
	fs.idxMu.Unlock()
}

// readdirBatch bounds the entries gathered under the lock per round.
const readdirBatch = 256

// Readdir implements vnodeops.Vnode. A cookie is the byte offset of the
// entry to resume at; entries never move (see the package comment), so
// cookies stay valid across changes.
func (v *vnode) Readdir(cookie uint64, fn func(vnodeops.Dirent) bool) error {
	for {
		var batch []vnodeops.Dirent
		v.fs.mu.RLock()
		if !v.isDir() {
			v.fs.mu.RUnlock()
			return syscall.ENOTDIR
		}
		if cookie >= v.di.size() {
			v.fs.mu.RUnlock()
			return nil // past the end: nothing more
		}
		err := v.forEachEntry(int64(cookie), func(pos int64, e dirent, _ entryRef) walk {
			if e.ino == 0 || e.typ == vnodeops.DT_WHT {
				return walkNext
			}
			batch = append(batch, vnodeops.Dirent{Name: string(e.name), Ino: uint64(e.ino), Type: e.typ, Next: uint64(pos) + uint64(e.reclen)})
			if len(batch) == readdirBatch {
				return walkStop
			}
			return walkNext
		})
		if err == nil && v.fs.sb.oldDirFormat {
			for i := range batch {
				batch[i].Type = v.fs.typeOf(batch[i].Ino)
			}
		}
		v.fs.mu.RUnlock()
		if err != nil {
			return err
		}
		for _, d := range batch {
			if !fn(d) {
				return nil
			}
			cookie = d.Next
		}
		if len(batch) < readdirBatch {
			return nil
		}
	}
}

// typeOf returns the DT_* type of inode ino from its mode, for old
// directories that keep none; DT_UNKNOWN when it cannot be read.
func (fs *fsys) typeOf(ino uint64) uint8 {
	raw, err := fs.readInode(ino)
	if err != nil {
		return vnodeops.DT_UNKNOWN
	}
	return vnodeops.DTFromMode(uint32(dinode{b: raw, bo: fs.sb.bo, ufs2: fs.sb.ufs2}.mode()))
}

// ---- Changing directories (caller holds fs.mu exclusively) ----

// addEntry enters name → ino into the directory: into the slack of an
// existing entry or a free chunk when one has room, else into a new
// chunk at the end. No entry moves.
func (v *vnode) addEntry(name string, ino uint64, typ uint8) error {
	fs := v.fs
	fs.dropIndex(v.ino)
	sb := fs.sb
	need := direntSize(len(name))
	done := false
	err := v.forEachEntry(0, func(_ int64, e dirent, r entryRef) walk {
		used := 0
		if e.ino != 0 {
			used = direntSize(len(e.name))
		}
		if e.reclen-used < need {
			return walkNext
		}
		if used > 0 {
			sb.bo.PutUint16(r.chunk[r.off+4:], uint16(used))
		}
		encodeDirent(sb.bo, sb.oldDirFormat, r.chunk, r.off+used, uint32(ino), e.reclen-used, typ, name)
		r.buf.MarkDirty()
		done = true
		return walkStop
	})
	if err != nil || done {
		return err
	}
	// A new chunk at the end.
	size := v.di.size()
	newSize := size + dirBlkSize
	lbn := int64(size) >> sb.bshift
	if err := v.growTail(newSize); err != nil {
		return err
	}
	a, err := v.allocBlock(lbn, newSize)
	if err != nil {
		return err
	}
	b, err := fs.cache.Get(a >> sb.fragshift)
	if err != nil {
		return fs.corrupt(v.ino, "reading directory block %d: %v", a, err)
	}
	off := (a&(sb.frag-1))<<sb.fshift + int64(size)&(sb.bsize-1)
	chunk := b.Data()[off : off+dirBlkSize]
	clear(chunk)
	encodeDirent(sb.bo, sb.oldDirFormat, chunk, 0, uint32(ino), dirBlkSize, typ, name)
	b.MarkDirty()
	b.Release()
	v.di.setSize(newSize)
	v.di.setBlksize(uint32(sb.blkSize(newSize, lbn)))
	return nil
}

// removeEntry deletes name from the directory, merging its record into
// the previous entry of its chunk (or freeing the chunk's first entry).
// It returns the inode the entry named.
func (v *vnode) removeEntry(name string) (uint64, error) {
	v.fs.dropIndex(v.ino)
	ino, r, ok, err := v.lookupLocked(name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, syscall.ENOENT
	}
	defer r.buf.Release()
	bo := v.fs.sb.bo
	reclen := bo.Uint16(r.chunk[r.off+4:])
	if r.prev < 0 {
		bo.PutUint32(r.chunk[r.off:], 0)
	} else {
		bo.PutUint16(r.chunk[r.prev+4:], bo.Uint16(r.chunk[r.prev+4:])+reclen)
	}
	r.buf.MarkDirty()
	// The entry is gone from the image before the caller lowers the
	// link count it held.
	if err := v.fs.cache.WriteBuf(r.buf); err != nil {
		return 0, errno(err)
	}
	return ino, nil
}

// setEntry points the existing entry name at ino.
func (v *vnode) setEntry(name string, ino uint64, typ uint8) error {
	v.fs.dropIndex(v.ino)
	_, r, ok, err := v.lookupLocked(name)
	if err != nil {
		return err
	}
	if !ok {
		return syscall.ENOENT
	}
	defer r.buf.Release()
	v.fs.sb.bo.PutUint32(r.chunk[r.off:], uint32(ino))
	if !v.fs.sb.oldDirFormat {
		r.chunk[r.off+6] = typ
	}
	r.buf.MarkDirty()
	return nil
}

// isEmpty reports whether the directory holds nothing but "." and "..".
func (v *vnode) isEmpty() (bool, error) {
	empty := true
	err := v.forEachEntry(0, func(_ int64, e dirent, _ entryRef) walk {
		if e.ino != 0 && string(e.name) != "." && string(e.name) != ".." {
			empty = false
			return walkStop
		}
		return walkNext
	})
	return empty, err
}
