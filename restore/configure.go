package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/actions"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/webapp"
)

// Configure points a copy restored onto another environment at that
// environment's database and URL, in the application's own configuration,
// unless the target keeps its own (preserve:), and sets the environment's
// config: settings, on every node of its files.
func (e *Engine) Configure(ctx context.Context, p *Plan, rep cairn.Reporter) error {
	if p.Env == nil {
		return nil
	}
	keep, err := pattern.Compile(p.Keep...)
	if err != nil {
		return fmt.Errorf("%w: %v", cairn.ErrInvalidArgument, err)
	}
	kept := func(file string) bool { return keep.Match(file, false) }
	ctx = files.WithWriteTime(ctx, time.Now())
	for i, n := range p.nodes() {
		if err := e.configureNode(ctx, p, n, kept, i == 0, rep); err != nil {
			return err
		}
	}
	return nil
}

// configureNode configures one node's copy; report says whether its
// changes are reported (the first node's: the others' are the same).
func (e *Engine) configureNode(ctx context.Context, p *Plan, n Node, kept func(string) bool, report bool, rep cairn.Reporter) error {
	tree, _, done, err := e.openTarget(ctx, p, n, false)
	if err != nil {
		return err
	}
	defer done()
	var changes []webapp.Change
	if p.Env.Name() != p.Snapshot.Name() {
		c, err := pointApp(ctx, p, n, tree, kept)
		if err != nil {
			return err
		}
		changes = c
	}
	var rules []webapp.Setting
	for _, r := range p.Env.Settings {
		rules = append(rules, webapp.Setting{File: r.File, Key: r.Key, Value: r.Value})
	}
	c, err := webapp.Set(ctx, tree, rules, kept, p.Options.DryRun)
	for _, c := range append(changes, c...) {
		if report {
			rep.Event(cairn.ConfigChange{File: c.File, Key: c.Key, Value: c.Value, DryRun: p.Options.DryRun})
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w. Try: fix its config: rule in the configuration file", p.Env.Name(), err)
	}
	return nil
}

// pointApp points the application's own configuration at the target.
func pointApp(ctx context.Context, p *Plan, n Node, tree files.Target, kept func(string) bool) ([]webapp.Change, error) {
	target := webapp.Target{URL: p.Env.URL}
	if len(p.Env.Databases) > 0 {
		target.Database = p.Env.Databases[0].Reveal()
	}
	changes, err := webapp.Configure(ctx, tree, target, kept, p.Options.DryRun)
	if errors.Is(err, webapp.ErrUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configure the copy in %s: %w. Try: set it by hand, or keep the target's own with preserve: [/wp-config.php] (or /.env)", n.Dir, err)
	}
	return changes, nil
}

// AfterRestore runs the target environment's after_restore: actions (or,
// in a dry run, reports them).
func (e *Engine) AfterRestore(ctx context.Context, p *Plan, rep cairn.Reporter) error {
	if len(p.Actions) == 0 {
		return nil
	}
	if p.Options.DryRun {
		for _, act := range p.Actions {
			rep.Event(cairn.ActionRun{Action: act, DryRun: true})
		}
		return nil
	}
	var dbs []cairn.Database
	for _, dsn := range p.Env.Databases {
		db, err := e.Sites.OpenDatabase(dsn, database.Options{})
		if err != nil {
			return err
		}
		dbs = append(dbs, db)
	}
	// The first node runs every action; the others only those that put
	// files in the copy (a must-use plugin), as each node serves pages.
	list := p.Actions
	for _, n := range p.nodes() {
		target := actions.Target{Name: p.Env.Name(), URL: p.Env.URL, Dir: n.Dir, DSNs: p.Env.Databases, Databases: dbs}
		if !n.Remote.IsLocal() {
			tree, _, done, err := e.openTarget(ctx, p, n, false)
			if err != nil {
				return err
			}
			defer done()
			target.Dir, target.Tree, target.Shell = n.Remote.Path, tree, e.Sites.Shell(n.Remote)
		}
		if err := actions.Run(ctx, target, list, func(act cairn.Action) { rep.Event(cairn.ActionRun{Action: act}) }); err != nil {
			return err
		}
		list = slices.DeleteFunc(slices.Clone(list), func(a cairn.Action) bool { return !a.WritesFiles() })
	}
	return nil
}
