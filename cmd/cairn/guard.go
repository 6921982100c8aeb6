package main

import (
	"time"

	"github.com/cairn-backup/cairn/config"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/settings"
	"github.com/cairn-backup/cairn/site"
	"github.com/cairn-backup/cairn/sshfs"
)

// catalog is the environments of the config with cairn's own files and
// locks (see package site), made on first use.
func (a *app) catalog() (*site.Catalog, error) {
	if a.sites != nil {
		return a.sites, nil
	}
	dirs, err := settings.FindDirs(nil)
	if err != nil {
		return nil, err
	}
	own, err := settings.Own(a.cfg, a.flags(), nil, dirs)
	if err != nil {
		return nil, err
	}
	a.pool = sshfs.NewPool(sshOptions(a.cfg.SSH))
	c, err := site.New(site.Options{Environments: a.cfg.Environments(), Own: own, LockDir: site.LockDir(dirs.State), StateDir: dirs.State, Log: a.log, Remote: a.pool})
	if err != nil {
		return nil, err
	}
	a.sites = c
	return c, nil
}

// sshOptions are the config's ssh: section, as the pool takes them (it
// was checked when read).
func sshOptions(c config.SSH) sshfs.Options {
	o := sshfs.Options{KnownHosts: c.KnownHosts, Policy: sshfs.HostKeyPolicy(c.HostKeyPolicy), Config: c.Config, Identities: c.IdentityFile}
	o.Timeout, _ = time.ParseDuration(c.Timeout)
	return o
}

// lockRepository takes this machine's lock of the repository at loc
// (see site.Catalog.LockRepository).
func (a *app) lockRepository(loc repo.Location, kind targetlock.Kind) (func(), error) {
	cat, err := a.catalog()
	if err != nil {
		return nil, err
	}
	return cat.LockRepository(repositoryName(loc), kind)
}

// repositoryName names a repository for its lock: a local one by its
// resolved path.
func repositoryName(loc repo.Location) string {
	if loc.S3 == nil {
		if p, err := files.Resolve(loc.Path); err == nil {
			return p
		}
	}
	return loc.String()
}
