package main

import (
	"fmt"
	"log/slog"

	"github.com/rump9p/rump9p/config"
	"github.com/rump9p/rump9p/rumpcore"
)

// mountSpec turns a configured mount into the kernel's spec.
func mountSpec(m config.Mount, cfg *config.Config) rumpcore.MountSpec {
	return rumpcore.MountSpec{
		Name:       m.Name,
		Type:       m.Type,
		Image:      m.Image,
		Partition:  m.Partition,
		ReadOnly:   m.ReadOnly || cfg.Security.ReadOnly,
		CacheBytes: int64(cfg.Cache),
		Options:    m.Options,
	}
}

// bootKernel boots a kernel and mounts every configured mount at /NAME,
// as serve and mount do. It logs what fails and returns the error; on
// error no kernel is left running.
func bootKernel(cfg *config.Config, log *slog.Logger) (*rumpcore.Kernel, map[string]config.Mount, error) {
	k, err := rumpcore.Init(rumpcore.Options{Logger: log, CacheBytes: int64(cfg.Cache)})
	if err != nil {
		log.Error("boot", "err", err)
		return nil, nil, err
	}
	mounted := map[string]config.Mount{}
	for _, m := range cfg.Mounts {
		if err := k.Mount("/"+m.Name, mountSpec(m, cfg)); err != nil {
			log.Error("mount failed", "mount", m.Name, "err", err)
			k.Shutdown()
			return nil, nil, fmt.Errorf("mount %s: %w", m.Name, err)
		}
		mounted[m.Name] = m
	}
	return k, mounted, nil
}
