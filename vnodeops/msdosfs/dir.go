package msdosfs

import (
	"encoding/binary"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Directory entries [fatgen103 §6 "FAT Directory Structure"]: 32 bytes,
//
//	0  DIR_Name[11]   8.3 name, space padded; Name[0] 0xE5 = free,
//	                  0x00 = free and no entry follows, 0x05 = 0xE5
//	11 DIR_Attr
//	12 DIR_NTRes      Windows NT lowercase flags (0x08 base, 0x10 ext)
//	13 DIR_CrtTimeTenth  0-199, 10 ms units of the creation time
//	14 DIR_CrtTime, 16 DIR_CrtDate, 18 DIR_LstAccDate
//	20 DIR_FstClusHI, 22 DIR_WrtTime, 24 DIR_WrtDate, 26 DIR_FstClusLO
//	28 DIR_FileSize
//
// Long-name entries [fatgen103 §7]: LDIR_Ord at 0 (0x40 marks the last,
// that is first stored, entry), 13 UTF-16 units at 1 (5), 14 (6) and 28
// (2), LDIR_Attr 0x0F at 11, LDIR_Type 0 at 12, LDIR_Chksum at 13,
// LDIR_FstClusLO 0 at 26. They precede their short entry in reverse order.
const (
	direntSize = 32

	attrReadOnly  = 0x01
	attrHidden    = 0x02
	attrSystem    = 0x04
	attrVolumeID  = 0x08
	attrDirectory = 0x10
	attrArchive   = 0x20
	attrLongName  = 0x0F // RO|HIDDEN|SYSTEM|VOLUME_ID
	attrLongMask  = 0x3F

	slotFree = 0xE5
	slotEnd  = 0x00
	lfnLast  = 0x40
	lfnChars = 13
)

type rawEntry [direntSize]byte

func (e *rawEntry) attr() byte  { return e[11] }
func (e *rawEntry) isDir() bool { return e[11]&attrDirectory != 0 }
func (e *rawEntry) firstCluster(fat32 bool) uint32 {
	c := uint32(binary.LittleEndian.Uint16(e[26:]))
	if fat32 {
		c |= uint32(binary.LittleEndian.Uint16(e[20:])) << 16
	}
	return c
}
func (e *rawEntry) setFirstCluster(c uint32) {
	binary.LittleEndian.PutUint16(e[26:], uint16(c))
	binary.LittleEndian.PutUint16(e[20:], uint16(c>>16))
}
func (e *rawEntry) size() uint32     { return binary.LittleEndian.Uint32(e[28:]) }
func (e *rawEntry) setSize(s uint32) { binary.LittleEndian.PutUint32(e[28:], s) }

// FAT dates and times [fatgen103 §6.2 "Date and Time Formats"]: date bits
// 0-4 day, 5-8 month, 9-15 years since 1980; time bits 0-4 seconds/2,
// 5-10 minutes, 11-15 hours. They are local time (the mount's tz).

func (fs *fsys) decodeTime(date, tim uint16, tenth byte) int64 {
	if date == 0 {
		return 0
	}
	day := int(date & 0x1F)
	mon := int(date>>5) & 0xF
	yr := int(date>>9) + 1980
	if day == 0 {
		day = 1
	}
	if mon == 0 || mon > 12 {
		mon = 1
	}
	sec := int(tim&0x1F) * 2
	min := int(tim>>5) & 0x3F
	hr := int(tim >> 11)
	ns := 0
	if tenth < 200 {
		sec += int(tenth) / 100
		ns = int(tenth%100) * 10 * int(time.Millisecond)
	}
	return time.Date(yr, time.Month(mon), day, hr, min, sec, ns, fs.opt.tz).UnixNano()
}

// encodeTime converts nanoseconds since the epoch into a FAT date, time and
// 10 ms count, clamped to the FAT range 1980-2107.
func (fs *fsys) encodeTime(ns int64) (date, tim uint16, tenth byte) {
	t := time.Unix(0, ns).In(fs.opt.tz)
	if t.Year() < 1980 {
		return 0x21, 0, 0 // 1980-01-01 00:00:00
	}
	if t.Year() > 2107 {
		return 127<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tim = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	tenth = byte((t.Second()%2)*100 + t.Nanosecond()/int(10*time.Millisecond))
	return
}

func (e *rawEntry) setMtime(fs *fsys, ns int64) {
	d, t, _ := fs.encodeTime(ns)
	binary.LittleEndian.PutUint16(e[22:], t)
	binary.LittleEndian.PutUint16(e[24:], d)
}

func (e *rawEntry) setAtime(fs *fsys, ns int64) {
	d, _, _ := fs.encodeTime(ns)
	binary.LittleEndian.PutUint16(e[18:], d)
}

func (e *rawEntry) setBtime(fs *fsys, ns int64) {
	d, t, tenth := fs.encodeTime(ns)
	e[13] = tenth
	binary.LittleEndian.PutUint16(e[14:], t)
	binary.LittleEndian.PutUint16(e[16:], d)
}

func (e *rawEntry) mtime(fs *fsys) int64 {
	return fs.decodeTime(binary.LittleEndian.Uint16(e[24:]), binary.LittleEndian.Uint16(e[22:]), 0)
}
func (e *rawEntry) atime(fs *fsys) int64 {
	return fs.decodeTime(binary.LittleEndian.Uint16(e[18:]), 0, 0)
}
func (e *rawEntry) btime(fs *fsys) int64 {
	return fs.decodeTime(binary.LittleEndian.Uint16(e[16:]), binary.LittleEndian.Uint16(e[14:]), e[13])
}

// dirChain returns the cluster chain of the directory with key dir (its
// first cluster; 0 is the root). The fixed root of FAT12/16 has none (nil).
func (fs *fsys) dirChain(dir uint32) ([]uint32, error) {
	if ch, ok := fs.dirChains[dir]; ok {
		return ch, nil
	}
	first := dir
	if dir == 0 {
		if fs.g.fatType != fat32 {
			return nil, nil
		}
		first = fs.g.rootClus
	}
	ch, err := fs.chain(first, "directory")
	if err != nil {
		return nil, err
	}
	if uint64(len(ch))*uint64(fs.g.clusterSize)/direntSize > maxDirSlots {
		ch = ch[:maxDirSlots*direntSize/fs.g.clusterSize]
	}
	fs.dirChains[dir] = ch
	return ch, nil
}

// dirSlots is the number of 32-byte slots of directory dir.
func (fs *fsys) dirSlots(dir uint32) (uint32, error) {
	if dir == 0 && fs.g.fatType != fat32 {
		return fs.g.rootEntCnt, nil
	}
	ch, err := fs.dirChain(dir)
	if err != nil {
		return 0, err
	}
	return uint32(len(ch)) * (fs.g.clusterSize / direntSize), nil
}

// slotOffset is the device offset of slot of directory dir. ENOENT past
// the directory's end.
func (fs *fsys) slotOffset(dir, slot uint32) (int64, error) {
	if dir == 0 && fs.g.fatType != fat32 {
		if slot >= fs.g.rootEntCnt {
			return 0, syscall.ENOENT
		}
		return fs.g.rootOffset() + int64(slot)*direntSize, nil
	}
	ch, err := fs.dirChain(dir)
	if err != nil {
		return 0, err
	}
	per := fs.g.clusterSize / direntSize
	ci := slot / per
	if ci >= uint32(len(ch)) {
		return 0, syscall.ENOENT
	}
	return fs.g.clusterOffset(ch[ci]) + int64(slot%per)*direntSize, nil
}

func (fs *fsys) readSlot(dir, slot uint32) (rawEntry, error) {
	var e rawEntry
	off, err := fs.slotOffset(dir, slot)
	if err != nil {
		return e, err
	}
	err = fs.readAt(e[:], off)
	return e, err
}

func (fs *fsys) writeSlot(dir, slot uint32, e *rawEntry) error {
	off, err := fs.slotOffset(dir, slot)
	if err != nil {
		return err
	}
	return fs.writeAt(e[:], off)
}

// dentry is one file found in a directory. Names are decoded lazily.
type dentry struct {
	slot  uint32 // of the short entry
	first uint32 // of the first long-name entry; slot if none
	raw   rawEntry
	units []uint16 // the long name's UTF-16 units, nil if none

	long, short  string
	decodedLong  bool
	decodedShort bool
}

// longName is the long name, "" if there is none or it cannot be used.
func (d *dentry) longName() string {
	if !d.decodedLong {
		d.decodedLong = true
		if d.units != nil {
			if name, ok := decodeLong(d.units); ok {
				d.long = name
			}
		}
	}
	return d.long
}

func (d *dentry) shortName() string {
	if !d.decodedShort {
		d.decodedShort = true
		d.short = shortDisplay(d.raw[:11], d.raw[12])
	}
	return d.short
}

// name is what readdir shows: the long name if valid, else the short one.
func (d *dentry) name() string {
	if l := d.longName(); l != "" {
		return l
	}
	return d.shortName()
}

// matches compares name, of nu UTF-16 units, case-insensitively with the
// long and the short name. Simple case folding maps a character to one of
// the same UTF-16 length, so names of other lengths are not decoded.
func (d *dentry) matches(name string, nu int) bool {
	if len(d.units) == nu && strings.EqualFold(d.longName(), name) {
		return true
	}
	// A short name is at most 8+1+3 characters; decoded from the code
	// page, a character may take more than one byte of UTF-8.
	return utf8.RuneCountInString(name) <= 12 && strings.EqualFold(d.shortName(), name)
}

// utf16Len is the number of UTF-16 units of s.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

// isDotEntry reports whether a short name is "." or "..".
func isDotEntry(sn []byte) bool {
	return string(sn) == ".          " || string(sn) == "..         "
}

// scan calls fn for every file of directory dir whose short entry is at
// slot from or later, in slot order, until fn returns false. It skips
// free slots, the volume label, "." and ".."; it joins long-name entries
// to their short entry when their ordinals run down to 1 without a gap
// and their checksums match the short name, and drops them otherwise
// [fatgen103 §7: orphaned long entries are ignored]. It stops at the end
// marker [fatgen103 §6.1: DIR_Name[0] == 0x00].
func (fs *fsys) scan(dir, from uint32, fn func(d *dentry) bool) error {
	n, err := fs.dirSlots(dir)
	if err != nil {
		return err
	}
	// A long name starts at most 20 slots before its short entry.
	start := uint32(0)
	if from > 21 {
		start = from - 21
	}
	var (
		units   []uint16 // long name being gathered, in order
		want    int      // next ordinal expected; 0: none in progress
		chk     byte
		lfStart uint32
	)
	buf := make([]byte, fs.g.clusterSize)
	if dir == 0 && fs.g.fatType != fat32 {
		buf = make([]byte, fs.g.bps)
	}
	per := uint32(len(buf)) / direntSize
	for s := start; s < n; {
		// read the chunk holding slot s
		cs := s - s%per
		off, err := fs.slotOffset(dir, cs)
		if err != nil {
			return err
		}
		if err := fs.readAt(buf, off); err != nil {
			return err
		}
		for ; s < cs+per && s < n; s++ {
			var e rawEntry
			copy(e[:], buf[(s-cs)*direntSize:])
			switch {
			case e[0] == slotEnd:
				return nil
			case e[0] == slotFree:
				want = 0
				continue
			case e.attr()&attrLongMask == attrLongName:
				ord := int(e[0] &^ lfnLast)
				if e[0]&lfnLast != 0 {
					if ord == 0 || ord > 20 {
						want = 0
						continue
					}
					units = make([]uint16, ord*lfnChars)
					want, chk, lfStart = ord, e[13], s
				} else if want == 0 || ord != want || e[13] != chk {
					want = 0
					continue
				}
				base := (ord - 1) * lfnChars
				for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
					units[base+i] = binary.LittleEndian.Uint16(e[o:])
				}
				want = ord - 1
				if want == 0 {
					want = -1 // complete: the short entry comes next
				}
				continue
			case e.attr()&attrVolumeID != 0:
				want = 0
				continue
			}
			if isDotEntry(e[:11]) {
				want = 0
				continue
			}
			d := dentry{slot: s, first: s, raw: e}
			if want == -1 && lfnChecksum(e[:11]) == chk {
				end := len(units)
				for i, u := range units {
					if u == 0 {
						end = i
						break
					}
				}
				if end > 0 {
					d.units = units[:end]
					d.first = lfStart
				}
			}
			want = 0
			if s >= from && !fn(&d) {
				return nil
			}
		}
	}
	return nil
}

// find returns the entry called name (case-insensitively, long or short
// name) in directory dir, or ENOENT.
func (fs *fsys) find(dir uint32, name string) (*dentry, error) {
	var found *dentry
	nu := utf16Len(name)
	err := fs.scan(dir, 0, func(d *dentry) bool {
		if d.matches(name, nu) {
			found = d
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, syscall.ENOENT
	}
	return found, nil
}

// findFree returns the first slot of n consecutive free slots in directory
// dir, growing it (with zeroed clusters) when none is found. ENOSPC when
// the fixed root of FAT12/16 is full or the directory reaches 65536
// entries.
func (fs *fsys) findFree(dir uint32, n uint32) (uint32, error) {
	total, err := fs.dirSlots(dir)
	if err != nil {
		return 0, err
	}
	run, runStart := uint32(0), uint32(0)
	var e rawEntry
	for s := uint32(0); s < total; s++ {
		off, err := fs.slotOffset(dir, s)
		if err != nil {
			return 0, err
		}
		if err := fs.readAt(e[:1], off); err != nil {
			return 0, err
		}
		if e[0] == slotEnd {
			// Every slot from here on is free.
			if s+n <= total {
				return s, fs.endMarkAfter(dir, s+n, total)
			}
			if run == 0 {
				runStart = s
			}
			run = total - runStart
			break
		}
		if e[0] == slotFree {
			if run == 0 {
				runStart = s
			}
			run++
			if run == n {
				return runStart, nil
			}
		} else {
			run = 0
		}
	}
	// Grow: runStart..total-1 are free (run of them) if run > 0.
	if dir == 0 && fs.g.fatType != fat32 {
		return 0, syscall.ENOSPC
	}
	if run == 0 {
		runStart = total
	}
	per := fs.g.clusterSize / direntSize
	need := runStart + n - total
	nclus := (need + per - 1) / per
	if uint64(total)+uint64(nclus)*uint64(per) > maxDirSlots {
		return 0, syscall.ENOSPC
	}
	ch, err := fs.dirChain(dir)
	if err != nil {
		return 0, err
	}
	added, err := fs.alloc(int(nclus), ch[len(ch)-1], true)
	if err != nil {
		return 0, err
	}
	fs.dirChains[dir] = append(ch[:len(ch):len(ch)], added...)
	return runStart, nil
}

// endMarkAfter makes sure that slot s (if inside the directory) ends the
// directory when new entries fill the slots up to it, so that whatever
// lies past an end marker is never read as entries.
func (fs *fsys) endMarkAfter(dir, s, total uint32) error {
	if s >= total {
		return nil
	}
	off, err := fs.slotOffset(dir, s)
	if err != nil {
		return err
	}
	var b [1]byte
	if err := fs.readAt(b[:], off); err != nil {
		return err
	}
	if b[0] == slotEnd {
		return nil
	}
	var z rawEntry
	return fs.writeAt(z[:], off)
}

// longEntries builds the long-name entries for name and the short name
// sn, in on-disk order.
func longEntries(name string, sn []byte) []rawEntry {
	u := encodeLong(name)
	n := (len(u) + lfnChars - 1) / lfnChars
	padded := make([]uint16, n*lfnChars)
	for i := range padded {
		switch {
		case i < len(u):
			padded[i] = u[i]
		case i == len(u):
			padded[i] = 0
		default:
			padded[i] = 0xFFFF
		}
	}
	chk := lfnChecksum(sn)
	out := make([]rawEntry, n)
	for k := 0; k < n; k++ {
		ord := n - k
		e := &out[k]
		e[0] = byte(ord)
		if k == 0 {
			e[0] |= lfnLast
		}
		e[11] = attrLongName
		e[13] = chk
		base := (ord - 1) * lfnChars
		for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			binary.LittleEndian.PutUint16(e[o:], padded[base+i])
		}
	}
	return out
}

// addEntry enters name in directory dir with the short entry e (whose name
// bytes and NT flags it fills in) and returns the short entry's slot.
// The caller has checked the name and that it is not present.
func (fs *fsys) addEntry(dir uint32, name string, e *rawEntry) (uint32, error) {
	sn, nt, ok := fits83(name)
	var lfns []rawEntry
	if !ok {
		taken := map[string]bool{}
		if err := fs.scan(dir, 0, func(d *dentry) bool {
			taken[string(d.raw[:11])] = true
			// An alias must not read as another file's long name either.
			if l := d.longName(); l != "" && len(l) <= 12 {
				if sn, _, ok := fits83(strings.ToUpper(l)); ok {
					taken[string(sn[:])] = true
				}
			}
			return true
		}); err != nil {
			return 0, err
		}
		basis := basisName(name)
		found := false
		for i := 1; i < 1000000; i++ {
			sn = withTail(basis, i)
			if !taken[string(sn[:])] {
				found = true
				break
			}
		}
		if !found {
			return 0, syscall.ENOSPC
		}
		nt = 0
		lfns = longEntries(name, sn[:])
	}
	copy(e[:11], sn[:])
	e[12] = nt
	slot, err := fs.findFree(dir, uint32(len(lfns))+1)
	if err != nil {
		return 0, err
	}
	for i := range lfns {
		if err := fs.writeSlot(dir, slot+uint32(i), &lfns[i]); err != nil {
			return 0, err
		}
	}
	s := slot + uint32(len(lfns))
	if err := fs.writeSlot(dir, s, e); err != nil {
		return 0, err
	}
	return s, nil
}

// delEntry marks the slots first..slot of directory dir free.
func (fs *fsys) delEntry(dir, first, slot uint32) error {
	for s := first; s <= slot; s++ {
		off, err := fs.slotOffset(dir, s)
		if err != nil {
			return err
		}
		if err := fs.writeAt([]byte{slotFree}, off); err != nil {
			return err
		}
	}
	return nil
}

// entryAt returns the file whose short entry is at p, with its long name.
func (fs *fsys) entryAt(p pos) (*dentry, error) {
	var found *dentry
	err := fs.scan(p.dir, p.slot, func(d *dentry) bool {
		if d.slot == p.slot {
			found = d
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, syscall.ENOENT
	}
	return found, nil
}
