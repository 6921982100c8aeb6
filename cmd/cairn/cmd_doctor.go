package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/doctor"
	"github.com/cairn-backup/cairn/render"
)

func (a *app) doctorCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor SITE/ENV",
		Short: "Preflight: what a snapshot or restore of an environment would trip over",
		Long: `Check everything a snapshot of an environment, or a restore onto it,
depends on, and say what would fail, with what to do: each web node
(reached over SSH: host key, authentication, SFTP), its files (readable,
writable, free space against the latest snapshot's size, the application
found), whether the nodes hold the same files, and each database (reached,
through SSH if it says so; the dump tool here against the server's
version; the user's privileges for a snapshot and for a restore; objects
whose DEFINER a restore cannot keep).

doctor changes nothing anywhere. It exits 1 when a check failed.`,
		Example: "  cairn doctor blog/production\n  cairn doctor blog/staging --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDoctor(cmd.Context(), args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	return cmd
}

func (a *app) runDoctor(ctx context.Context, arg string, asJSON bool) error {
	site, env, ok := strings.Cut(arg, "/")
	if !ok {
		return usagef("doctor takes SITE/ENV from the config, not %q", arg)
	}
	e, err := a.cfg.Env(site, env)
	if err != nil {
		return err
	}
	sites, err := a.catalog()
	if err != nil {
		return err
	}
	d := &doctor.Doctor{Sites: sites, Size: a.latestSize}
	var all []doctor.Finding
	failed := d.Examine(ctx, e, func(f doctor.Finding) {
		if asJSON {
			all = append(all, f)
			return
		}
		render.Finding(a.stdout, f)
	})
	if asJSON {
		if all == nil {
			all = []doctor.Finding{}
		}
		if err := render.Indented(a.stdout, all); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s: %d check(s) failed (see above)", e.Name(), failed)
	}
	return nil
}

// latestSize is the size of the files of e's latest snapshot, 0 when
// there is none or the repository cannot be read (doctor needs none).
func (a *app) latestSize(ctx context.Context, e *cairn.Environment) int64 {
	r, err := a.openRepo(ctx, false)
	if err != nil {
		return 0
	}
	defer r.Close(ctx)
	list, err := r.Snapshots(ctx)
	if err != nil {
		return 0
	}
	var latest *cairn.Snapshot
	for _, s := range list {
		if s.Name() == e.Name() && (latest == nil || s.Time.After(latest.Time)) {
			latest = s
		}
	}
	if latest == nil {
		return 0
	}
	return latest.Bytes
}
