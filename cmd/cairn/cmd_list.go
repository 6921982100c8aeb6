package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/render"
	"github.com/cairn-backup/cairn/repo"
)

func (a *app) snapshotsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshots [SITE[/ENV]]",
		Short: "List snapshots, oldest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter := ""
			if len(args) == 1 {
				filter = args[0]
			}
			return a.runSnapshots(cmd.Context(), filter, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func (a *app) runSnapshots(ctx context.Context, filter string, asJSON bool) error {
	site, env, _ := strings.Cut(filter, "/")
	r, err := a.openRepo(ctx, false)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	all, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	var list []*cairn.Snapshot
	for _, s := range all {
		if (site == "" || s.Site == site) && (env == "" || s.Environment == env) {
			list = append(list, s)
		}
	}
	if asJSON {
		out := make([]render.Snapshot, 0, len(list))
		for _, s := range list {
			out = append(out, render.SnapshotJSON(s))
		}
		return render.Indented(a.stdout, out)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stderr, "no snapshots yet. Try: cairn snapshot SITE/ENV")
		return nil
	}
	return render.Snapshots(a.stdout, list)
}

// pick opens the repository and resolves a selector to one snapshot.
func (a *app) pick(ctx context.Context, arg string) (*repo.Repo, *cairn.Snapshot, error) {
	return a.pickFor(ctx, arg, false)
}

// pickFor is pick, tuned for a restore when restore is set.
func (a *app) pickFor(ctx context.Context, arg string, restore bool) (*repo.Repo, *cairn.Snapshot, error) {
	if _, err := cairn.ParseSelector(arg, time.Local); err != nil {
		return nil, nil, err // before opening anything
	}
	r, err := a.openRepoFor(ctx, false, restore)
	if err != nil {
		return nil, nil, err
	}
	snap, err := a.pickIn(ctx, r, arg)
	if err != nil {
		r.Close(ctx)
		return nil, nil, err
	}
	return r, snap, nil
}

func (a *app) showCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show SNAP",
		Short: "Show one snapshot: files, databases and their tables, application, versions",
		Long:  "SNAP is SITE/ENV@SEL (SEL = latest, an ID prefix or a time) or a bare snapshot ID.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := a.pick(ctx, args[0])
			if err != nil {
				return err
			}
			defer r.Close(ctx)
			return a.show(ctx, r, s, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func (a *app) show(ctx context.Context, r *repo.Repo, s *cairn.Snapshot, asJSON bool) error {
	out, err := render.Detail(ctx, r, s)
	if err != nil {
		return err
	}
	if asJSON {
		return render.Indented(a.stdout, out)
	}
	return render.Show(a.stdout, s, out)
}

type lsOptions struct {
	long, recursive, json bool
}

func (a *app) lsCommand() *cobra.Command {
	var o lsOptions
	cmd := &cobra.Command{
		Use:   "ls SNAP [PATH]",
		Short: "List the files in a snapshot",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := ""
			if len(args) == 2 {
				p = args[1]
			}
			return a.runLs(cmd.Context(), args[0], p, o)
		},
	}
	cmd.Flags().BoolVarP(&o.long, "long", "l", false, "show mode, size and time")
	cmd.Flags().BoolVarP(&o.recursive, "recursive", "R", false, "list subdirectories too")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object per line")
	return cmd
}

func (a *app) runLs(ctx context.Context, sel, p string, o lsOptions) error {
	r, s, err := a.pick(ctx, sel)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	root, err := r.Root(ctx, s)
	if err != nil {
		return err
	}
	n, rel, err := cairn.Lookup(ctx, root, p)
	if err != nil {
		return fmt.Errorf("%s in snapshot %s: %w", p, s.ShortID(), err)
	}
	l := render.Listing{W: a.stdout, Long: o.long, JSON: o.json, Recursive: o.recursive}
	if !n.Mode().IsDir() {
		return l.Entry(ctx, n, rel)
	}
	return l.Dir(ctx, n, rel)
}

// pickIn resolves a selector among the repository's snapshots.
func (a *app) pickIn(ctx context.Context, r *repo.Repo, arg string) (*cairn.Snapshot, error) {
	sel, err := cairn.ParseSelector(arg, time.Local)
	if err != nil {
		return nil, err
	}
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	return sel.Pick(all)
}
