package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/site"
)

// RestoreFiles writes the snapshot's files (or Options.Path) onto the
// plan's directory, keeping what the plan keeps, and reports what it did
// (in a dry run, each change it would make).
func (e *Engine) RestoreFiles(ctx context.Context, p *Plan, rep cairn.Reporter) (files.Stats, error) {
	s, o := p.Snapshot, p.Options
	keep, err := pattern.Compile(p.Keep...)
	if err != nil {
		return files.Stats{}, fmt.Errorf("%w: %v", cairn.ErrInvalidArgument, err)
	}
	root, err := e.Store.Root(ctx, s)
	if err != nil {
		return files.Stats{}, err
	}
	src, rel, err := cairn.Lookup(ctx, root, o.Path)
	if err != nil {
		return files.Stats{}, fmt.Errorf("--path %s in snapshot %s: %w", o.Path, s.ShortID(), err)
	}
	dir := p.Resolved
	var protect []string
	var ids []files.FileID
	if p.Remote.IsLocal() { // cairn's own files are on this machine
		if protect, err = e.Sites.Guard(dir); err != nil {
			return files.Stats{}, err
		}
		ids = e.Sites.OwnIDs()
	}
	unlock, err := e.Sites.Lock(dir, targetlock.Write)
	if err != nil {
		return files.Stats{}, err
	}
	defer unlock()
	target, made, done, err := e.openTarget(ctx, p, true)
	if err != nil {
		return files.Stats{}, err
	}
	defer done()
	if l, ok := target.(*files.Local); ok {
		l.Keep(ids)
	}
	if made {
		e.Sites.NoteMadeByRestore(dir) //nolint:errcheck // without the record, the next restore there only keeps extras
	}
	e.log().Info("restore", "snapshot", s.ID, "path", rel, "target", dir, "keep", p.Keep, "dry_run", o.DryRun)
	start := time.Now()
	stage := rep.Stage("restore " + s.ShortID())
	if rel == "" {
		stage.Total(s.Files, s.Bytes)
	}
	links, err := e.Store.HardLinks(ctx, s)
	if err != nil {
		stage.End()
		return files.Stats{}, err
	}
	opts := files.Options{Keep: keep, Delete: p.Delete || made, Protect: protect, ProtectIDs: ids, HardLinks: links, DryRun: o.DryRun, Workers: o.Workers, Progress: stage}
	if o.DryRun {
		opts.OnChange = func(c files.Change) {
			rep.Event(cairn.FileChange{Op: string(c.Op), Path: c.Path, Size: c.Size, Dir: c.Dir})
		}
	}
	st, err := files.Restore(ctx, src, target, rel, opts)
	stage.End()
	if errors.Is(err, files.ErrConnectionLost) {
		return st, fmt.Errorf("restore %s to %s: %w. Every file there is whole, old or new. Try: check the network to that host, then run the same restore again: it writes only what is still missing", s.ShortID(), p.Dir, err)
	}
	if err != nil {
		return st, fmt.Errorf("restore %s to %s: %w", s.ShortID(), p.Dir, err)
	}
	if n := len(st.Unsafe); n > 0 {
		rep.Event(cairn.Warning{Message: fmt.Sprintf("%d file(s) restored without their setuid/setgid bit, because ownership is not restored: %s", n, firstN(st.Unsafe, 5))})
	}
	rep.Event(cairn.FilesRestored{Snapshot: s, Target: p.Dir, DryRun: o.DryRun, Added: st.Added, Updated: st.Updated, Meta: st.Meta,
		Deleted: st.Deleted, Unchanged: st.Unchanged, Extra: st.Extra, BytesWritten: st.BytesWritten, Duration: time.Since(start)})
	return st, nil
}

// firstN lists the first n of list, and how many more there are.
func firstN(list []string, n int) string {
	out := list
	if len(list) > n {
		out = append(append([]string(nil), list[:n]...), fmt.Sprintf("and %d more", len(list)-n))
	}
	return strings.Join(out, ", ")
}

// openTarget opens the plan's files: a local directory through handles
// (see openLocal), another host's tree over the network. With create, a
// missing one is made (made says so, for a local one), except in a dry
// run, which plans onto files.Missing. done releases the target.
func (e *Engine) openTarget(ctx context.Context, p *Plan, create bool) (t files.Target, made bool, done func(), err error) {
	create = create && !p.Options.DryRun
	if !p.Remote.IsLocal() {
		t, err := e.Sites.OpenRemote(ctx, p.Remote, create)
		if err != nil && p.Options.DryRun && errors.Is(err, fs.ErrNotExist) {
			return files.Missing(p.Dir), false, func() {}, nil
		}
		if err != nil {
			return nil, false, nil, err
		}
		return t, false, func() {}, nil // the tree ends with the run's connections
	}
	if _, err := os.Lstat(p.Resolved); err != nil && p.Options.DryRun {
		return files.Missing(p.Resolved), false, func() {}, nil
	}
	made = create && site.IsEmptyDir(p.Resolved)
	l, err := openLocal(p, create)
	if err != nil {
		return nil, false, nil, err
	}
	return l, made, func() { l.Close() }, nil
}

// openLocal opens the plan's target directory through handles (with
// create, making it when missing, never through a link), refusing a link
// swapped in for it since it was resolved, checked and locked.
func openLocal(p *Plan, create bool) (*files.Local, error) {
	open := files.OpenLocal
	if create {
		open = files.CreateLocal
	}
	l, err := open(p.Resolved)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p.Dir, err)
	}
	if l.Root() != p.Resolved {
		l.Close()
		return nil, fmt.Errorf("open %s: it now leads to %s, not %s: %w", p.Dir, l.Root(), p.Resolved, files.ErrNotDir)
	}
	return l, nil
}
