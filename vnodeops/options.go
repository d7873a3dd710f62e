package vnodeops

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// OptionReader reads a driver's mount options (MountArgs.Options), one
// accessor call per option the driver knows, and then reports in Err the
// first value that did not parse, or else every option the driver did not
// ask for, naming the keys, so that every driver refuses a bad option the
// same way:
//
//	o := vnodeops.ReadOptions(a.Options)
//	fallback := o.Bool("ro_fallback", false)
//	mode := o.Choice("unclean", "ro", "ro", "refuse")
//	if err := o.Err(); err != nil {
//		return nil, fmt.Errorf("mydriver: %w: %w", syscall.EINVAL, err)
//	}
type OptionReader struct {
	opts  map[string]string
	known []string
	err   error
}

// ReadOptions starts reading opts.
func ReadOptions(opts map[string]string) *OptionReader {
	return &OptionReader{opts: opts}
}

// Bool reads a boolean option: absent is def, present without a value is
// true, otherwise strconv.ParseBool's words (1, t, true, 0, f, false, ...).
func (o *OptionReader) Bool(name string, def bool) bool {
	o.known = append(o.known, name)
	v, ok := o.opts[name]
	switch {
	case !ok:
		return def
	case v == "":
		return true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		o.fail("option %s: %q is not a boolean", name, v)
		return def
	}
	return b
}

// Choice reads an option that takes one of choices: absent is def.
func (o *OptionReader) Choice(name, def string, choices ...string) string {
	o.known = append(o.known, name)
	v, ok := o.opts[name]
	if !ok {
		return def
	}
	if !slices.Contains(choices, v) {
		o.fail("option %s: %q is not one of %s", name, v, strings.Join(choices, ", "))
		return def
	}
	return v
}

// Uint reads an unsigned number written in base (10; 8 for permission
// bits) and at most max: absent is def.
func (o *OptionReader) Uint(name string, def uint64, base int, max uint64) uint64 {
	o.known = append(o.known, name)
	v, ok := o.opts[name]
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(v, base, 64)
	if err != nil || n > max {
		o.fail("option %s: %q is not a number of at most %s (base %d)", name, v, strconv.FormatUint(max, base), base)
		return def
	}
	return n
}

// Value reads an option with the driver's own parse, whose error says what
// is wrong with the value; parse is not called when the option is absent.
func (o *OptionReader) Value(name string, parse func(v string) error) {
	o.known = append(o.known, name)
	if v, ok := o.opts[name]; ok {
		if err := parse(v); err != nil {
			o.fail("option %s: %q: %v", name, v, err)
		}
	}
}

// Err is the first bad value, or else an error naming every option no
// accessor asked for and the options known; nil when all is well.
func (o *OptionReader) Err() error {
	if o.err != nil {
		return o.err
	}
	var unknown []string
	for k := range o.opts {
		if !slices.Contains(o.known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	known := slices.Sorted(slices.Values(o.known))
	return fmt.Errorf("unknown option(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
}

func (o *OptionReader) fail(format string, a ...any) {
	if o.err == nil {
		o.err = fmt.Errorf(format, a...)
	}
}
