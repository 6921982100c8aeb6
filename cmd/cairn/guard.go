package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/site"
)

// ownPaths are cairn's own files, resolved: the local repository, the key
// files, the state directory (kopia's config and caches, locks, records)
// and the password file. They are never snapshotted, overwritten or
// deleted.
func (a *app) ownPaths() ([]string, error) {
	var raw []string
	// Every repository this run knows of, not only the one it opens.
	if loc, _, err := a.repoLocation(); err == nil && loc.Path != "" {
		raw = append(raw, loc.Path)
	}
	if p := a.cfg.Repository.Path; p != "" {
		raw = append(raw, a.cfg.RepositoryPath())
	}
	if p := os.Getenv("CAIRN_REPOSITORY"); p != "" && !strings.Contains(p, "://") {
		raw = append(raw, p)
	}
	if d, err := dataDir(); err == nil {
		raw = append(raw, filepath.Join(d, "repository"))
	}
	cfgDir, err := configDir()
	if err != nil {
		return nil, err
	}
	state, err := stateDir()
	if err != nil {
		return nil, err
	}
	raw = append(raw, filepath.Join(cfgDir, "keys"), state)
	for _, f := range []string{os.Getenv("CAIRN_PASSWORD_FILE"), a.cfg.PasswordFilePath(), a.cfg.File} {
		if f != "" {
			raw = append(raw, f)
		}
	}
	out := make([]string, 0, len(raw))
	for _, p := range raw {
		r, err := files.Resolve(p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", p, err)
		}
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// catalog is the environments of the config with cairn's own files and
// locks (see package site), made on first use.
func (a *app) catalog() (*site.Catalog, error) {
	if a.sites != nil {
		return a.sites, nil
	}
	own, err := a.ownPaths()
	if err != nil {
		return nil, err
	}
	state, err := stateDir()
	if err != nil {
		return nil, err
	}
	c, err := site.New(site.Options{Environments: a.cfg.Environments(), Own: own, LockDir: site.LockDir(state), StateDir: state, Log: a.log})
	if err != nil {
		return nil, err
	}
	a.sites = c
	return c, nil
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
