//go:build !linux

package tmpfs

// totalRAM returns a fixed guess of the machine's memory where the
// operating system is not asked.
func totalRAM() uint64 { return fallbackRAM }
