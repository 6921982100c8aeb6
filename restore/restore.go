// Package restore puts a snapshot back: onto its own environment (a
// rollback), onto another environment (its data rewritten to the target's
// URL and files path, its configuration pointed at the target's database),
// or onto a directory. Plan works out what a restore will do and what
// must be confirmed first (protected environments); Run does it: the
// databases first, each loaded beside the target, checked and swapped in,
// then the files, only what differs, then the copy's configuration and
// its after_restore actions. Everything it does and plans goes to a
// cairn.Reporter; it writes to no stream of its own.
//
// A restore never writes outside its target, nor into cairn's own files
// (see package site and files.Local); a failure leaves each database
// either as it was or swapped in whole, and says which.
package restore

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/rewrite"
	"github.com/cairn-backup/cairn/site"
)

// Store is what a restore reads of the repository.
type Store interface {
	// Root opens a snapshot's file tree.
	Root(ctx context.Context, s *cairn.Snapshot) (cairn.Node, error)
	// HardLinks are the groups of paths of the snapshot that name one
	// file.
	HardLinks(ctx context.Context, s *cairn.Snapshot) ([][]string, error)
	// Tables are the stats recorded for one of the snapshot's databases.
	Tables(ctx context.Context, s *cairn.Snapshot, name string) ([]cairn.TableStat, error)
	// OpenDump streams one of the snapshot's database dumps.
	OpenDump(ctx context.Context, s *cairn.Snapshot, name string) (io.ReadCloser, error)
}

// PartsStore is a Store that can stream a dump taken in parts (see
// cairn.PartedDumper) by its parts, for a database that loads them at once.
type PartsStore interface {
	OpenDumpParts(ctx context.Context, s *cairn.Snapshot, name string) ([]io.ReadCloser, error)
}

// Invalidator forgets what is known of a target database's content (a
// clone's records of what it loaded): a restore calls it before it
// replaces a database, so that nothing later takes the database for what
// it held before.
type Invalidator interface {
	Invalidate(ctx context.Context, db cairn.Database)
}

// Engine restores snapshots from one repository.
type Engine struct {
	Store Store
	Sites *site.Catalog
	// Invalidator, if set, is told of every database about to be
	// replaced.
	Invalidator Invalidator
	Log         *slog.Logger
}

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// Only limits a restore to the files or to the databases.
type Only string

const (
	All       Only = ""
	Files     Only = "files"
	Databases Only = "db"
)

// Options tune a restore.
type Options struct {
	// Path restores one file or directory of the snapshot only (no
	// databases, configuration nor actions, unless Only is Databases).
	Path string
	Only Only
	// Keep are gitignore-style patterns of the target's paths never
	// written nor deleted, beyond the environment's exclude: and
	// preserve:.
	Keep []string
	// Delete removes what the snapshot lacks from a directory target
	// (always done in an environment's files, and in a directory an
	// earlier restore made).
	Delete bool
	// Databases are the target databases, by position or NAME=DSN: they
	// replace the target environment's.
	Databases []string
	DryRun    bool
	Workers   int // files written at once (0: 8)
	// TerminateSessions and LockWait: see database.Options.
	TerminateSessions bool
	LockWait          time.Duration
}

// Target is where a restore writes: an environment, or a directory.
type Target struct {
	Env *cairn.Environment // nil for a directory
	Dir string             // the directory, when Env is nil
}

// Plan is what a restore will do.
type Plan struct {
	Snapshot *cairn.Snapshot
	Env      *cairn.Environment // nil for a directory
	Dir      string             // the files' directory, as named
	Resolved string             // the same, links resolved; another host's: its Location's Key
	// Remote is the files' location when they are on another host (its
	// Host is "" otherwise).
	Remote cairn.Location
	// Nodes are every copy of the files when the environment has several
	// (web nodes); the first is Dir, Resolved and Remote. Nil for one.
	Nodes []Node
	// Keep are the patterns of paths never written nor deleted.
	Keep []string
	// Delete: what the snapshot lacks is removed from the files.
	Delete bool
	// Pairs rewrite the databases on their way in (the source's URL and
	// files path become the target's).
	Pairs     []rewrite.Pair
	Databases []Load
	Actions   []cairn.Action
	// Protected are the protected environments the restore writes: each
	// must be confirmed before Run.
	Protected []*cairn.Environment
	// Notices are said when the restore runs.
	Notices []string
	Options Options
}

// Load is one database of the snapshot and the database it replaces.
type Load struct {
	From cairn.DatabaseInfo
	To   cairn.Database
}

// Plan works out a restore of s onto t: nothing is changed.
func (e *Engine) Plan(ctx context.Context, s *cairn.Snapshot, t Target, o Options) (*Plan, error) {
	switch o.Only {
	case All, Files, Databases:
	default:
		return nil, fmt.Errorf("%w: only files or db can be restored alone, not %q", cairn.ErrInvalidArgument, o.Only)
	}
	if err := restorable(s, o); err != nil {
		return nil, err
	}
	p := &Plan{Snapshot: s, Env: t.Env, Dir: t.Dir, Options: o}
	if t.Env != nil {
		if err := e.planEnv(p, t.Env); err != nil {
			return nil, err
		}
	} else if err := e.planDir(p); err != nil {
		return nil, err
	}
	p.Keep = append(p.Keep, o.Keep...)
	var err error
	if p.Databases, err = e.planDatabases(p); err != nil {
		return nil, err
	}
	// A database named by Options.Databases may be a protected one's.
	p.Protected = append(p.Protected, e.Sites.ProtectedDatabases(p.targets(), p.Protected)...)
	return p, nil
}

// planEnv plans a restore onto an environment's files and databases.
func (e *Engine) planEnv(p *Plan, env *cairn.Environment) error {
	if env.Files.Path == "" {
		return fmt.Errorf("%s has no files:. Try: add files: to it in the config, or restore to a directory with --to DIR", env.Name())
	}
	p.Delete, p.Actions = true, env.AfterRestore
	p.Keep = append(append([]string(nil), env.Exclude...), env.Preserve...)
	locs := env.Nodes
	if len(locs) == 0 {
		locs = []cairn.Location{env.Files}
	}
	for _, l := range locs {
		n := Node{Dir: l.String(), Remote: l, Resolved: l.Key()}
		if l.IsLocal() {
			n.Remote = cairn.Location{}
			dir, err := files.Resolve(l.Path)
			if err != nil {
				return err
			}
			n.Dir, n.Resolved = l.Path, dir
		}
		for _, pe := range e.Sites.ProtectedAt(n.Resolved) {
			if !slices.Contains(p.Protected, pe) {
				p.Protected = append(p.Protected, pe)
			}
		}
		p.Nodes = append(p.Nodes, n)
	}
	p.Dir, p.Resolved, p.Remote = p.Nodes[0].Dir, p.Nodes[0].Resolved, p.Nodes[0].Remote
	if len(p.Nodes) == 1 {
		p.Nodes = nil
	}
	if env.Name() != p.Snapshot.Name() {
		p.Pairs = append(movePairs(p.Snapshot, env.URL, env.Files.Path), replacePairs(env.Replace)...)
	}
	return nil
}

// planDir applies to a directory what belongs to the environments it
// writes: a directory that is an environment's files is restored as those
// files are (its keep rules, deletions), and one that holds or lies in a
// protected environment's files needs that environment's confirmation.
func (e *Engine) planDir(p *Plan) error {
	// What the source never captured must not be deleted either.
	for _, env := range e.Sites.Environments() {
		if env.Name() == p.Snapshot.Name() {
			p.Keep = append(p.Keep, env.Exclude...)
		}
	}
	var dir string
	if l, err := cairn.ParseLocation(p.Dir, "/"); err == nil && !l.IsLocal() {
		// A directory on another host (--to ssh://host/path).
		p.Dir, p.Remote, dir = l.String(), l, l.Key()
	} else if dir, err = files.Resolve(p.Dir); err != nil {
		return err
	}
	p.Resolved = dir
	exact, _ := e.Sites.At(dir)
	for _, env := range exact {
		p.Notices = append(p.Notices, fmt.Sprintf("%s is the files of %s; they are restored as that environment's", p.Dir, env.Name()))
		p.Keep = append(append(p.Keep, env.Exclude...), env.Preserve...)
		p.Delete = true
	}
	p.Protected = e.Sites.ProtectedAt(dir)
	if p.Options.Delete || e.Sites.MadeByRestore(dir) {
		p.Delete = true
	}
	return nil
}

// targets are the databases the plan replaces.
func (p *Plan) targets() []cairn.Database {
	out := make([]cairn.Database, len(p.Databases))
	for i, l := range p.Databases {
		out[i] = l.To
	}
	return out
}

// Run does what the plan says (or reports it, in a dry run): the
// databases first, then the files, then the configuration and the
// actions. The plan's protected environments must have been confirmed.
func (e *Engine) Run(ctx context.Context, p *Plan, rep cairn.Reporter) error {
	for _, n := range p.Notices {
		rep.Event(cairn.Notice{Message: n})
	}
	if p.Options.Only != Databases {
		// The files' guard first: a refused target leaves the databases
		// as they were too.
		for _, n := range p.nodes() {
			if !n.Remote.IsLocal() {
				continue
			}
			if _, err := e.Sites.Guard(n.Resolved); err != nil {
				return err
			}
		}
	}
	if err := e.RestoreDatabases(ctx, p, rep); err != nil {
		return err
	}
	if p.Options.Only == Databases {
		return e.AfterRestore(ctx, p, rep)
	}
	if _, err := e.RestoreFiles(ctx, p, rep); err != nil {
		return err
	}
	if p.Options.Path != "" {
		if len(p.Actions) > 0 {
			rep.Event(cairn.Notice{Message: "after_restore actions are not run for a --path restore"})
		}
		return nil
	}
	if err := e.Configure(ctx, p, rep); err != nil {
		return err
	}
	return e.AfterRestore(ctx, p, rep)
}

// restorable refuses a restore that needs what a damaged snapshot lost,
// saying what is lost; a part of it that lost nothing (a path, or only
// the files or only the databases) restores.
func restorable(s *cairn.Snapshot, o Options) error {
	var hit []string
	for _, p := range s.Damaged {
		db := strings.HasPrefix(p, "database ") || p == "databases"
		switch {
		case db && o.Only == Files, !db && o.Only == Databases:
		case !db && o.Path != "" && !pathsOverlap(p, strings.Trim(o.Path, "/")):
		default:
			hit = append(hit, p)
		}
	}
	if len(hit) == 0 {
		return nil
	}
	return fmt.Errorf("%w: snapshot %s is damaged: lost %s. Try: restore another snapshot (cairn snapshots), or only what it kept (--path P, --only files|db)",
		cairn.ErrDamaged, s.ShortID(), strings.Join(hit, ", "))
}

// pathsOverlap: one of a and b is the other or inside it ("/" is the root).
func pathsOverlap(a, b string) bool {
	if a == "/" || b == "" || a == b {
		return true
	}
	return strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// movePairs are the rewrites that move a snapshot's data to another
// environment: its URL, and the absolute path of its files (on their
// host: the site knows its files by that path).
func movePairs(s *cairn.Snapshot, url, dir string) []rewrite.Pair {
	var pairs []rewrite.Pair
	if s.URL != "" && url != "" && strings.TrimRight(s.URL, "/") != strings.TrimRight(url, "/") {
		pairs = append(pairs, rewrite.Pair{From: strings.TrimRight(s.URL, "/"), To: strings.TrimRight(url, "/")})
	}
	from := s.Source
	if l, err := cairn.ParseLocation(s.Source, "/"); err == nil {
		from = l.Path
	}
	to := dir
	if !strings.HasPrefix(dir, "/") {
		to, _ = filepath.Abs(dir)
	}
	if from != "" && to != "" && from != to {
		pairs = append(pairs, rewrite.Pair{From: from, To: to})
	}
	return pairs
}

// replacePairs are a site's replace: pairs.
func replacePairs(list []cairn.Replacement) []rewrite.Pair {
	out := make([]rewrite.Pair, 0, len(list))
	for _, r := range list {
		out = append(out, rewrite.Pair{From: r.From, To: r.To})
	}
	return out
}

// openOptions are how the plan's target databases are opened.
func (e *Engine) openOptions(p *Plan) database.Options {
	dir := p.Dir
	if !p.Remote.IsLocal() {
		dir = "" // another host's files hold no database of this one's
	}
	return database.Options{TerminateSessions: p.Options.TerminateSessions, LockWait: p.Options.LockWait, Beneath: e.Sites.FilesRoots(dir)}
}
