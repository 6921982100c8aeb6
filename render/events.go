package render

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/progress"
)

// Events is a cairn.Reporter that renders the engine's events: lines of
// text on Out (what is planned or done) and on Err (warnings and notes),
// or with JSON the NDJSON objects below on Out (warnings and notes stay
// text on Err, for people watching a script). Stages are drawn by Stages,
// or not at all when it is nil. It is safe for concurrent use: each
// event's lines are written together.
type Events struct {
	Out, Err io.Writer
	JSON     bool
	Stages   func(name string) cairn.Stage

	mu sync.Mutex
}

var _ cairn.Reporter = (*Events)(nil)

// Stage starts a stage through Stages.
func (r *Events) Stage(name string) cairn.Stage {
	if r.Stages == nil {
		return cairn.Discard.Stage(name)
	}
	return r.Stages(name)
}

// Event renders e.
func (r *Events) Event(e cairn.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.JSON {
		if v, ok := EventJSON(e); ok {
			if v != nil {
				Line(r.Out, v) //nolint:errcheck // a Reporter never fails
			}
			return
		}
		r.note(e)
		return
	}
	if !r.note(e) {
		r.text(e)
	}
}

// note renders what goes to Err, and says whether e was such.
func (r *Events) note(e cairn.Event) bool {
	switch e := e.(type) {
	case cairn.Warning:
		fmt.Fprintln(r.Err, "warning:", e.Message)
	case cairn.Notice:
		fmt.Fprintln(r.Err, "note:", e.Message)
	case cairn.Rewritten:
		fmt.Fprintf(r.Err, "database %s: rewrote %d match(es) in %d value(s)\n", e.Database, e.Matches, e.Values)
	case cairn.URLChecked:
		r.urlChecked(e)
	default:
		return false
	}
	return true
}

var changeMarks = map[string]string{"add": "+", "update": "~", "meta": "*", "delete": "-"}

func (r *Events) text(e cairn.Event) {
	out := r.Out
	switch e := e.(type) {
	case cairn.FileChange:
		name := Path(e.Path)
		if e.Dir {
			name += "/"
		}
		if e.Size > 0 {
			fmt.Fprintf(out, "%s %s (%s)\n", changeMarks[e.Op], name, progress.Bytes(e.Size))
		} else {
			fmt.Fprintf(out, "%s %s\n", changeMarks[e.Op], name)
		}
	case cairn.RewritePair:
		fmt.Fprintf(out, "rewrite %s → %s\n", e.From, e.To)
	case cairn.PlanStep:
		fmt.Fprintln(out, e.Text)
	case cairn.DatabasePlanned:
		into := "a scratch database beside it"
		if e.InPlace {
			into = "scratch tables inside it (" + e.Why + ")"
			if strings.HasPrefix(e.Target, "postgres") {
				into = "new schemas inside it, in one transaction (" + e.Why + ")"
			}
		}
		fmt.Fprintf(out, "database %s → %s: would load the %s dump (%d tables, %d rows) into %s, check its row counts, then swap it in\n",
			e.Name, e.Target, progress.Bytes(e.DumpBytes), e.Tables, e.Rows, into)
	case cairn.DatabaseRestored:
		databaseRestored(out, e)
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
		filesRestored(out, e)
	case cairn.SafetySnapshot:
		fmt.Fprintf(out, "safety snapshot %s of %s: to undo this clone, cairn restore %s@%s\n", e.Snapshot.ShortID(), e.Environment, e.Environment, e.Snapshot.ShortID())
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

func databaseRestored(out io.Writer, e cairn.DatabaseRestored) {
	if d := e.Delta; d != nil {
		fmt.Fprintf(out, "database %s updated in place from snapshot %s: %d row(s) out, %d in, in %d table(s); %d rows checked, in %s\n",
			e.Name, d.Base.ShortID(), d.Removed, d.Added, d.Tables, e.Rows, e.Duration.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(out, "database %s restored into %s: %d tables, %d rows checked, swapped in, in %s\n",
		e.Name, e.Target, e.Tables, e.Rows, e.Duration.Round(time.Millisecond))
}

func filesRestored(out io.Writer, e cairn.FilesRestored) {
	s := e.Snapshot
	verb := "restored"
	if e.DryRun {
		verb = "would restore"
	}
	fmt.Fprintf(out, "%s snapshot %s (%s, %s) to %s: %d added, %d updated, %d attributes fixed, %d deleted, %d unchanged; %s written in %s\n",
		verb, s.ShortID(), s.Name(), s.Time.Local().Format("2006-01-02 15:04"), e.Target, e.Added, e.Updated, e.Meta,
		e.Deleted, e.Unchanged, progress.Bytes(e.BytesWritten), e.Duration.Round(time.Millisecond))
	if e.Patched > 0 {
		fmt.Fprintf(out, "%d large file(s) patched: %s sent of their %s\n", e.Patched, progress.Bytes(e.PatchSent), progress.Bytes(e.PatchSize))
	}
	if e.Extra > 0 {
		fmt.Fprintf(out, "%d entries the snapshot lacks were left in %s; add --delete to remove them\n", e.Extra, e.Target)
	}
}

func (r *Events) urlChecked(e cairn.URLChecked) {
	if e.Err != nil {
		fmt.Fprintf(r.Err, "note: %s is not reachable from here, so the copy was not checked (%v)\n", e.URL, e.Err)
		return
	}
	if !r.JSON {
		fmt.Fprintf(r.Out, "%s answers HTTP %s\n", e.URL, e.StatusText)
	}
	if e.Status >= 500 {
		fmt.Fprintf(r.Err, "warning: %s answers %s: the copy may not work. Try: look at the web server's error log\n", e.URL, e.StatusText)
	}
}

// EventJSON is e as NDJSON shows it: ok is false for the events shown as
// text on stderr even then (warnings, notes), and v is nil for those not
// shown at all.
func EventJSON(e cairn.Event) (v any, ok bool) {
	switch e := e.(type) {
	case cairn.FileChange:
		return Change{MessageType: e.Type(), Op: e.Op, Path: e.Path, PathBytes: rawBytes(e.Path), Size: e.Size, Dir: e.Dir}, true
	case cairn.RewritePair:
		return RewritePair{MessageType: e.Type(), From: e.From, To: e.To, DryRun: e.DryRun}, true
	case cairn.DatabasePlanned:
		j := DatabaseResult{MessageType: e.Type(), Name: e.Name, Target: e.Target, DryRun: true, Tables: e.Tables, Rows: e.Rows, DumpBytes: e.DumpBytes, LoadInto: "scratch_database"}
		if e.InPlace {
			j.LoadInto, j.Why = "scratch_tables", e.Why
			if strings.HasPrefix(e.Target, "postgres") {
				j.LoadInto = "scratch_schemas"
			}
		}
		return j, true
	case cairn.DatabaseRestored:
		j := DatabaseResult{MessageType: e.Type(), Name: e.Name, Target: e.Target, Tables: e.Tables, Rows: e.Rows, DumpBytes: e.DumpBytes,
			ChecksumsDiffer: e.ChecksumsDiffer, DurationSec: e.Duration.Seconds()}
		if d := e.Delta; d != nil {
			j.Delta = &DeltaResult{Base: d.Base.ID, Removed: d.Removed, Added: d.Added, Tables: d.Tables, BaseDumpRead: d.BaseDumpRead}
		}
		return j, true
	case cairn.ConfigChange:
		return map[string]any{"message_type": e.Type(), "file": e.File, "key": e.Key, "value": e.Value, "dry_run": e.DryRun}, true
	case cairn.ActionRun:
		return map[string]any{"message_type": e.Type(), "action": e.Action.String(), "dry_run": e.DryRun}, true
	case cairn.FilesRestored:
		return RestoreSummary{MessageType: e.Type(), Snapshot: e.Snapshot.ID, Target: e.Target, DryRun: e.DryRun,
			Added: e.Added, Updated: e.Updated, Meta: e.Meta, Deleted: e.Deleted, Unchanged: e.Unchanged,
			Extra: e.Extra, BytesWritten: e.BytesWritten, Patched: e.Patched, PatchSent: e.PatchSent, DurationSec: e.Duration.Seconds()}, true
	case cairn.DeltaPlanned:
		return DeltaPlan{MessageType: e.Type(), Name: e.Name, Target: e.Target, Base: e.Base.ID, Whole: e.Whole}, true
	case cairn.SafetyFromState:
		return SafetyPlan{MessageType: e.Type(), Target: e.Target, TablesKept: e.Kept, TablesDumped: e.Dumped}, true
	case cairn.CloneSummary:
		return CloneSummary{MessageType: e.Type(), Source: e.Source, Target: e.Target, DryRun: e.DryRun, Snapshot: e.Snapshot,
			SafetySnapshot: e.SafetySnapshot, URLStatus: e.URLStatus, Seconds: e.Seconds, FilesWritten: e.FilesWritten,
			FilesDeleted: e.FilesDeleted, BytesWritten: e.BytesWritten, Rows: e.Rows, Replacements: e.Replacements}, true
	case cairn.SafetySnapshot:
		return nil, true // the clone's summary names it
	case cairn.PlanStep:
		return map[string]any{"message_type": e.Type(), "text": e.Text}, true
	}
	return nil, false
}

// Change is one planned or made restore change.
type Change struct {
	MessageType string `json:"message_type"` // "change"
	Op          string `json:"op"`           // add, update, meta, delete
	Path        string `json:"path"`
	PathBytes   []byte `json:"path_bytes,omitempty"` // see Entry
	Size        int64  `json:"size,omitempty"`
	Dir         bool   `json:"dir,omitempty"`
}

// DatabaseResult is one database a restore replaced (or would).
type DatabaseResult struct {
	MessageType     string       `json:"message_type"` // "database"
	Name            string       `json:"name"`
	Target          string       `json:"target"`
	DryRun          bool         `json:"dry_run"`
	Tables          int          `json:"tables"`
	Rows            int64        `json:"rows"`
	DumpBytes       int64        `json:"dump_bytes"`
	ChecksumsDiffer []string     `json:"checksums_differ,omitempty"`
	DurationSec     float64      `json:"duration_seconds"`
	Delta           *DeltaResult `json:"delta,omitempty"` // only changed rows were loaded
	// LoadInto, in a dry run's plan: "scratch_database" (beside the
	// target), or inside it for the reason Why: "scratch_tables" (MySQL,
	// MariaDB) or "scratch_schemas" (PostgreSQL, in one transaction).
	LoadInto string `json:"load_into,omitempty"`
	Why      string `json:"why,omitempty"`
}

// DeltaResult tells, in a database's result, that only changed rows were
// loaded.
type DeltaResult struct {
	Base    string `json:"base"` // the snapshot the target held
	Removed int    `json:"rows_removed"`
	Added   int    `json:"rows_added"`
	Tables  int    `json:"tables"`
	// BaseDumpRead: the base's dump was read back to compare (no index
	// of its rows was kept, or it was damaged).
	BaseDumpRead bool `json:"base_dump_read,omitempty"`
}

// SafetyPlan is a target database whose safety snapshot would take what
// the last clone kept.
type SafetyPlan struct {
	MessageType  string `json:"message_type"` // "safety_from_state"
	Target       string `json:"target"`
	TablesKept   int    `json:"tables_kept"`
	TablesDumped int    `json:"tables_dumped"`
}

// DeltaPlan is a database a clone would update row by row.
type DeltaPlan struct {
	MessageType string   `json:"message_type"` // "database_delta"
	Name        string   `json:"name"`
	Target      string   `json:"target"`
	Base        string   `json:"base"`
	Whole       []string `json:"whole,omitempty"` // tables changed since, loaded whole
}

// RewritePair is one rewrite a restore applies to databases.
type RewritePair struct {
	MessageType string `json:"message_type"` // "rewrite_pair"
	From        string `json:"from"`
	To          string `json:"to"`
	DryRun      bool   `json:"dry_run"`
}

// RestoreSummary ends a restore's stream.
type RestoreSummary struct {
	MessageType  string `json:"message_type"` // "summary"
	Snapshot     string `json:"snapshot"`
	Target       string `json:"target"`
	DryRun       bool   `json:"dry_run"`
	Added        int64  `json:"added"`
	Updated      int64  `json:"updated"`
	Meta         int64  `json:"attributes_fixed"`
	Deleted      int64  `json:"deleted"`
	Unchanged    int64  `json:"unchanged"`
	Extra        int64  `json:"extra_kept"` // what the snapshot lacks, left without --delete
	BytesWritten int64  `json:"bytes_written"`
	// Patched are the large files of which only the changed blocks were
	// sent, PatchSent bytes in all.
	Patched     int64   `json:"patched"`
	PatchSent   int64   `json:"patched_bytes_sent"`
	DurationSec float64 `json:"duration_seconds"`
}

// CloneSummary ends a clone's stream.
type CloneSummary struct {
	MessageType    string             `json:"message_type"` // "clone_summary"
	Source         string             `json:"source"`
	Target         string             `json:"target"`
	DryRun         bool               `json:"dry_run"`
	Snapshot       string             `json:"snapshot"`
	SafetySnapshot string             `json:"safety_snapshot,omitempty"`
	URLStatus      int                `json:"url_status,omitempty"` // 0: not reachable or not checked
	Seconds        map[string]float64 `json:"seconds"`              // per stage, and total
	FilesWritten   int64              `json:"files_written"`        // added or updated in the target
	FilesDeleted   int64              `json:"files_deleted"`
	BytesWritten   int64              `json:"bytes_written"`
	Rows           int64              `json:"rows"`         // in the databases, checked against the snapshot
	Replacements   int64              `json:"replacements"` // URL and path rewrites in the databases
}
