package main

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/progress"
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
		out := make([]snapshotJSON, 0, len(list))
		for _, s := range list {
			out = append(out, toJSON(s))
		}
		return a.printJSON(out)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stderr, "no snapshots yet. Try: cairn snapshot SITE/ENV")
		return nil
	}
	damaged := slices.ContainsFunc(list, func(s *cairn.Snapshot) bool { return s.Damaged != nil })
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	header := "ID\tTIME\tSITE/ENV\tHOST\tFILES\tSIZE"
	if damaged {
		header += "\tDAMAGE"
	}
	fmt.Fprintln(tw, header)
	for _, s := range list {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s", s.ShortID(), s.Time.Local().Format("2006-01-02 15:04:05"),
			s.Name(), s.Host, s.Files, progress.Bytes(s.Bytes))
		if s.Damaged != nil {
			line += fmt.Sprintf("\tDAMAGED: %d path(s) lost (cairn show %s)", len(s.Damaged), s.ShortID())
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
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
	out := toJSON(s)
	if s.App != nil {
		full, err := r.App(ctx, s)
		if err != nil {
			return err
		}
		out.App.Components = full.Components
	}
	for i, d := range s.Databases {
		stats, err := r.Tables(ctx, s, d.Name)
		if err != nil {
			return err
		}
		for _, t := range stats {
			out.Databases[i].Stats = append(out.Databases[i].Stats, tableJSON(t))
		}
	}
	if asJSON {
		return a.printJSON(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"id", s.ID}, {"time", s.Time.Local().Format(time.RFC3339)}, {"site", s.Site},
		{"environment", s.Environment}, {"url", s.URL}, {"host", s.Host}, {"source", s.Source},
		{"files", fmt.Sprintf("%d in %d directories", s.Files, s.Dirs)},
		{"size", fmt.Sprintf("%s (%d bytes)", progress.Bytes(s.Bytes), s.Bytes)},
		{"took", s.Duration.Round(time.Millisecond).String()}, {"cairn", s.Version},
	}
	if out.App != nil {
		rows = append(rows, [2]string{"app", strings.TrimSpace(out.App.Name + " " + out.App.Version)})
	}
	if s.Damaged != nil {
		rows = append(rows, [2]string{"damaged", "lost " + strings.Join(s.Damaged, ", ")})
	}
	for _, row := range rows {
		if row[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
	}
	if out.App != nil {
		for _, k := range sortedKeys(out.App.Components) {
			fmt.Fprintf(tw, "  %s:\t%s\n", k, out.App.Components[k])
		}
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(tw, "warning:\t%s\n", w)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range out.Databases {
		fmt.Fprintf(a.stdout, "\ndatabase %s (%s, %s): %d tables, %d rows, %s dump\n", d.Name, d.Engine, d.DSN, d.Tables, d.Rows, progress.Bytes(d.Bytes))
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TABLE\tROWS\tCHECKSUM\t")
		for _, t := range d.Stats {
			sum := t.Checksum
			if sum == "" {
				sum = "-"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t\n", t.Name, t.Rows, sum)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
	if !n.Mode().IsDir() {
		return a.lsPrint(ctx, n, rel, o)
	}
	return a.lsDir(ctx, n, rel, o)
}

func (a *app) lsDir(ctx context.Context, dir cairn.Node, rel string, o lsOptions) error {
	kids, err := dir.Children(ctx)
	if err != nil {
		return err
	}
	for _, k := range kids {
		kp := path.Join(rel, k.Name())
		if err := a.lsPrint(ctx, k, kp, o); err != nil {
			return err
		}
		if o.recursive && k.Mode().IsDir() {
			if err := a.lsDir(ctx, k, kp, o); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *app) lsPrint(ctx context.Context, n cairn.Node, rel string, o lsOptions) error {
	target := ""
	if n.Mode()&fs.ModeSymlink != 0 {
		target, _ = n.Readlink(ctx)
	}
	if o.json {
		typ := "other"
		switch m := n.Mode(); {
		case m.IsDir():
			typ = "dir"
		case m.IsRegular():
			typ = "file"
		case m&fs.ModeSymlink != 0:
			typ = "symlink"
		}
		enc := entryJSON{Path: rel, PathBytes: rawBytes(rel), Type: typ, Mode: fmt.Sprintf("%#o", n.Mode().Perm()), Size: n.Size(),
			ModTime: n.ModTime().Format(time.RFC3339Nano), Target: target}
		return jsonLine(a.stdout, enc)
	}
	name := rel
	if n.Mode().IsDir() {
		name += "/"
	}
	if target != "" {
		name += " -> " + target
	}
	if o.long {
		fmt.Fprintf(a.stdout, "%s %12d %s %s\n", n.Mode(), n.Size(), n.ModTime().Local().Format("2006-01-02 15:04:05"), name)
		return nil
	}
	fmt.Fprintln(a.stdout, name)
	return nil
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
