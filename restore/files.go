package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/site"
)

// Node is one copy of the files a restore writes: a local directory, or
// one on another host.
type Node struct {
	Dir      string         // as named (an ssh:// URL for a remote one)
	Resolved string         // a local one's path, links resolved; a remote one's Location.Key
	Remote   cairn.Location // a remote one's location (Host "" for a local one)
}

// nodes are the copies the plan writes: its Nodes, or its one directory.
func (p *Plan) nodes() []Node {
	if len(p.Nodes) > 0 {
		return p.Nodes
	}
	return []Node{{Dir: p.Dir, Resolved: p.Resolved, Remote: p.Remote}}
}

// nodeTarget is a node opened for a restore.
type nodeTarget struct {
	Node
	t      files.Target
	made   bool // a local directory the restore makes (or found empty)
	opts   files.Options
	done   func()
	unlock func()
}

func (n *nodeTarget) close() {
	if n.done != nil {
		n.done()
	}
	if n.unlock != nil {
		n.unlock()
	}
}

// RestoreFiles writes the snapshot's files (or Options.Path) onto the
// plan's directory, keeping what the plan keeps, and reports what it did
// (in a dry run, each change it would make). Onto several nodes, the
// change is staged on every node first and put in place on each only once
// all have it (see restoreNodes). A connection to a node lost on the way
// is made again, and the restore resumed (it writes only what still
// differs), twice at most.
func (e *Engine) RestoreFiles(ctx context.Context, p *Plan, rep cairn.Reporter) (files.Stats, error) {
	for attempt := 1; ; attempt++ {
		st, err := e.restoreFiles(ctx, p, rep)
		if err != nil && attempt > 1 && !errors.Is(err, files.ErrConnectionLost) && ctx.Err() == nil {
			return st, fmt.Errorf("the connection was lost during the restore, and connecting again failed: %w. Every file there is whole, old or new: run the same command again once the host answers", err)
		}
		if err == nil || !errors.Is(err, files.ErrConnectionLost) || attempt == site.Attempts || ctx.Err() != nil {
			return st, err
		}
		e.log().Info("connection lost; resuming", "err", err, "attempt", attempt+1)
		rep.Event(cairn.Notice{Message: fmt.Sprintf("restore to %s: the connection was lost; connecting again to resume, writing what is still missing (attempt %d of %d)", strings.Join(nodeDirsOf(p), ", "), attempt+1, site.Attempts)})
		if err := site.Backoff(ctx, attempt); err != nil {
			return st, err
		}
	}
}

func (e *Engine) restoreFiles(ctx context.Context, p *Plan, rep cairn.Reporter) (files.Stats, error) {
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
	links, err := e.Store.HardLinks(ctx, s)
	if err != nil {
		return files.Stats{}, err
	}
	base := files.Options{Keep: keep, Delete: p.Delete, HardLinks: links, DryRun: o.DryRun, Workers: o.Workers}
	var targets []*nodeTarget
	defer func() {
		for _, n := range targets {
			n.close()
		}
	}()
	for _, node := range p.nodes() {
		n, err := e.openNode(ctx, p, node, base)
		if err != nil {
			return files.Stats{}, err
		}
		targets = append(targets, n)
	}
	e.log().Info("restore", "snapshot", s.ID, "path", rel, "nodes", len(targets), "target", p.Dir, "keep", p.Keep, "dry_run", o.DryRun)
	if len(targets) > 1 && !o.DryRun {
		return e.restoreNodes(ctx, p, src, rel, targets, rep)
	}
	var sum files.Stats
	for _, n := range targets {
		if len(targets) > 1 {
			rep.Event(cairn.Notice{Message: "on " + n.Dir + ":"})
		}
		st, err := e.restoreNode(ctx, p, src, rel, n, n.t, rep)
		if err != nil {
			return st, err
		}
		sum = st
	}
	return sum, nil
}

// openNode locks and opens one node of the plan for a restore.
func (e *Engine) openNode(ctx context.Context, p *Plan, node Node, base files.Options) (*nodeTarget, error) {
	n := &nodeTarget{Node: node, opts: base}
	if !node.Remote.IsLocal() {
		n.opts.NoCompare = true
		if n.opts.Workers == 0 {
			n.opts.Workers = 32 // each write waits for round trips: more in flight fill the connection
		}
	}
	var ids []files.FileID
	if node.Remote.IsLocal() { // cairn's own files are on this machine
		protect, err := e.Sites.Guard(node.Resolved)
		if err != nil {
			return nil, err
		}
		ids = e.Sites.OwnIDs()
		n.opts.Protect, n.opts.ProtectIDs = protect, ids
	}
	unlock, err := e.Sites.Lock(node.Resolved, targetlock.Write)
	if err != nil {
		return nil, err
	}
	n.unlock = unlock
	if n.t, n.made, n.done, err = e.openTarget(ctx, p, node, true); err != nil {
		n.close()
		return nil, err
	}
	if l, ok := n.t.(*files.Local); ok {
		l.Keep(ids)
	}
	if n.made {
		e.Sites.NoteMadeByRestore(node.Resolved) //nolint:errcheck // without the record, the next restore there only keeps extras
		n.opts.Delete = true
	}
	return n, nil
}

// restoreNode restores onto one node, writing through t (the node's
// target, or its stage), and reports it.
func (e *Engine) restoreNode(ctx context.Context, p *Plan, src cairn.Node, rel string, n *nodeTarget, t files.Target, rep cairn.Reporter) (files.Stats, error) {
	s := p.Snapshot
	start := time.Now()
	stage := rep.Stage("restore " + s.ShortID())
	if rel == "" {
		stage.Total(s.Files, s.Bytes)
	}
	opts := n.opts
	opts.Progress = stage
	if opts.DryRun {
		opts.OnChange = func(c files.Change) {
			rep.Event(cairn.FileChange{Op: string(c.Op), Path: c.Path, Size: c.Size, Dir: c.Dir})
		}
	}
	st, err := files.Restore(ctx, src, t, rel, opts)
	stage.End()
	if errors.Is(err, files.ErrConnectionLost) {
		return st, fmt.Errorf("restore %s to %s: %w. Every file there is whole, old or new. Try: check the network to that host, then run the same restore again: it writes only what is still missing", s.ShortID(), n.Dir, err)
	}
	if err != nil {
		return st, fmt.Errorf("restore %s to %s: %w", s.ShortID(), n.Dir, err)
	}
	if _, staged := t.(*files.Staged); !staged {
		e.reportFiles(p, n, st, time.Since(start), rep)
	}
	return st, nil
}

func (e *Engine) reportFiles(p *Plan, n *nodeTarget, st files.Stats, took time.Duration, rep cairn.Reporter) {
	if k := len(st.Unsafe); k > 0 {
		where := ""
		if len(p.Nodes) > 0 {
			where = n.Dir + ": "
		}
		rep.Event(cairn.Warning{Message: fmt.Sprintf("%s%d file(s) restored without their setuid/setgid bit, because ownership is not restored: %s", where, k, firstN(st.Unsafe, 5))})
	}
	rep.Event(cairn.FilesRestored{Snapshot: p.Snapshot, Target: n.Dir, DryRun: p.Options.DryRun, Added: st.Added, Updated: st.Updated, Meta: st.Meta,
		Deleted: st.Deleted, Unchanged: st.Unchanged, Extra: st.Extra, BytesWritten: st.BytesWritten,
		Patched: st.Patched, PatchSent: st.PatchSent, PatchSize: st.PatchSize, Duration: took})
}

// restoreNodes restores onto several nodes so that they never serve two
// versions for longer than it takes to rename files: the change is staged
// on every node at once (written under temporary names, removals held
// back); if any node fails to stage it, every node's stage is removed and
// every node is left as it was. Only once all have staged is it put in
// place, on all at once. A node that fails then (its connection lost in
// that short pass) is named, and the others are all switched: a second
// run puts the rest in place, as it writes only what differs.
func (e *Engine) restoreNodes(ctx context.Context, p *Plan, src cairn.Node, rel string, targets []*nodeTarget, rep cairn.Reporter) (files.Stats, error) {
	start := time.Now()
	stages := make([]*files.Staged, len(targets))
	stats := make([]files.Stats, len(targets))
	for i, n := range targets {
		st, err := files.Stage(n.t)
		if err != nil {
			return files.Stats{}, err
		}
		stages[i] = st
	}
	g, gctx := errgroup.WithContext(ctx)
	failed := make([]error, len(targets))
	for i, n := range targets {
		g.Go(func() error {
			st, err := e.restoreNode(gctx, p, src, rel, n, stages[i], rep)
			stats[i], failed[i] = st, err
			return err
		})
	}
	if err := g.Wait(); err != nil {
		// Staged files are removed even when ctx is over: on a bounded
		// context of their own.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		var bad []string
		for i, n := range targets {
			stages[i].Abort(actx) //nolint:errcheck // what is left has temporary names, which the next restore removes
			if failed[i] != nil && !errors.Is(failed[i], context.Canceled) {
				bad = append(bad, n.Dir)
			}
		}
		if ctx.Err() != nil {
			return files.Stats{}, ctx.Err()
		}
		return files.Stats{}, fmt.Errorf("%w. No node's files were switched: on every node (%s) they are as they were. Try: fix what failed on %s, then run the same command again",
			err, strings.Join(nodeDirsOf(p), ", "), strings.Join(bad, ", "))
	}
	var switched, notSwitched []string
	errs := make([]error, len(targets))
	var cg errgroup.Group
	for i := range targets {
		cg.Go(func() error { errs[i] = stages[i].Commit(ctx); return nil })
	}
	cg.Wait() //nolint:errcheck // each node's error is in errs
	var first error
	for i, n := range targets {
		if errs[i] != nil {
			notSwitched = append(notSwitched, n.Dir)
			if first == nil {
				first = errs[i]
			}
			continue
		}
		switched = append(switched, n.Dir)
		e.reportFiles(p, n, stats[i], time.Since(start), rep)
	}
	if first != nil {
		return stats[0], fmt.Errorf("%w. Switched: %s; not switched, or only in part: %s. Try: run the same command again: it puts in place only what still differs",
			first, orNone(switched), strings.Join(notSwitched, ", "))
	}
	return stats[0], nil
}

func nodeDirsOf(p *Plan) []string {
	var out []string
	for _, n := range p.nodes() {
		out = append(out, n.Dir)
	}
	return out
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// firstN lists the first n of list, and how many more there are.
func firstN(list []string, n int) string {
	out := list
	if len(list) > n {
		out = append(append([]string(nil), list[:n]...), fmt.Sprintf("and %d more", len(list)-n))
	}
	return strings.Join(out, ", ")
}

// openTarget opens a node of the plan: a local directory through handles
// (see openLocal), another host's tree over the network. With create, a
// missing one is made (made says so, for a local one), except in a dry
// run, which plans onto files.Missing. done releases the target.
func (e *Engine) openTarget(ctx context.Context, p *Plan, n Node, create bool) (t files.Target, made bool, done func(), err error) {
	create = create && !p.Options.DryRun
	if !n.Remote.IsLocal() {
		t, err := e.Sites.OpenRemote(ctx, n.Remote, create)
		if err != nil && p.Options.DryRun && errors.Is(err, fs.ErrNotExist) {
			return files.Missing(n.Dir), false, func() {}, nil
		}
		if err != nil {
			return nil, false, nil, err
		}
		if p.Options.Path == "" {
			files.Prefetch(ctx, t) // the whole tree is walked
		}
		return t, false, func() {}, nil // the tree ends with the run's connections
	}
	if _, err := os.Lstat(n.Resolved); err != nil && p.Options.DryRun {
		return files.Missing(n.Resolved), false, func() {}, nil
	}
	made = create && site.IsEmptyDir(n.Resolved)
	l, err := openLocal(n, create)
	if err != nil {
		return nil, false, nil, err
	}
	return l, made, func() { l.Close() }, nil
}

// openLocal opens a local node through handles (with create, making it
// when missing, never through a link), refusing a link swapped in for it
// since it was resolved, checked and locked.
func openLocal(n Node, create bool) (*files.Local, error) {
	open := files.OpenLocal
	if create {
		open = files.CreateLocal
	}
	l, err := open(n.Resolved)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", n.Dir, err)
	}
	if l.Root() != n.Resolved {
		l.Close()
		return nil, fmt.Errorf("open %s: it now leads to %s, not %s: %w", n.Dir, l.Root(), n.Resolved, files.ErrNotDir)
	}
	return l, nil
}
