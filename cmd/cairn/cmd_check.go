package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/targetlock"
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
		if err := a.checkJSON(rep, next); err != nil {
			return err
		}
	} else {
		a.checkText(rep)
	}
	if rep.OK() {
		return nil
	}
	return fmt.Errorf("%w: %d problem(s) in storage, %d snapshot(s) lost data. Try: %s", cairn.ErrDamaged, len(rep.Problems), len(rep.Damaged), next)
}

func (a *app) checkText(rep repo.Report) {
	read := ""
	if rep.PacksRead > 0 {
		read = fmt.Sprintf(" (data of %d read back)", rep.PacksRead)
	}
	fmt.Fprintf(a.stdout, "checked %d snapshot(s), %d pack(s)%s, %d content(s)\n", rep.Snapshots, rep.Packs, read, rep.Contents)
	for _, p := range rep.Problems {
		if p.Blob == "" {
			fmt.Fprintf(a.stdout, "damage: %s\n", p.Detail)
			continue
		}
		fmt.Fprintf(a.stdout, "damage: %s %s: %s%s\n", blobKind(p.Kind), p.Blob, p.Detail, contentsNote(p.Contents))
	}
	for _, d := range rep.Damaged {
		fmt.Fprintf(a.stdout, "damaged: snapshot %s of %s (%s) lost: %s\n", d.Snapshot.ShortID(), d.Snapshot.Name(),
			d.Snapshot.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(d.Lost, ", "))
	}
	for _, d := range rep.Known {
		fmt.Fprintf(a.stdout, "known: snapshot %s of %s is recorded as damaged (%d path(s) lost)\n", d.Snapshot.ShortID(), d.Snapshot.Name(), len(d.Lost))
	}
	for _, s := range rep.Healed {
		fmt.Fprintf(a.stdout, "note: snapshot %s of %s is recorded as damaged but is whole again (its lost data was stored anew); cairn repair clears the mark\n", s.ShortID(), s.Name())
	}
	if rep.Unindexed > 0 {
		fmt.Fprintf(a.stdout, "note: %d content(s) in packs that no index lists (an interrupted snapshot leaves these); cairn repair indexes them\n", rep.Unindexed)
	}
	if rep.OK() {
		fmt.Fprintln(a.stdout, "no damage found")
	}
}

func blobKind(kind string) string {
	if kind == repo.ProblemDamagedIndex {
		return "index blob"
	}
	return "pack"
}

func contentsNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d content(s))", n)
}

// checkProblemJSON is one piece of storage damage in `cairn check --json`.
type checkProblemJSON struct {
	MessageType string `json:"message_type"` // "problem"
	Kind        string `json:"kind"`
	Blob        string `json:"blob"`
	Contents    int    `json:"contents,omitempty"`
	Detail      string `json:"detail"`
}

// damagedSnapshotJSON is one snapshot that lost data.
type damagedSnapshotJSON struct {
	MessageType string   `json:"message_type"` // "damaged_snapshot"
	ID          string   `json:"id"`
	ShortID     string   `json:"short_id"`
	Site        string   `json:"site"`
	Environment string   `json:"environment"`
	Time        string   `json:"time"`
	Lost        []string `json:"lost"`
	Known       bool     `json:"known"` // already recorded by cairn repair
}

// checkSummaryJSON ends `cairn check --json`.
type checkSummaryJSON struct {
	MessageType string `json:"message_type"` // "summary"
	Snapshots   int    `json:"snapshots"`
	Packs       int    `json:"packs"`
	PacksRead   int    `json:"packs_read"`
	Contents    int    `json:"contents"`
	Unindexed   int    `json:"unindexed_contents"`
	Damaged     bool   `json:"damaged"`
	Next        string `json:"next,omitempty"`
}

func (a *app) checkJSON(rep repo.Report, next string) error {
	for _, p := range rep.Problems {
		if err := jsonLine(a.stdout, checkProblemJSON{"problem", p.Kind, p.Blob, p.Contents, p.Detail}); err != nil {
			return err
		}
	}
	for i, d := range append(rep.Damaged, rep.Known...) {
		s := d.Snapshot
		if err := jsonLine(a.stdout, damagedSnapshotJSON{"damaged_snapshot", s.ID, s.ShortID(), s.Site, s.Environment,
			s.Time.Format(time.RFC3339), d.Lost, i >= len(rep.Damaged)}); err != nil {
			return err
		}
	}
	sum := checkSummaryJSON{MessageType: "summary", Snapshots: rep.Snapshots, Packs: rep.Packs, PacksRead: rep.PacksRead,
		Contents: rep.Contents, Unindexed: rep.Unindexed, Damaged: !rep.OK()}
	if !rep.OK() {
		sum.Next = next
	}
	return jsonLine(a.stdout, sum)
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
	if rep.FormatRestored {
		fmt.Fprintln(a.stdout, "restored the format blob kopia.repository from the copy cairn keeps (the damaged one is kept as cairn.format.damaged)")
	}
	if err != nil {
		return err
	}
	if rep.Recovered > 0 {
		fmt.Fprintf(a.stdout, "recovered %d index entries from %d pack(s)\n", rep.Recovered, rep.RecoveredPacks)
	}
	for _, p := range rep.UnreadablePacks {
		fmt.Fprintf(a.stdout, "pack %s cannot be read back (its own index is damaged): what only it held is lost\n", p)
	}
	if rep.Dropped > 0 {
		fmt.Fprintf(a.stdout, "dropped %d index entries whose data is lost: the next snapshot stores that data again\n", rep.Dropped)
	}
	if rep.LostRecords > 0 {
		fmt.Fprintf(a.stdout, "%d lost content(s) held snapshot records: the snapshots they described are gone (their data, where shared, lives on in the others)\n", rep.LostRecords)
	}
	if rep.Rewritten > 0 {
		fmt.Fprintf(a.stdout, "rewrote %d content(s) from packs whose own index was unreadable into new packs\n", rep.Rewritten)
	}
	if n := len(rep.RemovedIndexes); n > 0 {
		fmt.Fprintf(a.stdout, "removed %d damaged index blob(s): %s\n", n, strings.Join(rep.RemovedIndexes, ", "))
	}
	for _, d := range rep.Marked {
		fmt.Fprintf(a.stdout, "marked snapshot %s of %s as damaged; lost: %s\n", d.Snapshot.ShortID(), d.Snapshot.Name(), strings.Join(d.Lost, ", "))
	}
	for _, id := range rep.Cleared {
		fmt.Fprintf(a.stdout, "snapshot %s is whole again: damage mark cleared\n", shortID(id))
	}
	if !rep.Changed() {
		fmt.Fprintln(a.stdout, "nothing to repair")
	}
	return nil
}

func shortID(id string) string {
	return (&cairn.Snapshot{ID: id}).ShortID()
}

// warnDamagedIndexes says that the open left damaged index blobs out.
func (a *app) warnDamagedIndexes(r *repo.Repo) {
	if ids := r.DamagedIndexes(); len(ids) > 0 {
		fmt.Fprintf(a.stderr, "cairn: warning: %d index blob(s) of the repository are damaged and were left out (%s): "+
			"snapshots and files they describe may be missing. Try: cairn repair\n", len(ids), strings.Join(ids, ", "))
	}
}
