//go:build linux

package tmpfs

import (
	"sync"
	"syscall"
)

// totalRAM returns the machine's memory in bytes, or a fallback of 16 GiB
// when the kernel will not say.
var totalRAM = sync.OnceValue(func() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil || si.Totalram == 0 {
		return fallbackRAM
	}
	unit := uint64(si.Unit)
	if unit == 0 {
		unit = 1
	}
	return uint64(si.Totalram) * unit
})
