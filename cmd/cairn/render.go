package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/progress"
)

// renderer shows the engine's events to people (text on stdout, notes
// and warnings on stderr, stages as progress bars) or to programs (NDJSON
// on stdout with --json).
type renderer struct {
	a    *app
	json bool
	mu   sync.Mutex // one event's lines at a time
}

func (a *app) renderer(asJSON bool) *renderer { return &renderer{a: a, json: asJSON} }

func (r *renderer) Stage(name string) cairn.Stage { return barStage{r.a.bar(name)} }

// barStage is a stage drawn as a progress bar.
type barStage struct{ *progress.Bar }

func (b barStage) End() { b.Finish() }

func (r *renderer) Event(e cairn.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out, errs := r.a.stdout, r.a.stderr
	if r.json {
		if v := toEventJSON(e); v != nil {
			if _, q := v.(quiet); !q {
				jsonLine(out, v) //nolint:errcheck
			}
			return
		}
	}
	switch e := e.(type) {
	case cairn.Warning:
		fmt.Fprintln(errs, "warning:", e.Message)
	case cairn.Notice:
		fmt.Fprintln(errs, "note:", e.Message)
	case cairn.Rewritten:
		fmt.Fprintf(errs, "database %s: rewrote %d match(es) in %d value(s)\n", e.Database, e.Matches, e.Values)
	case cairn.FileChange:
		marks := map[string]string{"add": "+", "update": "~", "meta": "*", "delete": "-"}
		name := e.Path
		if e.Dir {
			name += "/"
		}
		if e.Size > 0 {
			fmt.Fprintf(out, "%s %s (%s)\n", marks[e.Op], name, progress.Bytes(e.Size))
		} else {
			fmt.Fprintf(out, "%s %s\n", marks[e.Op], name)
		}
	case cairn.RewritePair:
		fmt.Fprintf(out, "rewrite %s → %s\n", e.From, e.To)
	case cairn.PlanStep:
		fmt.Fprintln(out, e.Text)
	case cairn.DatabasePlanned:
		fmt.Fprintf(out, "database %s → %s: would load the %s dump (%d tables, %d rows) into a scratch database beside it, check its row counts, then swap it in\n",
			e.Name, e.Target, progress.Bytes(e.DumpBytes), e.Tables, e.Rows)
	case cairn.DatabaseRestored:
		if d := e.Delta; d != nil {
			fmt.Fprintf(out, "database %s updated in place from snapshot %s: %d row(s) out, %d in, in %d table(s); %d rows checked, in %s\n",
				e.Name, d.Base.ShortID(), d.Removed, d.Added, d.Tables, e.Rows, e.Duration.Round(time.Millisecond))
			return
		}
		fmt.Fprintf(out, "database %s restored into %s: %d tables, %d rows checked, swapped in, in %s\n",
			e.Name, e.Target, e.Tables, e.Rows, e.Duration.Round(time.Millisecond))
	case cairn.ConfigChange:
		verb := "set"
		if e.DryRun {
			verb = "would set"
		}
		fmt.Fprintf(out, "%s %s %s = %s\n", e.File, verb, e.Key, e.Value)
	case cairn.ActionRun:
		if e.DryRun {
			fmt.Fprintf(out, "after_restore %s: would %s\n", e.Action, e.Action.Describe())
		} else {
			fmt.Fprintf(out, "after_restore %s: done\n", e.Action)
		}
	case cairn.FilesRestored:
		r.filesRestored(e)
	case cairn.SafetySnapshot:
		fmt.Fprintf(out, "safety snapshot %s of %s: to undo this clone, cairn restore %s@%s\n", e.Snapshot.ShortID(), e.Environment, e.Environment, e.Snapshot.ShortID())
	case cairn.URLChecked:
		r.urlChecked(e)
	case cairn.DeltaPlanned:
		except := ""
		if len(e.Whole) > 0 {
			except = fmt.Sprintf(" (%s changed since: loaded whole)", strings.Join(e.Whole, ", "))
		}
		fmt.Fprintf(out, "database %s → %s: it still holds snapshot %s as the last clone left it%s, so a clone loads only the rows that changed, in place\n",
			e.Name, e.Target, e.Base.ShortID(), except)
	case cairn.SafetyFromState:
		fmt.Fprintf(out, "safety snapshot of %s: %d table(s) as the last clone left them, taken from what it kept; %d dumped\n", e.Target, e.Kept, e.Dumped)
	}
}

func (r *renderer) filesRestored(e cairn.FilesRestored) {
	s := e.Snapshot
	verb := "restored"
	if e.DryRun {
		verb = "would restore"
	}
	fmt.Fprintf(r.a.stdout, "%s snapshot %s (%s, %s) to %s: %d added, %d updated, %d attributes fixed, %d deleted, %d unchanged; %s written in %s\n",
		verb, s.ShortID(), s.Name(), s.Time.Local().Format("2006-01-02 15:04"), e.Target, e.Added, e.Updated, e.Meta,
		e.Deleted, e.Unchanged, progress.Bytes(e.BytesWritten), e.Duration.Round(time.Millisecond))
	if e.Extra > 0 {
		fmt.Fprintf(r.a.stdout, "%d entries the snapshot lacks were left in %s; add --delete to remove them\n", e.Extra, e.Target)
	}
}

func (r *renderer) urlChecked(e cairn.URLChecked) {
	if e.Err != nil {
		fmt.Fprintf(r.a.stderr, "note: %s is not reachable from here, so the copy was not checked (%v)\n", e.URL, e.Err)
		return
	}
	if !r.json {
		fmt.Fprintf(r.a.stdout, "%s answers HTTP %s\n", e.URL, e.StatusText)
	}
	if e.Status >= 500 {
		fmt.Fprintf(r.a.stderr, "warning: %s answers %s: the copy may not work. Try: look at the web server's error log\n", e.URL, e.StatusText)
	}
}

// toEventJSON is an event as --json prints it, or nil for those it shows
// as text on stderr (warnings, notes) or not at all.
func toEventJSON(e cairn.Event) any {
	switch e := e.(type) {
	case cairn.FileChange:
		return changeJSON{MessageType: e.Type(), Op: e.Op, Path: e.Path, PathBytes: rawBytes(e.Path), Size: e.Size, Dir: e.Dir}
	case cairn.RewritePair:
		return rewritePairJSON{MessageType: e.Type(), From: e.From, To: e.To, DryRun: e.DryRun}
	case cairn.DatabasePlanned:
		return databaseRestoreJSON{MessageType: e.Type(), Name: e.Name, Target: e.Target, DryRun: true, Tables: e.Tables, Rows: e.Rows, DumpBytes: e.DumpBytes}
	case cairn.DatabaseRestored:
		j := databaseRestoreJSON{MessageType: e.Type(), Name: e.Name, Target: e.Target, Tables: e.Tables, Rows: e.Rows, DumpBytes: e.DumpBytes,
			ChecksumsDiffer: e.ChecksumsDiffer, DurationSec: e.Duration.Seconds()}
		if d := e.Delta; d != nil {
			j.Delta = &deltaJSON{Base: d.Base.ID, Removed: d.Removed, Added: d.Added, Tables: d.Tables, BaseDumpRead: d.BaseDumpRead}
		}
		return j
	case cairn.ConfigChange:
		return map[string]any{"message_type": e.Type(), "file": e.File, "key": e.Key, "value": e.Value, "dry_run": e.DryRun}
	case cairn.ActionRun:
		return map[string]any{"message_type": e.Type(), "action": e.Action.String(), "dry_run": e.DryRun}
	case cairn.FilesRestored:
		return restoreSummaryJSON{MessageType: e.Type(), Snapshot: e.Snapshot.ID, Target: e.Target, DryRun: e.DryRun,
			Added: e.Added, Updated: e.Updated, Meta: e.Meta, Deleted: e.Deleted, Unchanged: e.Unchanged,
			Extra: e.Extra, BytesWritten: e.BytesWritten, DurationSec: e.Duration.Seconds()}
	case cairn.DeltaPlanned:
		return deltaPlanJSON{MessageType: e.Type(), Name: e.Name, Target: e.Target, Base: e.Base.ID, Whole: e.Whole}
	case cairn.SafetyFromState:
		return safetyPlanJSON{MessageType: e.Type(), Target: e.Target, TablesKept: e.Kept, TablesDumped: e.Dumped}
	case cairn.CloneSummary:
		return cloneSummaryJSON{MessageType: e.Type(), Source: e.Source, Target: e.Target, DryRun: e.DryRun, Snapshot: e.Snapshot,
			SafetySnapshot: e.SafetySnapshot, URLStatus: e.URLStatus, Seconds: e.Seconds, FilesWritten: e.FilesWritten,
			FilesDeleted: e.FilesDeleted, BytesWritten: e.BytesWritten, Rows: e.Rows, Replacements: e.Replacements}
	case cairn.SafetySnapshot:
		return quiet{}
	case cairn.PlanStep:
		return map[string]any{"message_type": e.Type(), "text": e.Text}
	}
	return nil
}

// quiet marks an event --json does not print.
type quiet struct{}
