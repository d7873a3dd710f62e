package vnodeops

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// KnownTypes lists every file system type name the product defines, whether
// or not its driver is linked into this binary.
var KnownTypes = []string{"tmpfs", "ffs", "ext2fs", "msdosfs", "cd9660"}

var (
	regMu   sync.RWMutex
	drivers = map[string]Driver{}
)

// Register makes a driver available by name. Drivers call it from init.
// It panics on a duplicate name, which is a programming error.
func Register(d Driver) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := drivers[d.Name]; dup {
		panic("vnodeops: driver registered twice: " + d.Name)
	}
	drivers[d.Name] = d
}

// Lookup returns the registered driver called name.
func Lookup(name string) (Driver, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	d, ok := drivers[name]
	return d, ok
}

// Drivers returns the names of the registered drivers, sorted.
func Drivers() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Probe returns the name of the registered driver whose probe recognises
// the device, trying drivers in name order. It returns an error naming the
// known formats when none does.
func Probe(r io.ReaderAt, size int64) (string, error) {
	for _, n := range Drivers() {
		d, _ := Lookup(n)
		if d.Probe != nil && d.Probe(r, size) {
			return n, nil
		}
	}
	return "", fmt.Errorf("no known file system found (tried %v)", Drivers())
}
