package blkdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Partition is one partition of a partition table.
type Partition struct {
	// Number is the partition's number as Linux numbers it: an MBR
	// primary is numbered by its slot (1-4, empty slots leave gaps),
	// logical partitions of extended partitions count from 5 in chain
	// order; a GPT partition is its entry's index in the entry array plus
	// one. Extended-partition containers are not listed. The
	// subpartitions of a BSD disklabel in an MBR partition come after
	// all of those, in label order (disklabel.go).
	Number int
	// Start and Size locate the partition in bytes from the start of the
	// device. Partitions checks that the range lies inside the device.
	Start, Size int64
	// Type is "0x83"-style for MBR, the partition type GUID for GPT
	// ("0FC63DAF-8483-4772-8E79-3D69D8477DE4") and the file system type
	// ("4.2BSD", "swap", "fstype 12") for a disklabel subpartition.
	Type string
	// Name is the GPT partition name, the letter ("a", "b", ...) of a
	// disklabel subpartition, and "" for MBR.
	Name string
}

// ErrBadPartitionTable is matched (errors.Is) by the errors Partitions
// returns for a table that is present but corrupt.
var ErrBadPartitionTable = errors.New("bad partition table")

// MBR layout (the IBM PC / "DOS" partition table, as described in the
// UEFI specification 2.10, §5.2.1 "Legacy Master Boot Record"): sector 0
// holds 446 bytes of boot code, four 16-byte partition records at offset
// 446 and the signature 0x55 0xAA at offset 510. A record is: boot
// indicator (0x00 or 0x80), starting CHS (3), OS type (1), ending CHS (3),
// starting LBA (4, little-endian), size in LBA (4, little-endian). LBAs
// are 512-byte sectors here.
//
// An extended partition (type 0x05, 0x0F or 0x85) holds a chain of
// Extended Boot Records, each laid out like an MBR: its data records start
// relative to the EBR itself, and its link record (an extended type)
// points to the next EBR relative to the start of the outermost extended
// partition.
const (
	mbrSectorSize  = 512
	mbrTableOffset = 446
	mbrRecordSize  = 16
	// maxLogical bounds the number of EBRs followed in all chains
	// together; Linux allows at most 256 partitions per disk.
	maxLogical = 256
	// maxGPTArrayBytes bounds the GPT partition entry array we read
	// (the spec's minimum is 16384 bytes; tools write 128 × 128).
	maxGPTArrayBytes = 4 << 20
)

type mbrRecord struct {
	status byte
	typ    byte
	start  uint64 // LBA
	count  uint64 // sectors
}

func (r mbrRecord) empty() bool { return r.typ == 0 || r.count == 0 }

func isExtendedType(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

func mbrRecords(sec []byte) [4]mbrRecord {
	var rs [4]mbrRecord
	for i := range rs {
		b := sec[mbrTableOffset+i*mbrRecordSize:]
		rs[i] = mbrRecord{
			status: b[0],
			typ:    b[4],
			start:  uint64(binary.LittleEndian.Uint32(b[8:])),
			count:  uint64(binary.LittleEndian.Uint32(b[12:])),
		}
	}
	return rs
}

func hasBootSignature(sec []byte) bool { return sec[510] == 0x55 && sec[511] == 0xAA }

// looksLikeFATBootSector reports whether sector 0 is the boot sector of a
// FAT file system (Microsoft "FAT: General Overview of On-Disk Format",
// BPB fields) rather than an MBR: a jump instruction, a sane bytes per
// sector, a power-of-two cluster size, reserved sectors, FATs and a valid
// media byte.
func looksLikeFATBootSector(sec []byte) bool {
	if !(sec[0] == 0xEB && sec[2] == 0x90) && sec[0] != 0xE9 {
		return false
	}
	switch binary.LittleEndian.Uint16(sec[11:]) {
	case 512, 1024, 2048, 4096:
	default:
		return false
	}
	spc := sec[13]
	if spc == 0 || spc&(spc-1) != 0 {
		return false
	}
	if binary.LittleEndian.Uint16(sec[14:]) == 0 || sec[16] == 0 {
		return false
	}
	media := sec[21]
	return media == 0xF0 || media >= 0xF8
}

// Partitions reads dev's partition table: an MBR (with extended
// partitions) or, when the MBR is protective (a record of type 0xEE), a
// GPT. It returns nil and no error when dev has no partition table:
// shorter than a sector, no 0x55AA signature, records whose boot indicator
// is not 0x00/0x80 (the sector is a file system's boot code), or a FAT
// boot sector whose "records" do not fit the device. An MBR with no
// records yields an empty list. An MBR partition of a BSD type (0xA9
// NetBSD, 0xA5 FreeBSD, 0xA6 OpenBSD) holding a disklabel adds the
// label's subpartitions (disklabel.go).
//
// Every table value is checked: partitions must lie inside the device,
// extended chains must stay inside their extended partition and must not
// loop, GPT headers and entry arrays must pass their CRC32s (falling back
// to the backup header when the primary fails). A corrupt table gives an
// error matching ErrBadPartitionTable that names the image and the fault;
// an I/O error is returned as is, wrapped with the image name.
func Partitions(dev Device) ([]Partition, error) {
	size := dev.Size()
	if size < mbrSectorSize {
		return nil, nil
	}
	sec := make([]byte, mbrSectorSize)
	if _, err := dev.ReadAt(sec, 0); err != nil {
		return nil, fmt.Errorf("image %s: reading the MBR: %w", dev.Name(), err)
	}
	if !hasBootSignature(sec) {
		return nil, nil
	}
	recs := mbrRecords(sec)
	protective := false
	for _, r := range recs {
		if r.status != 0x00 && r.status != 0x80 {
			return nil, nil
		}
		if r.typ == 0xEE {
			protective = true
		}
	}
	if protective {
		return gptPartitions(dev)
	}
	p := &mbrParser{dev: dev, sectors: uint64(size) / mbrSectorSize}
	if looksLikeFATBootSector(sec) {
		for _, r := range recs {
			if !r.empty() && !p.fits(r.start, r.count) {
				return nil, nil
			}
		}
	}
	parts, err := p.parse(recs)
	if err != nil {
		return nil, err
	}
	return addDisklabels(dev, parts)
}

type mbrParser struct {
	dev     Device
	sectors uint64
	parts   []Partition
	ebrs    int
}

func (p *mbrParser) errorf(format string, args ...any) error {
	return fmt.Errorf("image %s: MBR: %s: %w", p.dev.Name(), fmt.Sprintf(format, args...), ErrBadPartitionTable)
}

// fits reports whether count sectors at start lie inside the device. Both
// come from 32-bit fields, so the sum cannot overflow.
func (p *mbrParser) fits(start, count uint64) bool {
	return start+count <= p.sectors
}

func (p *mbrParser) add(num int, start, count uint64, typ byte) {
	p.parts = append(p.parts, Partition{
		Number: num,
		Start:  int64(start) * mbrSectorSize,
		Size:   int64(count) * mbrSectorSize,
		Type:   fmt.Sprintf("0x%02x", typ),
	})
}

func (p *mbrParser) parse(recs [4]mbrRecord) ([]Partition, error) {
	// Linux lists the primaries first, then each extended partition's
	// logical partitions in slot order; so do we.
	for i, r := range recs {
		if r.empty() {
			continue
		}
		if !p.fits(r.start, r.count) {
			return nil, p.errorf("partition %d (sectors %d+%d) extends past the end of the device (%d sectors)", i+1, r.start, r.count, p.sectors)
		}
		if !isExtendedType(r.typ) {
			p.add(i+1, r.start, r.count, r.typ)
		}
	}
	next := 5
	for i, r := range recs {
		if r.empty() || !isExtendedType(r.typ) {
			continue
		}
		var err error
		if next, err = p.extended(i+1, r.start, r.count, next); err != nil {
			return nil, err
		}
	}
	if p.parts == nil {
		p.parts = []Partition{}
	}
	return p.parts, nil
}

// extended walks the EBR chain of the extended partition in slot, which
// spans count sectors from base, numbering logical partitions from num.
// It returns the next free number.
func (p *mbrParser) extended(slot int, base, count uint64, num int) (int, error) {
	seen := make(map[uint64]bool)
	sec := make([]byte, mbrSectorSize)
	ebr := base
	for {
		if seen[ebr] {
			return 0, p.errorf("extended partition %d: EBR chain loops back to sector %d", slot, ebr)
		}
		seen[ebr] = true
		p.ebrs++
		if p.ebrs > maxLogical {
			return 0, p.errorf("more than %d extended boot records", maxLogical)
		}
		if ebr < base || ebr >= base+count {
			return 0, p.errorf("extended partition %d: EBR at sector %d lies outside it (sectors %d+%d)", slot, ebr, base, count)
		}
		if _, err := p.dev.ReadAt(sec, int64(ebr)*mbrSectorSize); err != nil {
			return 0, fmt.Errorf("image %s: reading the EBR at sector %d: %w", p.dev.Name(), ebr, err)
		}
		if !hasBootSignature(sec) {
			return 0, p.errorf("extended partition %d: EBR at sector %d has no 0x55AA signature", slot, ebr)
		}
		var link *mbrRecord
		for _, r := range mbrRecords(sec) {
			if r.empty() {
				continue
			}
			if isExtendedType(r.typ) {
				if link == nil {
					link = &r
				}
				continue
			}
			start := ebr + r.start // < 2^33: no overflow
			if !p.fits(start, r.count) {
				return 0, p.errorf("logical partition %d (sectors %d+%d) extends past the end of the device (%d sectors)", num, start, r.count, p.sectors)
			}
			p.add(num, start, r.count, r.typ)
			num++
		}
		if link == nil {
			return num, nil
		}
		ebr = base + link.start
	}
}

// GPT layout (UEFI specification 2.10, §5.3 "GUID Partition Table (GPT)
// Disk Layout"). The header is at LBA 1 (primary) and, as a backup, at the
// last LBA of the disk; table 5-5 gives its fields:
//
//	0  Signature "EFI PART"     8
//	8  Revision                 4
//	12 HeaderSize               4  (92 ≤ size ≤ block size)
//	16 HeaderCRC32              4  (CRC32 of HeaderSize bytes, this field zero)
//	20 Reserved                 4
//	24 MyLBA                    8
//	32 AlternateLBA             8
//	40 FirstUsableLBA           8
//	48 LastUsableLBA            8
//	56 DiskGUID                16
//	72 PartitionEntryLBA        8
//	80 NumberOfPartitionEntries 4
//	84 SizeOfPartitionEntry     4  (128 × 2^n)
//	88 PartitionEntryArrayCRC32 4
//
// A partition entry (table 5-6) is: PartitionTypeGUID (16; all zero =
// unused), UniquePartitionGUID (16), StartingLBA (8), EndingLBA (8,
// inclusive), Attributes (8), PartitionName (72, UTF-16LE, NUL padded).
// All integers are little-endian. The first three GUID fields are stored
// little-endian (§Appendix A, EFI_GUID).
const gptSignature = "EFI PART"

type gptHeader struct {
	lba, alternate          uint64
	firstUsable, lastUsable uint64
	entryLBA                uint64
	numEntries, entrySize   uint32
	entriesCRC              uint32
}

// gptPartitions reads the GPT behind a protective MBR. Images nearly
// always use 512-byte logical blocks; 4096-byte blocks (4Kn disks) are
// tried when no GPT is found with 512.
func gptPartitions(dev Device) ([]Partition, error) {
	var firstErr error
	for _, bs := range []int64{512, 4096} {
		parts, found, err := gptWithBlockSize(dev, bs)
		if err == nil {
			return parts, nil
		}
		if firstErr == nil || found {
			firstErr = err
		}
		if found {
			break
		}
	}
	return nil, firstErr
}

// gptWithBlockSize reads the GPT assuming blocks of bs bytes. found tells
// whether a header signature was seen at all.
func gptWithBlockSize(dev Device, bs int64) (parts []Partition, found bool, err error) {
	nblocks := uint64(dev.Size() / bs)
	if nblocks < 3 {
		return nil, false, fmt.Errorf("image %s: protective MBR but the device is too small for a GPT: %w", dev.Name(), ErrBadPartitionTable)
	}
	last := nblocks - 1
	var errs []string
	try := func(which string, lba uint64) ([]Partition, *gptHeader, bool) {
		h, sig, err := readGPTHeader(dev, bs, lba, nblocks)
		found = found || sig
		if err == nil {
			var p []Partition
			if p, err = readGPTEntries(dev, bs, h); err == nil {
				return p, h, true
			}
		}
		errs = append(errs, fmt.Sprintf("%s header at LBA %d: %v", which, lba, err))
		return nil, h, false
	}
	p, primary, ok := try("primary", 1)
	if ok {
		return p, true, nil
	}
	// The primary header names its backup; if it is unusable, the backup
	// is at the last LBA (§5.3.2).
	if primary != nil && primary.alternate != last && primary.alternate > 1 && primary.alternate < nblocks {
		if p, _, ok := try("backup", primary.alternate); ok {
			return p, true, nil
		}
	}
	if p, _, ok := try("backup", last); ok {
		return p, true, nil
	}
	return nil, found, fmt.Errorf("image %s: GPT (%d-byte blocks): %s: %w", dev.Name(), bs, strings.Join(errs, "; "), ErrBadPartitionTable)
}

// readGPTHeader reads and validates the header at lba. sig reports whether
// the signature was present. On a CRC or field error h is nil.
func readGPTHeader(dev Device, bs int64, lba, nblocks uint64) (h *gptHeader, sig bool, err error) {
	b := make([]byte, bs)
	if _, err := dev.ReadAt(b, int64(lba)*bs); err != nil {
		return nil, false, fmt.Errorf("read: %w", err)
	}
	if string(b[:8]) != gptSignature {
		return nil, false, errors.New("no \"EFI PART\" signature")
	}
	hs := binary.LittleEndian.Uint32(b[12:])
	if hs < 92 || int64(hs) > bs {
		return nil, true, fmt.Errorf("header size %d out of range", hs)
	}
	want := binary.LittleEndian.Uint32(b[16:])
	hdr := append([]byte(nil), b[:hs]...)
	clear(hdr[16:20])
	if got := crc32.ChecksumIEEE(hdr); got != want {
		return nil, true, fmt.Errorf("header CRC32 %#08x, want %#08x", got, want)
	}
	le64 := func(o int) uint64 { return binary.LittleEndian.Uint64(b[o:]) }
	g := &gptHeader{
		lba:         le64(24),
		alternate:   le64(32),
		firstUsable: le64(40),
		lastUsable:  le64(48),
		entryLBA:    le64(72),
		numEntries:  binary.LittleEndian.Uint32(b[80:]),
		entrySize:   binary.LittleEndian.Uint32(b[84:]),
		entriesCRC:  binary.LittleEndian.Uint32(b[88:]),
	}
	switch {
	case g.lba != lba:
		return nil, true, fmt.Errorf("MyLBA is %d", g.lba)
	case g.firstUsable > g.lastUsable || g.lastUsable >= nblocks:
		return nil, true, fmt.Errorf("usable LBAs %d-%d do not fit the device (%d blocks)", g.firstUsable, g.lastUsable, nblocks)
	case g.entrySize < 128 || g.entrySize%128 != 0 || (g.entrySize/128)&(g.entrySize/128-1) != 0:
		return nil, true, fmt.Errorf("partition entry size %d is not 128×2^n", g.entrySize)
	case uint64(g.numEntries)*uint64(g.entrySize) > maxGPTArrayBytes:
		return nil, true, fmt.Errorf("partition entry array of %d × %d bytes is too large", g.numEntries, g.entrySize)
	case g.entryLBA >= nblocks ||
		uint64(g.numEntries)*uint64(g.entrySize) > (nblocks-g.entryLBA)*uint64(bs):
		return nil, true, fmt.Errorf("partition entry array at LBA %d does not fit the device", g.entryLBA)
	}
	return g, true, nil
}

// readGPTEntries reads h's entry array, checks its CRC32 and returns the
// used entries, each inside the header's usable range.
func readGPTEntries(dev Device, bs int64, h *gptHeader) ([]Partition, error) {
	arr := make([]byte, int(h.numEntries)*int(h.entrySize))
	if _, err := dev.ReadAt(arr, int64(h.entryLBA)*bs); err != nil {
		return nil, fmt.Errorf("reading the partition entries: %w", err)
	}
	if got := crc32.ChecksumIEEE(arr); got != h.entriesCRC {
		return nil, fmt.Errorf("partition entry array CRC32 %#08x, want %#08x", got, h.entriesCRC)
	}
	var zero [16]byte
	parts := []Partition{}
	for i := range int(h.numEntries) {
		e := arr[i*int(h.entrySize):]
		if bytes.Equal(e[:16], zero[:]) {
			continue
		}
		start := binary.LittleEndian.Uint64(e[32:])
		end := binary.LittleEndian.Uint64(e[40:])
		if start > end || start < h.firstUsable || end > h.lastUsable {
			return nil, fmt.Errorf("entry %d: LBAs %d-%d outside the usable range %d-%d", i+1, start, end, h.firstUsable, h.lastUsable)
		}
		parts = append(parts, Partition{
			Number: i + 1,
			Start:  int64(start) * bs, // lastUsable < nblocks: no overflow
			Size:   int64(end-start+1) * bs,
			Type:   guidString(e[:16]),
			Name:   utf16Name(e[56:128]),
		})
	}
	return parts, nil
}

// guidString formats a GUID stored in the EFI mixed-endian layout as
// 8-4-4-4-12 upper-case hex.
func guidString(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(b[0:]),
		binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]),
		b[8:10], b[10:16])
}

// utf16Name decodes a NUL-terminated UTF-16LE name; invalid surrogates
// become U+FFFD.
func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// SelectPartition returns the part of dev that holds the file system:
//
//   - "" is the whole device (dev itself);
//   - "N" (a decimal number) is partition N as Partitions numbers it;
//   - "auto" is the whole device when it has no partition table or an
//     empty one, the only partition when there is one, else the first
//     partition for which probe(window, size) returns true (probe nil:
//     the first partition).
//
// probe receives a window on the candidate partition; it must only read
// from it (never Close it). The returned Device is dev or a Window on it,
// and owns dev: closing it closes dev. On error dev is left open and
// still the caller's. Errors name the image and list the partitions
// present.
func SelectPartition(dev Device, sel string, probe func(io.ReaderAt, int64) bool) (Device, error) {
	switch sel {
	case "":
		return dev, nil
	case "auto":
		parts, err := Partitions(dev)
		if err != nil {
			return nil, err
		}
		switch {
		case len(parts) == 0:
			return dev, nil
		case len(parts) == 1 || probe == nil:
			return partWindow(dev, parts[0]), nil
		}
		for _, p := range parts {
			w := partWindow(dev, p)
			if probe(w, w.Size()) {
				return w, nil
			}
		}
		return nil, fmt.Errorf("image %s: no partition holds a file system of this type (partitions: %s); select one by number", dev.Name(), listParts(parts))
	}
	n, err := strconv.Atoi(sel)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("image %s: bad partition selector %q: want \"\", \"auto\" or a partition number", dev.Name(), sel)
	}
	parts, err := Partitions(dev)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("image %s has no partition %d: it has no partitions", dev.Name(), n)
	}
	for _, p := range parts {
		if p.Number == n {
			return partWindow(dev, p), nil
		}
	}
	return nil, fmt.Errorf("image %s has no partition %d (partitions: %s)", dev.Name(), n, listParts(parts))
}

func partWindow(dev Device, p Partition) Device {
	return Window(dev, p.Start, p.Size, fmt.Sprintf("%s (partition %d)", dev.Name(), p.Number))
}

func listParts(parts []Partition) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprintf("%d (type %s, %d bytes at %d)", p.Number, p.Type, p.Size, p.Start)
	}
	return strings.Join(s, ", ")
}
