package vnodeops

// Describer is implemented by file systems that can summarise their
// on-disk layout, as dumpe2fs -h or dumpfs do: the superblock's fields,
// the geometry, the features in use. It is optional; a front asks for it
// with a type assertion on the FS and shows only what Statvfs says when
// it is missing.
//
// Describe reads nothing the mount has not validated already and never
// fails on a mounted file system except with EIO for a device error. It
// may be called concurrently with any other operation.
type Describer interface {
	Describe() ([]InfoField, error)
}

// InfoField is one line of a Describer's summary.
type InfoField struct {
	// Key names the field in the format's own terms ("Block size",
	// "Inode count", "Volume label", "FAT type").
	Key string
	// Value is the field's value as the format's own tools print it.
	Value string
}
