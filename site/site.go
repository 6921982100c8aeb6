// Package site knows the environments cairn keeps and the rules that
// keep its snapshots and restores safe: what an environment's snapshot
// holds (its request), which environments a directory belongs to and
// which of them are protected, cairn's own files that nothing ever
// snapshots, overwrites or deletes, and the per-target locks that keep a
// restore from running beside another restore or a snapshot of the same
// files. Asking a person to confirm a protected target is the caller's
// (the CLI's prompt); knowing that it must be asked is this package's.
package site

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/webapp"
)

// Options describe a Catalog.
type Options struct {
	// Environments are every environment of the config.
	Environments []*cairn.Environment
	// Own are cairn's own files and directories: repositories, keys,
	// state, password and config files (any spelling; they are
	// resolved).
	Own []string
	// LockDir holds the target locks (see LockDir).
	LockDir string
	// StateDir holds what the catalog records between runs (the
	// directories a restore made).
	StateDir string
	// Log, if set, takes what is worth knowing but not worth stopping
	// for.
	Log *slog.Logger
	// Remote reaches environments' files on other hosts (ssh://); nil
	// refuses them.
	Remote Remote
}

// Remote reaches environments on other hosts (package sshfs's Pool does).
type Remote interface {
	files.Remote
	database.Tunnels
	// Shell runs script with sh on l's host, reading it from stdin (so
	// nothing in it shows in a process's arguments there), and returns
	// what it wrote to stdout and stderr.
	Shell(ctx context.Context, l cairn.Location, script string) ([]byte, error)
}

// Catalog is the environments cairn keeps and the rules around them. It
// is safe for concurrent use.
type Catalog struct {
	envs    []*cairn.Environment
	own     []string // resolved, sorted
	lockDir string
	records string
	log     *slog.Logger
	remote  Remote
}

// New makes a catalog; it fails only if one of cairn's own paths cannot
// be resolved.
func New(o Options) (*Catalog, error) {
	c := &Catalog{envs: o.Environments, lockDir: o.LockDir, records: filepath.Join(o.StateDir, "restored"), log: o.Log, remote: o.Remote}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range o.Own {
		r, err := files.Resolve(p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", p, err)
		}
		c.own = append(c.own, r)
	}
	sort.Strings(c.own)
	return c, nil
}

// Environments lists the catalog's environments.
func (c *Catalog) Environments() []*cairn.Environment { return c.envs }

// Request is the snapshot of an environment: its files (on another host,
// they are reached now), its databases (none with noDB), and the
// application found in its files.
func (c *Catalog) Request(ctx context.Context, e *cairn.Environment, exclude []string, noDB bool) (cairn.SnapshotRequest, error) {
	if e.Files.Path == "" {
		return cairn.SnapshotRequest{}, fmt.Errorf("%s has no files:. Try: add files: /path/to/site to it in the config", e.Name())
	}
	req := cairn.SnapshotRequest{Site: e.Site, Environment: e.Env, URL: e.URL, Path: e.Files.Path,
		Exclude: append(append([]string(nil), e.Exclude...), exclude...)}
	if !e.Files.IsLocal() {
		t, err := c.OpenRemote(ctx, e.Files, false)
		if err != nil {
			return req, fmt.Errorf("%s: %w", e.Name(), err)
		}
		files.Prefetch(ctx, t) // listed while the repository opens
		req.Path, req.Tree = e.Files.String(), t
	}
	c.detect(ctx, &req)
	if len(e.Nodes) > 1 {
		drift, err := c.drift(ctx, e, req.Exclude)
		if err != nil {
			return req, fmt.Errorf("%s: %w", e.Name(), err)
		}
		req.Warnings = append(req.Warnings, drift...)
	}
	if noDB {
		return req, nil
	}
	return c.withDatabases(req, e.Databases)
}

// RequestDir is the snapshot of a directory that is no environment's: it
// is named after the directory and host, and holds the database the
// application in it names in its own configuration (none with noDB).
func (c *Catalog) RequestDir(dir, host string, exclude []string, noDB bool) (cairn.SnapshotRequest, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return cairn.SnapshotRequest{}, err
	}
	req := cairn.SnapshotRequest{Site: SafeName(filepath.Base(abs)), Environment: SafeName(host), Path: dir, Exclude: exclude}
	found := c.detect(context.Background(), &req) // a local directory's
	if found == nil || noDB {
		return req, nil
	}
	c.log.Info("application found", "app", found.Name, "version", found.Version, "config", found.Config, "databases", len(found.Databases))
	var dsns []cairn.DSN
	for _, d := range found.Databases {
		dsns = append(dsns, cairn.NewDSN(d))
	}
	return c.withDatabases(req, dsns)
}

// drift compares an environment's web nodes' files (see Drift).
func (c *Catalog) drift(ctx context.Context, e *cairn.Environment, exclude []string) ([]string, error) {
	excl, err := pattern.Compile(exclude...)
	if err != nil {
		return nil, fmt.Errorf("%w: exclude: %v", cairn.ErrInvalidArgument, err)
	}
	var trees []cairn.Tree
	var unreachable []string
	for i, l := range e.Nodes {
		var t cairn.Tree
		if l.IsLocal() {
			lt, lerr := files.OpenLocal(l.Path)
			if lerr == nil {
				defer lt.Close()
			}
			t, err = lt, lerr
		} else {
			t, err = c.OpenRemote(ctx, l, false)
			if err == nil {
				files.Prefetch(ctx, t) // the nodes are listed at once
			}
		}
		switch {
		case err != nil && i == 0:
			return nil, err
		case err != nil:
			// A node that cannot be reached stops no snapshot of the
			// first: it is said.
			unreachable = append(unreachable, fmt.Sprintf("the web node %s could not be compared with the others: %v", l, err))
		default:
			trees = append(trees, t)
		}
	}
	drift, err := Drift(ctx, trees, excl)
	return append(unreachable, drift...), err
}

// Warm opens the trees of e's nodes on other hosts ahead, in the
// background, for a restore or clone onto the whole of e that has other
// work to do first (see files.Warmer).
func (c *Catalog) Warm(ctx context.Context, e *cairn.Environment) {
	w, ok := c.remote.(files.Warmer)
	if !ok {
		return
	}
	for _, l := range e.Nodes {
		if !l.IsLocal() {
			w.Warm(ctx, l)
		}
	}
}

// OpenRemote opens the tree at l, on another host.
func (c *Catalog) OpenRemote(ctx context.Context, l cairn.Location, create bool) (files.Target, error) {
	if c.remote == nil {
		return nil, fmt.Errorf("%w: %s is on another host, and this run reaches none", cairn.ErrInvalidArgument, l)
	}
	return c.remote.OpenTree(ctx, l, create)
}

// OpenDatabase opens the database dsn names (see database.Open), reaching
// one behind an SSH host (?ssh=) through the catalog's Remote.
func (c *Catalog) OpenDatabase(dsn cairn.DSN, o database.Options) (cairn.Database, error) {
	if c.remote != nil {
		o.Tunnels = c.remote
	}
	return database.Open(dsn, o)
}

// Shell is a shell on l's host (see Remote.Shell), for actions.
func (c *Catalog) Shell(l cairn.Location) func(ctx context.Context, script string) ([]byte, error) {
	return func(ctx context.Context, script string) ([]byte, error) {
		if c.remote == nil {
			return nil, fmt.Errorf("%w: %s is on another host, and this run reaches none", cairn.ErrInvalidArgument, l)
		}
		return c.remote.Shell(ctx, l, script)
	}
}

// detect records the application in req's tree, if it knows it.
func (c *Catalog) detect(ctx context.Context, req *cairn.SnapshotRequest) *webapp.App {
	var found *webapp.App
	var err error
	if req.Tree != nil {
		found, err = webapp.DetectTree(ctx, req.Tree)
	} else {
		found, err = webapp.Detect(req.Path)
	}
	if err != nil {
		if !errors.Is(err, webapp.ErrUnknown) {
			c.log.Warn("reading the application's settings failed", "err", err)
		}
		return nil
	}
	req.App = &cairn.AppInfo{Name: found.Name, Version: found.Version, Components: found.Components}
	return found
}

func (c *Catalog) withDatabases(req cairn.SnapshotRequest, dsns []cairn.DSN) (cairn.SnapshotRequest, error) {
	for _, dsn := range dsns {
		db, err := c.OpenDatabase(dsn, database.Options{})
		if err != nil {
			return req, err
		}
		req.Databases = append(req.Databases, db)
	}
	return req, nil
}

// Snapshotter stores snapshots (package repo). Snapshot stores req's tree
// and dumps and returns the snapshot recorded; on any error nothing is
// listed, as no partial snapshot ever is.
type Snapshotter interface {
	Snapshot(ctx context.Context, req cairn.SnapshotRequest, p cairn.Progress) (*cairn.Snapshot, error)
}

// Snapshot takes req's snapshot with cairn's own files left out, while no
// restore writes the tree (it waits for none: it fails with
// cairn.ErrLocked).
func (c *Catalog) Snapshot(ctx context.Context, to Snapshotter, req cairn.SnapshotRequest, p cairn.Progress) (*cairn.Snapshot, error) {
	req.Protect = c.own
	for _, id := range c.OwnIDs() {
		req.ProtectIDs = append(req.ProtectIDs, [2]uint64{id.Dev, id.Ino})
	}
	var dir string
	var loc cairn.Location
	var err error
	if req.Tree != nil { // another host's tree is locked by its location
		if loc, err = cairn.ParseLocation(req.Path, ""); err != nil {
			return nil, err
		}
		dir = loc.Key()
	} else if dir, err = files.Resolve(req.Path); err != nil {
		return nil, err
	}
	unlock, err := c.Lock(dir, targetlock.Read)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A lost connection to the files' host is a blip more often than
	// not: the snapshot is taken again on a new one, twice at most.
	for attempt := 1; ; attempt++ {
		snap, err := to.Snapshot(ctx, req, p)
		if err == nil || req.Tree == nil || !errors.Is(err, files.ErrConnectionLost) || attempt == Attempts || ctx.Err() != nil {
			return snap, err
		}
		c.log.Info("connection lost; taking the snapshot anew", "err", err, "attempt", attempt+1)
		req.Warnings = append(req.Warnings, fmt.Sprintf("attempt %d lost its connection (%v); the snapshot was taken anew on a new one (attempt %d of %d)", attempt, err, attempt+1, Attempts))
		if err := Backoff(ctx, attempt); err != nil {
			return nil, err
		}
		t, oerr := c.OpenRemote(ctx, loc, false)
		if oerr != nil {
			return nil, fmt.Errorf("%w; connecting again failed too: %v", err, oerr)
		}
		req.Tree = t
	}
}

// Attempts is how many times an operation on another host's files is
// tried when its connection is lost.
const Attempts = 3

// Backoff waits before attempt+1 of an operation whose connection was
// lost: 2 s, then 4 s (or until ctx is done).
func Backoff(ctx context.Context, attempt int) error {
	select {
	case <-time.After(time.Duration(1<<attempt) * time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SafeName makes s usable as a site or environment name.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	out := strings.TrimLeft(b.String(), ".-_")
	if out == "" {
		return "site"
	}
	return out
}
