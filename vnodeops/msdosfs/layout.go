package msdosfs

import (
	"encoding/binary"
	"fmt"
	"io"
)

// On-disk layout of the FAT file system. Offsets and rules follow
// Microsoft's "FAT: General Overview of On-Disk Format" (fatgen103, version
// 1.03, December 2000), cited below as [fatgen103 §section].

// Boot sector and BPB field offsets [fatgen103 §3.1 "Boot Sector and BPB
// Structure", §3.2 (FAT12/16 from offset 36), §3.3 (FAT32 from offset 36)].
const (
	bsJmpBoot     = 0
	bpbBytsPerSec = 11
	bpbSecPerClus = 13
	bpbRsvdSecCnt = 14
	bpbNumFATs    = 16
	bpbRootEntCnt = 17
	bpbTotSec16   = 19
	bpbMedia      = 21
	bpbFATSz16    = 22
	bpbTotSec32   = 32
	bpbFATSz32    = 36 // FAT32 only
	bpbExtFlags   = 40 // FAT32 only
	bpbFSVer      = 42 // FAT32 only
	bpbRootClus   = 44 // FAT32 only
	bpbFSInfo     = 48 // FAT32 only
)

// FSInfo sector layout [fatgen103 §5 "FAT32 FSInfo Sector Structure"].
const (
	fsiLeadSig     = 0
	fsiStrucSig    = 484
	fsiFreeCount   = 488
	fsiNxtFree     = 492
	fsiTrailSig    = 508
	fsiLeadSigVal  = 0x41615252
	fsiStrucSigVal = 0x61417272
	fsiTrailSigVal = 0xAA550000
	fsiUnknown     = 0xFFFFFFFF
)

// FAT types and the cluster counts that decide them [fatgen103 §3.5 "FAT
// Type Determination": "This is the one and only way that FAT type is
// determined"].
const (
	fat12 = 12
	fat16 = 16
	fat32 = 32

	maxClusters12 = 4085  // a volume with fewer clusters is FAT12
	maxClusters16 = 65525 // a volume with fewer clusters is FAT16
)

// Reserved FAT entry 1 bits [fatgen103 §4 "FAT Data Structure": "the high
// two bits of FAT[1] ... ClnShutBitMask / HrdErrBitMask"]. The clean bit
// set means the volume was cleanly unmounted.
const (
	clnShut16 = 0x8000
	clnShut32 = 0x08000000
)

// geometry is the validated layout of a FAT volume, in sectors unless
// noted.
type geometry struct {
	fatType        int
	bps            uint32 // bytes per sector
	spc            uint32 // sectors per cluster
	rsvd           uint32 // reserved sectors (boot sector first)
	nfats          uint32
	rootEntCnt     uint32 // FAT12/16 fixed root directory entries
	totSec         uint32
	fatSz          uint32 // sectors per FAT copy
	rootClus       uint32 // FAT32 root directory first cluster
	fsInfo         uint32 // FAT32 FSInfo sector, 0 if none
	media          uint8
	activeFAT      uint32 // FAT copy read (FAT32 ExtFlags bits 0-3)
	mirror         bool   // write every FAT copy
	rootDirSectors uint32
	firstDataSec   uint32
	clusters       uint32 // CountofClusters
	clusterSize    uint32 // bytes
}

// maxCluster is the highest valid cluster number.
func (g *geometry) maxCluster() uint32 { return g.clusters + 1 }

// eocMin is the smallest end-of-chain value, badCluster the bad mark
// [fatgen103 §4: "0x?FF8 - 0x?FFF" end of chain, "0x?FF7" bad cluster].
func (g *geometry) eocMin() uint32 {
	switch g.fatType {
	case fat12:
		return 0xFF8
	case fat16:
		return 0xFFF8
	}
	return 0x0FFFFFF8
}

func (g *geometry) badCluster() uint32 { return g.eocMin() - 1 }

// eoc is the end-of-chain mark we write.
func (g *geometry) eoc() uint32 { return g.eocMin() | 7 }

// clusterOffset is the byte offset of cluster c (c >= 2) [fatgen103 §3.5:
// FirstSectorofCluster = ((N – 2) * BPB_SecPerClus) + FirstDataSector].
func (g *geometry) clusterOffset(c uint32) int64 {
	return (int64(c-2)*int64(g.spc) + int64(g.firstDataSec)) * int64(g.bps)
}

// fatOffset is the byte offset of FAT copy n's entry for cluster c, and
// the number of bytes it spans [fatgen103 §3.5: FATOffset = N * 2 for
// FAT16, N * 4 for FAT32, N + (N / 2) for FAT12].
func (g *geometry) fatOffset(n, c uint32) int64 {
	base := (int64(g.rsvd) + int64(n)*int64(g.fatSz)) * int64(g.bps)
	switch g.fatType {
	case fat12:
		return base + int64(c) + int64(c/2)
	case fat16:
		return base + int64(c)*2
	}
	return base + int64(c)*4
}

// rootOffset is the byte offset of the FAT12/16 fixed root directory
// [fatgen103 §3.5: FirstRootDirSecNum = BPB_ResvdSecCnt + (BPB_NumFATs *
// BPB_FATSz16)].
func (g *geometry) rootOffset() int64 {
	return (int64(g.rsvd) + int64(g.nfats)*int64(g.fatSz)) * int64(g.bps)
}

// parseBPB validates the boot sector bs (at least 512 bytes) of a device
// of devSize bytes and returns the geometry, or an error saying what is
// wrong.
func parseBPB(bs []byte, devSize int64) (*geometry, error) {
	if len(bs) < 512 {
		return nil, fmt.Errorf("boot sector too short")
	}
	le16 := func(off int) uint32 { return uint32(binary.LittleEndian.Uint16(bs[off:])) }
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(bs[off:]) }
	// [fatgen103 §3.1 BS_jmpBoot: 0xEB 0x?? 0x90 or 0xE9 0x?? 0x??]. Some
	// formatters write 0xEB with another third byte; accept any 0xEB.
	if bs[bsJmpBoot] != 0xEB && bs[bsJmpBoot] != 0xE9 {
		return nil, fmt.Errorf("no boot jump instruction")
	}
	// The signature 0x55 0xAA at offsets 510/511 [fatgen103 §3.2, note on
	// "Signature_word"].
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return nil, fmt.Errorf("no boot sector signature")
	}
	g := &geometry{
		bps:        le16(bpbBytsPerSec),
		spc:        uint32(bs[bpbSecPerClus]),
		rsvd:       le16(bpbRsvdSecCnt),
		nfats:      uint32(bs[bpbNumFATs]),
		rootEntCnt: le16(bpbRootEntCnt),
		media:      bs[bpbMedia],
	}
	switch g.bps {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("bad bytes per sector %d", g.bps)
	}
	if g.spc == 0 || g.spc&(g.spc-1) != 0 {
		return nil, fmt.Errorf("bad sectors per cluster %d", g.spc)
	}
	g.clusterSize = g.bps * g.spc
	if g.clusterSize > 64<<10 {
		return nil, fmt.Errorf("cluster size %d too large", g.clusterSize)
	}
	if g.rsvd == 0 {
		return nil, fmt.Errorf("no reserved sectors")
	}
	if g.nfats == 0 {
		return nil, fmt.Errorf("no FAT")
	}
	g.totSec = le16(bpbTotSec16)
	if g.totSec == 0 {
		g.totSec = le32(bpbTotSec32)
	}
	g.fatSz = le16(bpbFATSz16)
	fat32BPB := g.fatSz == 0
	if fat32BPB {
		g.fatSz = le32(bpbFATSz32)
	}
	if g.fatSz == 0 || g.totSec == 0 {
		return nil, fmt.Errorf("zero FAT size or sector count")
	}
	// [fatgen103 §3.5] RootDirSectors = ((BPB_RootEntCnt * 32) +
	// (BPB_BytsPerSec – 1)) / BPB_BytsPerSec.
	g.rootDirSectors = (g.rootEntCnt*32 + g.bps - 1) / g.bps
	meta := uint64(g.rsvd) + uint64(g.nfats)*uint64(g.fatSz) + uint64(g.rootDirSectors)
	if meta >= uint64(g.totSec) {
		return nil, fmt.Errorf("no data region")
	}
	g.firstDataSec = uint32(meta)
	g.clusters = (g.totSec - g.firstDataSec) / g.spc
	switch {
	case g.clusters < maxClusters12:
		g.fatType = fat12
	case g.clusters < maxClusters16:
		g.fatType = fat16
	default:
		g.fatType = fat32
	}
	if g.clusters == 0 {
		return nil, fmt.Errorf("no clusters")
	}
	// Cluster numbers must stay below the FAT32 bad-cluster mark
	// 0x0FFFFFF7 [fatgen103 §4].
	if g.clusters+1 > 0x0FFFFFF6 {
		return nil, fmt.Errorf("%d clusters are more than FAT32 can address", g.clusters)
	}
	g.activeFAT, g.mirror = 0, true
	if g.fatType == fat32 {
		if !fat32BPB || g.rootEntCnt != 0 {
			return nil, fmt.Errorf("FAT32 cluster count with a FAT12/16 BPB")
		}
		if v := le16(bpbFSVer); v != 0 {
			return nil, fmt.Errorf("unsupported FAT32 version %#x", v)
		}
		// [fatgen103 §3.3 BPB_ExtFlags: bit 7 set disables mirroring and
		// bits 0-3 name the active FAT].
		ext := le16(bpbExtFlags)
		if ext&0x80 != 0 {
			g.mirror = false
			g.activeFAT = ext & 0xF
			if g.activeFAT >= g.nfats {
				return nil, fmt.Errorf("active FAT %d of %d", g.activeFAT, g.nfats)
			}
		}
		g.rootClus = le32(bpbRootClus)
		if g.rootClus < 2 || g.rootClus > g.maxCluster() {
			return nil, fmt.Errorf("bad root cluster %d", g.rootClus)
		}
		g.fsInfo = le16(bpbFSInfo)
		if g.fsInfo == 0xFFFF || g.fsInfo >= g.rsvd {
			g.fsInfo = 0
		}
	} else if g.rootEntCnt == 0 {
		return nil, fmt.Errorf("FAT%d volume without root directory entries", g.fatType)
	}
	// The FAT must have an entry for every cluster (it may have more).
	var need uint64
	n := uint64(g.clusters) + 2
	switch g.fatType {
	case fat12:
		need = n + n/2 + n%2
	case fat16:
		need = 2 * n
	default:
		need = 4 * n
	}
	if uint64(g.fatSz)*uint64(g.bps) < need {
		return nil, fmt.Errorf("FAT of %d sectors too small for %d clusters", g.fatSz, g.clusters)
	}
	if int64(g.totSec)*int64(g.bps) > devSize {
		return nil, fmt.Errorf("volume of %d sectors larger than the device (%d bytes)", g.totSec, devSize)
	}
	return g, nil
}

// Probe reports whether r holds a FAT boot sector with a valid BPB.
func Probe(r io.ReaderAt, size int64) bool {
	if size < 512 {
		return false
	}
	var bs [512]byte
	if n, err := r.ReadAt(bs[:], 0); n != len(bs) || (err != nil && err != io.EOF) {
		return false
	}
	_, err := parseBPB(bs[:], size)
	return err == nil
}
