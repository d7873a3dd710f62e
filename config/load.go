package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// MaxFileSize is the largest configuration file Load reads.
const MaxFileSize = 1 << 20

// EnvPrefix starts the name of every environment variable Load reads.
const EnvPrefix = "RUMP9P_"

// EnvConfig is the environment variable reserved for the command to name
// the configuration file; Load ignores it.
const EnvConfig = EnvPrefix + "CONFIG"

// LoadOptions says where Load finds the configuration.
type LoadOptions struct {
	// File is the configuration file, or "" for none (then the default
	// mounts apply). Its format comes from its extension: .yaml, .yml,
	// .toml or .json (case-insensitive).
	File string
	// Env is the environment, as os.Environ returns it; normally
	// os.Environ(). nil reads no environment.
	Env []string
	// Flags is a parsed FlagSet on which RegisterFlags defined the flags;
	// only flags set explicitly override, each by its name (a foreign
	// FlagSet's --msize is read as ours). nil reads no flags.
	Flags *pflag.FlagSet
}

// envKeys are the keys settable from the environment. The variable of a
// key is EnvPrefix followed by the key path in upper case with "." turned
// into "_": security.max_connections is RUMP9P_SECURITY_MAX_CONNECTIONS.
// Variables are matched against this whole list, never split at "_", so
// keys that contain "_" are unambiguous (TestEnvNamesUnique checks that no
// two keys give one name).
var envKeys = []string{
	"listen",
	"msize",
	"cache",
	"log.level",
	"log.format",
	"security.squash",
	"security.squash.uid",
	"security.squash.gid",
	"security.readonly",
	"security.max_connections",
	"security.max_fids_per_connection",
	"security.max_inflight_per_connection",
	"security.max_memory_per_connection",
	"security.max_memory",
	"security.identity",
}

// EnvName returns the environment variable that sets the key path.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

var envByName = func() map[string]string {
	m := map[string]string{}
	for _, k := range envKeys {
		m[EnvName(k)] = k
	}
	return m
}()

// flagKeys maps each flag RegisterFlags defines to the key it sets.
var flagKeys = map[string]string{
	"listen":     "listen",
	"msize":      "msize",
	"cache":      "cache",
	"log-level":  "log.level",
	"log-format": "log.format",
	"readonly":   "security.readonly",
}

// RegisterFlags defines on fs the flags Load reads: --listen (repeatable,
// each value may be a comma-separated list), --msize, --cache,
// --log-level, --log-format and --readonly (security.readonly). A flag
// overrides the file and the environment only when set on the command
// line.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.Var(&listFlag{}, "listen", "listen on `ADDR`: tcp:HOST:PORT, unix:PATH or stdio; repeatable or comma-separated (default "+DefaultListen+")")
	fs.String("msize", "", "largest 9P message `SIZE`, such as 512KiB (default 1MiB)")
	fs.String("cache", "", "buffer cache `SIZE` of each image mount (default 64MiB)")
	fs.String("log-level", "", "log `LEVEL`: debug, info, warn or error (default info)")
	fs.String("log-format", "", "log `FORMAT`: text or json (default text)")
	fs.Bool("readonly", false, "serve every mount read-only (security.readonly)")
}

// listFlag collects repeated, comma-separated --listen values.
type listFlag struct{ items []string }

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.items, ",")
}

func (l *listFlag) Set(s string) error {
	l.items = append(l.items, splitList(s)...)
	return nil
}

// Type names the value in pflag's usage lines.
func (l *listFlag) Type() string { return "list" }

// source is a configuration file's contents.
type source struct {
	name    string // for error messages
	data    []byte
	parser  koanf.Parser
	baseDir string
}

// Load builds the configuration from the defaults, opts.File, opts.Env and
// opts.Flags, in increasing precedence, and validates it as
// [Config.Validate] does (reading the images). It returns the Config, or
// nil and an error: a plain error naming the file when the file cannot be
// read or parsed or has an unknown extension, else an [Errors] listing
// every problem found.
func Load(opts LoadOptions) (*Config, error) {
	var src *source
	if opts.File != "" {
		ext := filepath.Ext(opts.File)
		p, err := parserFor(ext)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", opts.File, err)
		}
		data, err := readFile(opts.File)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		src = &source{name: opts.File, data: data, parser: p, baseDir: filepath.Dir(opts.File)}
	}
	return load(src, opts.Env, opts.Flags)
}

func parserFor(ext string) (koanf.Parser, error) {
	switch strings.ToLower(ext) {
	case ".yaml", ".yml":
		return yaml.Parser(), nil
	case ".toml":
		return toml.Parser(), nil
	case ".json":
		return json.Parser(), nil
	}
	if ext == "" {
		return nil, errors.New("no file name extension (want .yaml, .yml, .toml or .json)")
	}
	return nil, fmt.Errorf("unknown file name extension %q (want .yaml, .yml, .toml or .json)", ext)
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, MaxFileSize)
	}
	return data, nil
}

func load(src *source, environ []string, fs *pflag.FlagSet) (*Config, error) {
	k := koanf.New(".")
	cfg := Defaults()
	baseDir := ""
	if src != nil {
		if err := parse(k, src); err != nil {
			return nil, fmt.Errorf("config: %s: %w", src.name, err)
		}
		cfg.Mounts = nil
		baseDir = src.baseDir
	}

	col := newCollector()
	if err := loadEnv(k, environ, col); err != nil {
		return nil, err
	}
	if err := loadFlags(k, fs, col); err != nil {
		return nil, err
	}

	d := decoder{c: col, baseDir: baseDir}
	d.decode(k.Raw(), cfg)
	validate(cfg, col)
	if err := col.err(); err != nil {
		return nil, err
	}
	cfg.Log.Level = strings.ToLower(cfg.Log.Level)
	cfg.Log.Format = strings.ToLower(cfg.Log.Format)
	return cfg, nil
}

// maxDepth bounds the nesting of maps and lists in a file. The schema
// needs 4 (mounts[i].options.key); the bound keeps koanf's key flattening,
// which is quadratic in the depth, cheap on hostile input.
const maxDepth = 16

// parse loads the file into k. A panic in a third-party parser on hostile
// input becomes an error.
func parse(k *koanf.Koanf, src *source) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("parser failed: %v", p)
		}
	}()
	mp, err := src.parser.Unmarshal(src.data)
	if err != nil {
		return err
	}
	if tooDeep(mp, maxDepth) {
		return fmt.Errorf("maps and lists nested deeper than %d levels", maxDepth)
	}
	// Delimiter "": the map is already nested; a key holding "." stays
	// one key (and is reported as unknown).
	return k.Load(confmap.Provider(mp, ""), nil)
}

// tooDeep reports whether v nests maps and lists deeper than limit.
func tooDeep(v any, limit int) bool {
	if limit < 0 {
		return true
	}
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			if tooDeep(e, limit-1) {
				return true
			}
		}
	case map[any]any:
		for _, e := range t {
			if tooDeep(e, limit-1) {
				return true
			}
		}
	case []any:
		for _, e := range t {
			if tooDeep(e, limit-1) {
				return true
			}
		}
	}
	return false
}

// loadEnv loads the RUMP9P_* variables of environ into k. A variable
// within two edits of a known name (a typo), and RUMP9P_SECURITY_SQUASH set together with
// RUMP9P_SECURITY_SQUASH_UID or _GID, are errors in col. A variable set to
// "" is ignored.
func loadEnv(k *koanf.Koanf, environ []string, col *collector) error {
	if len(environ) == 0 {
		return nil
	}
	seen := map[string]string{} // key -> variable
	var unknown []string
	transform := func(name, value string) (string, any) {
		upper := strings.ToUpper(name)
		if upper == EnvConfig {
			return "", nil
		}
		key, ok := envByName[upper]
		if !ok {
			unknown = append(unknown, name)
			return "", nil
		}
		if value == "" {
			return "", nil
		}
		seen[key] = name
		if key == "listen" {
			items := []any{}
			for _, s := range splitList(value) {
				items = append(items, s)
			}
			return key, items
		}
		return key, value
	}
	p := env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		TransformFunc: transform,
		EnvironFunc:   func() []string { return environ },
	})
	if err := k.Load(p, nil); err != nil {
		return fmt.Errorf("config: environment: %w", err)
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		// A near miss is a typo worth stopping for; other RUMP9P_ names
		// belong to other tools (test harnesses, wrappers) and are ignored.
		if best, d := nearest(strings.ToUpper(name), envNames()); d <= 2 {
			col.add(name, "unknown environment variable (did you mean %s?)", best)
		}
	}
	if v, ok := seen["security.squash"]; ok {
		for _, sub := range []string{"security.squash.uid", "security.squash.gid"} {
			if w, ok := seen[sub]; ok {
				col.add(sub, "%s and %s both set (unset one)", v, w)
			}
		}
	}
	for key, name := range seen {
		col.source[key] = name
	}
	return nil
}

func envNames() []string {
	names := make([]string, len(envKeys))
	for i, k := range envKeys {
		names[i] = EnvName(k)
	}
	return names
}

// loadFlags loads into k, through koanf's posflag provider, the flags of
// fs that RegisterFlags defined and that were set on the command line.
func loadFlags(k *koanf.Koanf, fs *pflag.FlagSet, col *collector) error {
	if fs == nil {
		return nil
	}
	pick := func(f *pflag.Flag) (string, any) {
		key, ok := flagKeys[f.Name]
		if !ok || !f.Changed {
			return "", nil // not ours, or a default: the lower layers stand
		}
		col.source[key] = "--" + f.Name
		if key != "listen" {
			return key, f.Value.String()
		}
		var items []string
		if lf, ok := f.Value.(*listFlag); ok {
			items = lf.items
		} else {
			items = splitList(f.Value.String())
		}
		list := make([]any, len(items))
		for i, s := range items {
			list[i] = s
		}
		return key, list
	}
	if err := k.Load(posflag.ProviderWithFlag(fs, ".", k, pick), nil); err != nil {
		return fmt.Errorf("config: flags: %w", err)
	}
	return nil
}
