package config

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// decoder turns the merged koanf map into a Config. It checks shapes and
// syntax (a string where a string belongs, a size that parses, no unknown
// key); Validate checks meaning (ranges, enumerations, images).
type decoder struct {
	c       *collector
	baseDir string // directory relative image paths are resolved against
}

var (
	topKeys      = []string{"listen", "msize", "cache", "log", "mounts", "security"}
	logKeys      = []string{"level", "format"}
	mountKeys    = []string{"name", "type", "image", "partition", "readonly", "options"}
	securityKeys = []string{"squash", "readonly", "max_connections", "max_fids_per_connection",
		"max_inflight_per_connection", "max_memory_per_connection", "max_memory", "identity", "users"}
	userKeys   = []string{"gid", "groups"}
	squashKeys = []string{"uid", "gid"}
)

func (d *decoder) decode(raw map[string]any, cfg *Config) {
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		if v == nil {
			continue // an empty value is an absent key
		}
		switch k {
		case "listen":
			d.listen(k, v, cfg)
		case "msize":
			if s, ok := d.size(k, v); ok {
				cfg.Msize = s
			}
		case "cache":
			if s, ok := d.size(k, v); ok {
				cfg.Cache = s
			}
		case "log":
			d.log(k, v, &cfg.Log)
		case "mounts":
			d.mounts(k, v, cfg)
		case "security":
			d.security(k, v, &cfg.Security)
		default:
			d.unknown(k, k, topKeys)
		}
	}
}

func (d *decoder) listen(key string, v any, cfg *Config) {
	var items []any
	switch t := v.(type) {
	case string:
		for _, s := range splitList(t) {
			items = append(items, s)
		}
	case []any:
		items = t
	default:
		d.c.add(key, "want a list of listeners, got %s", describe(v))
		return
	}
	cfg.Listen = []Listener{}
	for i, it := range items {
		p := fmt.Sprintf("%s[%d]", key, i)
		s, ok := d.str(p, it)
		if !ok {
			cfg.Listen = append(cfg.Listen, Listener{})
			continue
		}
		l, err := ParseListener(s)
		if err != nil {
			d.c.add(p, "%v", err)
		}
		// On error, a placeholder keeps later indexes right; validation
		// skips it as p already has an error.
		cfg.Listen = append(cfg.Listen, l)
	}
}

func (d *decoder) log(key string, v any, l *Log) {
	m, ok := d.mapOf(key, v)
	if !ok {
		return
	}
	for _, k := range sortedKeys(m) {
		p := key + "." + k
		if m[k] == nil {
			continue
		}
		switch k {
		case "level":
			if s, ok := d.str(p, m[k]); ok {
				l.Level = s
			}
		case "format":
			if s, ok := d.str(p, m[k]); ok {
				l.Format = s
			}
		default:
			d.unknown(p, k, logKeys)
		}
	}
}

func (d *decoder) mounts(key string, v any, cfg *Config) {
	list, ok := v.([]any)
	if !ok {
		d.c.add(key, "want a list of mounts, got %s", describe(v))
		return
	}
	cfg.Mounts = make([]Mount, 0, len(list))
	for i, it := range list {
		p := fmt.Sprintf("%s[%d]", key, i)
		m, ok := d.mapOf(p, it)
		if !ok {
			// Keep the index of every later mount right.
			cfg.Mounts = append(cfg.Mounts, Mount{})
			continue
		}
		cfg.Mounts = append(cfg.Mounts, d.mount(p, m))
	}
}

func (d *decoder) mount(key string, m map[string]any) Mount {
	var mt Mount
	for _, k := range sortedKeys(m) {
		p := key + "." + k
		v := m[k]
		if v == nil {
			continue
		}
		switch k {
		case "name":
			mt.Name, _ = d.str(p, v)
		case "type":
			mt.Type, _ = d.str(p, v)
		case "image":
			if s, ok := d.str(p, v); ok {
				if s != "" && d.baseDir != "" && !filepath.IsAbs(s) {
					s = filepath.Join(d.baseDir, s)
				}
				mt.Image = s
			}
		case "partition":
			mt.Partition, _ = d.partition(p, v)
		case "readonly":
			mt.ReadOnly, _ = d.boolean(p, v)
		case "options":
			mt.Options = d.options(p, v)
		default:
			d.unknown(p, k, mountKeys)
		}
	}
	return mt
}

func (d *decoder) partition(key string, v any) (string, bool) {
	const want = `(want "", "auto" or a positive partition number)`
	switch t := v.(type) {
	case string:
		if t == "" || t == "auto" {
			return t, true
		}
		n, err := strconv.ParseUint(t, 10, 31)
		if err != nil || n == 0 {
			d.c.add(key, "bad partition %q %s", t, want)
			return "", false
		}
		return strconv.FormatUint(n, 10), true
	case bool, []any, map[string]any, map[any]any:
		d.c.add(key, "bad partition: got %s %s", describe(v), want)
		return "", false
	}
	n, ok := integer(v)
	if !ok || n <= 0 || n > math.MaxInt32 {
		d.c.add(key, "bad partition %v %s", v, want)
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

func (d *decoder) options(key string, v any) map[string]string {
	m, ok := d.mapOf(key, v)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		p := key + "." + k
		switch t := m[k].(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = t
		case bool:
			out[k] = strconv.FormatBool(t)
		case float32, float64:
			f := toFloat(t)
			if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				out[k] = strconv.FormatInt(int64(f), 10)
			} else {
				out[k] = strconv.FormatFloat(f, 'g', -1, 64)
			}
		default:
			if n, ok := integer(t); ok {
				out[k] = strconv.FormatInt(n, 10)
			} else if u, ok := t.(uint64); ok {
				out[k] = strconv.FormatUint(u, 10)
			} else {
				d.c.add(p, "want a string, number or bool, got %s", describe(t))
			}
		}
	}
	return out
}

func (d *decoder) security(key string, v any, s *Security) {
	m, ok := d.mapOf(key, v)
	if !ok {
		return
	}
	for _, k := range sortedKeys(m) {
		p := key + "." + k
		v := m[k]
		if v == nil {
			continue
		}
		switch k {
		case "squash":
			d.squash(p, v, s)
		case "readonly":
			if b, ok := d.boolean(p, v); ok {
				s.ReadOnly = b
			}
		case "max_connections":
			if n, ok := d.count(p, v); ok {
				s.MaxConnections = n
			}
		case "max_fids_per_connection":
			if n, ok := d.count(p, v); ok {
				s.MaxFidsPerConnection = n
			}
		case "max_inflight_per_connection":
			if n, ok := d.count(p, v); ok {
				s.MaxInflightPerConnection = n
			}
		case "max_memory_per_connection":
			if n, ok := d.size(p, v); ok {
				s.MaxMemoryPerConnection = n
			}
		case "max_memory":
			if n, ok := d.size(p, v); ok {
				s.MaxMemory = n
			}
		case "identity":
			if str, ok := d.str(p, v); ok {
				s.Identity = strings.ToLower(strings.TrimSpace(str))
			}
		case "users":
			d.users(p, v, s)
		default:
			d.unknown(p, k, securityKeys)
		}
	}
}

func (d *decoder) squash(key string, v any, s *Security) {
	switch t := v.(type) {
	case bool, string:
		b, ok := d.boolean(key, t)
		if !ok {
			return
		}
		if b {
			d.c.add(key, "want false or a map {uid, gid}, got true")
			return
		}
		s.Squash = nil
		return
	}
	switch v.(type) {
	case map[string]any, map[any]any:
	default:
		d.c.add(key, "want false or a map {uid, gid}, got %s", describe(v))
		return
	}
	m, _ := d.mapOf(key, v)
	sq := &Squash{}
	var haveUID, haveGID, bad bool
	for _, k := range sortedKeys(m) {
		p := key + "." + k
		switch k {
		case "uid", "gid":
			n, ok := d.id(p, m[k])
			if !ok {
				bad = true
				continue
			}
			if k == "uid" {
				sq.UID, haveUID = n, true
			} else {
				sq.GID, haveGID = n, true
			}
		default:
			d.unknown(p, k, squashKeys)
			bad = true
		}
	}
	if !haveUID {
		d.c.add(key+".uid", "missing (squash needs both uid and gid)")
		bad = true
	}
	if !haveGID {
		d.c.add(key+".gid", "missing (squash needs both uid and gid)")
		bad = true
	}
	if !bad {
		s.Squash = sq
	}
}

// users decodes security.users: uid -> {gid, groups}.
func (d *decoder) users(key string, v any, s *Security) {
	m, ok := d.mapOf(key, v)
	if !ok {
		return
	}
	s.Users = make(map[uint32]User, len(m))
	for _, k := range sortedKeys(m) {
		p := key + "." + k
		uid, ok := d.id(p, k)
		if !ok {
			continue
		}
		um, ok := d.mapOf(p, m[k])
		if !ok {
			continue
		}
		var u User
		haveGID := false
		for _, uk := range sortedKeys(um) {
			up := p + "." + uk
			switch uk {
			case "gid":
				u.GID, haveGID = d.id(up, um[uk])
			case "groups":
				list, ok := um[uk].([]any)
				if !ok {
					d.c.add(up, "want a list of gids, got %s", describe(um[uk]))
					continue
				}
				for i, g := range list {
					if gid, ok := d.id(fmt.Sprintf("%s[%d]", up, i), g); ok {
						u.Groups = append(u.Groups, gid)
					}
				}
			default:
				d.unknown(up, uk, userKeys)
			}
		}
		if !haveGID {
			d.c.add(p+".gid", "missing (each user needs its primary gid)")
			continue
		}
		s.Users[uid] = u
	}
}

// id decodes a uid or gid: 0 .. 4294967294 (4294967295 is "no id").
func (d *decoder) id(key string, v any) (uint32, bool) {
	n, ok := d.intIn(key, v, 0, math.MaxUint32-1, "an id")
	return uint32(n), ok
}

// count decodes a limit that must be positive.
func (d *decoder) count(key string, v any) (int, bool) {
	n, ok := d.intIn(key, v, 1, math.MaxInt32, "a positive integer")
	return int(n), ok
}

func (d *decoder) intIn(key string, v any, lo, hi int64, what string) (int64, bool) {
	var n int64
	switch t := v.(type) {
	case string:
		var err error
		n, err = strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			d.c.add(key, "want %s, got %q", what, t)
			return 0, false
		}
	default:
		var ok bool
		n, ok = integer(v)
		if !ok {
			d.c.add(key, "want %s, got %s", what, describe(v))
			return 0, false
		}
	}
	if n < lo || n > hi {
		d.c.add(key, "%d out of range (want %s in %d .. %d)", n, what, lo, hi)
		return 0, false
	}
	return n, true
}

func (d *decoder) size(key string, v any) (Size, bool) {
	if s, ok := v.(string); ok {
		n, err := ParseSize(s)
		if err != nil {
			d.c.add(key, "%v", err)
			return 0, false
		}
		return n, true
	}
	n, ok := integer(v)
	if !ok {
		d.c.add(key, "want a size (an integer or a string such as \"64KiB\"), got %s", describe(v))
		return 0, false
	}
	if n < 0 {
		d.c.add(key, "bad size %d (negative)", n)
		return 0, false
	}
	return Size(n), true
}

func (d *decoder) str(key string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.c.add(key, "want a string, got %s", describe(v))
	}
	return s, ok
}

func (d *decoder) boolean(key string, v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(t))
		if err == nil {
			return b, true
		}
		d.c.add(key, "want true or false, got %q", t)
		return false, false
	}
	d.c.add(key, "want true or false, got %s", describe(v))
	return false, false
}

func (d *decoder) mapOf(key string, v any) (map[string]any, bool) {
	switch t := v.(type) {
	case map[string]any:
		return t, true
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, v := range t {
			m[fmt.Sprint(k)] = v
		}
		return m, true
	}
	d.c.add(key, "want a map, got %s", describe(v))
	return nil, false
}

// unknown reports the unknown key name at path, suggesting a near known
// key.
func (d *decoder) unknown(path, name string, known []string) {
	switch best, dist := nearest(name, known); {
	case dist <= 1 || dist == 2 && len(name) >= 6:
		d.c.add(path, "unknown key (did you mean %q?)", best)
	case strings.Contains(name, "."):
		d.c.add(path, "unknown key (a key may not contain \".\"; nest it as a map instead)")
	default:
		d.c.add(path, "unknown key (want one of %s)", strings.Join(known, ", "))
	}
}

// integer converts the integral numbers the parsers produce (int, int64,
// uint64 from YAML and TOML; float64 from JSON) to int64.
func integer(v any) (int64, bool) {
	switch t := v.(type) {
	case int:
		return int64(t), true
	case int8:
		return int64(t), true
	case int16:
		return int64(t), true
	case int32:
		return int64(t), true
	case int64:
		return t, true
	case uint:
		return int64(t), uint64(t) <= math.MaxInt64
	case uint8:
		return int64(t), true
	case uint16:
		return int64(t), true
	case uint32:
		return int64(t), true
	case uint64:
		return int64(t), t <= math.MaxInt64
	case float32, float64:
		f := toFloat(t)
		if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func toFloat(v any) float64 {
	switch t := v.(type) {
	case float32:
		return float64(t)
	case float64:
		return t
	}
	return math.NaN()
}

// describe names a value in an error message: strings quoted, numbers and
// booleans as written, lists and maps by kind.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "nothing"
	case string:
		return strconv.Quote(t)
	case bool:
		return "the boolean " + strconv.FormatBool(t)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a map"
	}
	if _, ok := integer(v); ok {
		return fmt.Sprintf("the number %v", v)
	}
	switch v.(type) {
	case float32, float64, uint64, uint:
		return fmt.Sprintf("the number %v", v)
	}
	return fmt.Sprintf("a %T value", v)
}

// splitList splits a comma-separated list, trimming spaces around items
// and dropping empty ones.
func splitList(s string) []string {
	var out []string
	for _, it := range strings.Split(s, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nearest returns the known word closest to w in edit distance.
func nearest(w string, known []string) (string, int) {
	best, bestD := "", math.MaxInt
	for _, k := range known {
		if d := editDistance(w, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best, bestD
}

// editDistance is the optimal string alignment distance (Levenshtein with
// transpositions of neighbours), "infinite" for long inputs.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
