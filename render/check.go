package render

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/repo"
)

// Check writes a check's report for people.
func Check(w io.Writer, rep repo.Report) {
	read := ""
	if rep.PacksRead > 0 {
		read = fmt.Sprintf(" (data of %d read back)", rep.PacksRead)
	}
	fmt.Fprintf(w, "checked %d snapshot(s), %d pack(s)%s, %d content(s)\n", rep.Snapshots, rep.Packs, read, rep.Contents)
	for _, p := range rep.Problems {
		if p.Blob == "" {
			fmt.Fprintf(w, "damage: %s\n", p.Detail)
			continue
		}
		fmt.Fprintf(w, "damage: %s %s: %s%s\n", blobKind(p.Kind), p.Blob, p.Detail, contentsNote(p.Contents))
	}
	for _, d := range rep.Damaged {
		fmt.Fprintf(w, "damaged: snapshot %s of %s (%s) lost: %s\n", d.Snapshot.ShortID(), d.Snapshot.Name(),
			d.Snapshot.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(d.Lost, ", "))
	}
	for _, d := range rep.Known {
		fmt.Fprintf(w, "known: snapshot %s of %s is recorded as damaged (%d path(s) lost)\n", d.Snapshot.ShortID(), d.Snapshot.Name(), len(d.Lost))
	}
	for _, s := range rep.Healed {
		fmt.Fprintf(w, "note: snapshot %s of %s is recorded as damaged but is whole again (its lost data was stored anew); cairn repair clears the mark\n", s.ShortID(), s.Name())
	}
	if rep.Unindexed > 0 {
		fmt.Fprintf(w, "note: %d content(s) in packs that no index lists (an interrupted snapshot leaves these); cairn repair indexes them\n", rep.Unindexed)
	}
	if rep.OK() {
		fmt.Fprintln(w, "no damage found")
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

// CheckProblem is one piece of storage damage a check found.
type CheckProblem struct {
	MessageType string `json:"message_type"` // "problem"
	Kind        string `json:"kind"`
	Blob        string `json:"blob"`
	Contents    int    `json:"contents,omitempty"`
	Detail      string `json:"detail"`
}

// DamagedSnapshot is one snapshot that lost data.
type DamagedSnapshot struct {
	MessageType string   `json:"message_type"` // "damaged_snapshot"
	ID          string   `json:"id"`
	ShortID     string   `json:"short_id"`
	Site        string   `json:"site"`
	Environment string   `json:"environment"`
	Time        string   `json:"time"`
	Lost        []string `json:"lost"`
	Known       bool     `json:"known"` // already recorded by cairn repair
}

// CheckSummary ends a check's stream.
type CheckSummary struct {
	MessageType string `json:"message_type"` // "summary"
	Snapshots   int    `json:"snapshots"`
	Packs       int    `json:"packs"`
	PacksRead   int    `json:"packs_read"`
	Contents    int    `json:"contents"`
	Unindexed   int    `json:"unindexed_contents"`
	Damaged     bool   `json:"damaged"`
	Next        string `json:"next,omitempty"`
}

// CheckJSON writes a check's report as NDJSON: its problems, the damaged
// snapshots, then the summary, which names next when there is damage.
func CheckJSON(w io.Writer, rep repo.Report, next string) error {
	for _, p := range rep.Problems {
		if err := Line(w, CheckProblem{"problem", p.Kind, p.Blob, p.Contents, p.Detail}); err != nil {
			return err
		}
	}
	for i, d := range append(rep.Damaged, rep.Known...) {
		s := d.Snapshot
		if err := Line(w, DamagedSnapshot{"damaged_snapshot", s.ID, s.ShortID(), s.Site, s.Environment,
			s.Time.Format(time.RFC3339), d.Lost, i >= len(rep.Damaged)}); err != nil {
			return err
		}
	}
	sum := CheckSummary{MessageType: "summary", Snapshots: rep.Snapshots, Packs: rep.Packs, PacksRead: rep.PacksRead,
		Contents: rep.Contents, Unindexed: rep.Unindexed, Damaged: !rep.OK()}
	if !rep.OK() {
		sum.Next = next
	}
	return Line(w, sum)
}

// Repair writes what a repair did, and returns its error err: a repair
// that failed says only that it restored the format blob, if it did.
func Repair(w io.Writer, rep repo.RepairReport, err error) error {
	if rep.FormatRestored {
		fmt.Fprintln(w, "restored the format blob kopia.repository from the copy cairn keeps (the damaged one is kept as cairn.format.damaged)")
	}
	if err != nil {
		return err
	}
	if rep.Recovered > 0 {
		fmt.Fprintf(w, "recovered %d index entries from %d pack(s)\n", rep.Recovered, rep.RecoveredPacks)
	}
	for _, p := range rep.UnreadablePacks {
		fmt.Fprintf(w, "pack %s cannot be read back (its own index is damaged): what only it held is lost\n", p)
	}
	if rep.Dropped > 0 {
		fmt.Fprintf(w, "dropped %d index entries whose data is lost: the next snapshot stores that data again\n", rep.Dropped)
	}
	if rep.LostRecords > 0 {
		fmt.Fprintf(w, "%d lost content(s) held snapshot records: the snapshots they described are gone (their data, where shared, lives on in the others)\n", rep.LostRecords)
	}
	if rep.Rewritten > 0 {
		fmt.Fprintf(w, "rewrote %d content(s) from packs whose own index was unreadable into new packs\n", rep.Rewritten)
	}
	if n := len(rep.RemovedIndexes); n > 0 {
		fmt.Fprintf(w, "removed %d damaged index blob(s): %s\n", n, strings.Join(rep.RemovedIndexes, ", "))
	}
	for _, d := range rep.Marked {
		fmt.Fprintf(w, "marked snapshot %s of %s as damaged; lost: %s\n", d.Snapshot.ShortID(), d.Snapshot.Name(), strings.Join(d.Lost, ", "))
	}
	for _, id := range rep.Cleared {
		fmt.Fprintf(w, "snapshot %s is whole again: damage mark cleared\n", (&cairn.Snapshot{ID: id}).ShortID())
	}
	if !rep.Changed() {
		fmt.Fprintln(w, "nothing to repair")
	}
	return nil
}
