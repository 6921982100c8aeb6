package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/render"
	"github.com/cairn-backup/cairn/repo"
)

func (a *app) checkCommand() *cobra.Command {
	var readData string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check [--read-data N%|N/T]",
		Short: "Find repository damage, and the snapshots and paths it affects",
		Long: `Check the repository: every index blob can be read, every pack the index
points into exists and is long enough, no pack holds snapshot records that
no index lists (a lost index blob hides snapshots), and every snapshot's
tree and data are indexed and sound. With --read-data, the data of that
share of the packs is also read back and verified: N% picks packs at
random, N/T the N-th of T fixed slices, so that runs 1/T … T/T read
everything. Damage exits with code 15; cairn repair mends it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts repo.CheckOptions
			if readData != "" {
				d, err := repo.ParseDataSubset(readData)
				if err != nil {
					return err
				}
				opts.ReadData = d
			}
			return a.runCheck(cmd.Context(), opts, asJSON)
		},
	}
	cmd.Flags().StringVar(&readData, "read-data", "", "also read back and verify this share of the packs: `N%` or N/T")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print NDJSON (message_type problem, damaged_snapshot, summary)")
	return cmd
}

func (a *app) runCheck(ctx context.Context, opts repo.CheckOptions, asJSON bool) error {
	r, err := a.openRepoFor(ctx, false, true)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	rep, err := r.Check(ctx, opts)
	if err != nil {
		return err
	}
	next := "cairn repair"
	if d := opts.ReadData.String(); d != "" {
		next += " --read-data " + d
	}
	if asJSON {
		if err := render.CheckJSON(a.stdout, rep, next); err != nil {
			return err
		}
	} else {
		render.Check(a.stdout, rep)
	}
	if rep.OK() {
		return nil
	}
	return fmt.Errorf("%w: %d problem(s) in storage, %d snapshot(s) lost data. Try: %s", cairn.ErrDamaged, len(rep.Problems), len(rep.Damaged), next)
}

func (a *app) repairCommand() *cobra.Command {
	var readData string
	cmd := &cobra.Command{
		Use:   "repair [--read-data N%|N/T]",
		Short: "Mend repository damage: rebuild the index, drop lost data, mark damaged snapshots",
		Long: `Repair the repository: put back a damaged format blob from the copy cairn
keeps, rebuild the index from the packs (a damaged or deleted index blob
loses nothing still in a pack, and hidden snapshots come back), drop index
entries whose data is gone so that the next snapshot stores that data
again, and record the snapshots that lost data as damaged, with the paths
they lost (cairn snapshots lists them so). With --read-data, that share of
the packs is read back first, as cairn check does, so that corrupt data is
found and dropped too. Safe to run again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts repo.RepairOptions
			if readData != "" {
				d, err := repo.ParseDataSubset(readData)
				if err != nil {
					return err
				}
				opts.ReadData = d
			}
			return a.runRepair(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&readData, "read-data", "", "first read back and verify this share of the packs: `N%` or N/T")
	return cmd
}

func (a *app) runRepair(ctx context.Context, opts repo.RepairOptions) error {
	s, err := a.repository()
	if err != nil {
		return err
	}
	// Nothing else of this machine's uses the repository meanwhile.
	unlock, err := a.lockRepository(s.Options.Location, targetlock.Write)
	if err != nil {
		return err
	}
	defer unlock()
	rep, err := repo.Repair(ctx, s.Options, opts)
	return render.Repair(a.stdout, rep, err)
}

// warnDamagedIndexes says that the open left damaged index blobs out.
func (a *app) warnDamagedIndexes(r *repo.Repo) {
	if ids := r.DamagedIndexes(); len(ids) > 0 {
		fmt.Fprintf(a.stderr, "cairn: warning: %d index blob(s) of the repository are damaged and were left out (%s): "+
			"snapshots and files they describe may be missing. Try: cairn repair\n", len(ids), strings.Join(ids, ", "))
	}
}
