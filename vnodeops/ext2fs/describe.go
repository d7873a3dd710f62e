package ext2fs

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

var _ vnodeops.Describer = (*fsys)(nil)

// sbVolumeName is s_volume_name, 16 bytes (Documentation/filesystems/ext4
// "The Super Block").
const sbVolumeName = 0x78

// Describe implements vnodeops.Describer with the fields dumpe2fs -h
// prints first, under its names.
func (fs *fsys) Describe() ([]vnodeops.InfoField, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	sb := fs.sbRaw
	name := sb[sbVolumeName : sbVolumeName+16]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if len(name) == 0 {
		name = []byte("<none>") // as dumpe2fs prints it
	}
	u := sb[sbUUID : sbUUID+16]
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	var features []string
	features = append(features, featureList(fs.compat, compatNames)...)
	features = append(features, featureList(fs.incompat, incompatNames)...)
	features = append(features, featureList(fs.roCompat, roCompatNames)...)
	state := "clean"
	if fs.mountState&stateValid == 0 {
		state = "not clean"
	}
	wtime := time.Unix(int64(le.Uint32(sb[sbWtime:])), 0).UTC().Format(time.RFC3339)
	f := func(k string, v any) vnodeops.InfoField { return vnodeops.InfoField{Key: k, Value: fmt.Sprint(v)} }
	return []vnodeops.InfoField{
		f("Filesystem volume name", string(name)),
		f("Filesystem UUID", uuid),
		f("Filesystem revision #", fs.rev),
		f("Filesystem features", strings.Join(features, " ")),
		f("Filesystem state", state),
		f("Inode count", fs.inodesCount),
		f("Block count", fs.blocksCount),
		f("Reserved block count", fs.rBlocks),
		f("Free blocks", fs.freeBlocks),
		f("Free inodes", fs.freeInodes),
		f("First block", fs.firstDataBlock),
		f("Block size", fs.bs),
		f("Group count", fs.ngroups),
		f("Blocks per group", fs.bpg),
		f("Inodes per group", fs.ipg),
		f("Inode size", fs.inodeSize),
		f("Mount count", le.Uint16(sb[sbMntCount:])),
		f("Last write time", wtime),
	}, nil
}
