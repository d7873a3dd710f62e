package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem with one configuration key.
type Error struct {
	// Key is the key path ("msize", "listen[1]", "mounts[2].type"), or
	// the variable's name for an unknown RUMP9P_* environment variable.
	Key string
	// Msg says what is wrong, quoting the bad value.
	Msg string
	// Source names the environment variable or flag that set the key
	// ("RUMP9P_MSIZE", "--msize"); "" for the file or the defaults.
	Source string
}

func (e *Error) Error() string {
	s := e.Key + ": " + e.Msg
	if e.Source != "" {
		s += " (set by " + e.Source + ")"
	}
	return s
}

// Errors is every problem found, in the order found. It is never empty
// when returned as an error.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the entries, for errors.As and errors.Is.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// collector gathers errors. A key that already has an error gets no
// second one, so that validation does not repeat what decoding reported.
type collector struct {
	errs   Errors
	bad    map[string]bool
	source map[string]string // key path -> env var or flag that set it
}

func newCollector() *collector {
	return &collector{bad: map[string]bool{}, source: map[string]string{}}
}

func (c *collector) add(key, format string, args ...any) {
	if c.bad[key] {
		return
	}
	c.bad[key] = true
	c.errs = append(c.errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...), Source: c.sourceOf(key)})
}

// sourceOf finds who set key, trying the key and then its parents
// ("listen[1]" -> "listen", "security.squash.uid" -> "security.squash").
func (c *collector) sourceOf(key string) string {
	for k := key; k != ""; {
		if s, ok := c.source[k]; ok {
			return s
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return ""
}

// err returns the errors, ordered by top-level key in the order of
// topKeys (unknown keys after them, environment variables last) and then
// by list index; errors of one list entry stay in the order found.
func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	sort.SliceStable(c.errs, func(i, j int) bool {
		ri, ii := errorRank(c.errs[i].Key)
		rj, ij := errorRank(c.errs[j].Key)
		if ri != rj {
			return ri < rj
		}
		return ii < ij
	})
	return c.errs
}

func errorRank(key string) (rank, index int) {
	top := key
	if i := strings.IndexAny(key, ".["); i >= 0 {
		top = key[:i]
	}
	rank = len(topKeys)
	if strings.HasPrefix(key, EnvPrefix) {
		rank++
	}
	for i, k := range topKeys {
		if k == top {
			rank = i
		}
	}
	index = -1
	if rest, ok := strings.CutPrefix(key[len(top):], "["); ok {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			if n, err := strconv.Atoi(rest[:end]); err == nil {
				index = n
			}
		}
	}
	return rank, index
}
