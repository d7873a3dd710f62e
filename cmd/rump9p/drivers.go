package main

// The file system drivers linked into the binary: add a driver here, and
// nowhere else in the command.
import (
	_ "github.com/rump9p/rump9p/vnodeops/cd9660"
	_ "github.com/rump9p/rump9p/vnodeops/ext2fs"
	_ "github.com/rump9p/rump9p/vnodeops/ffs"
	_ "github.com/rump9p/rump9p/vnodeops/msdosfs"
	_ "github.com/rump9p/rump9p/vnodeops/tmpfs"
)
