package cairn

import "time"

// Reporter receives what the engine does, as it does it: stages of work
// with their progress, and events (changes planned or made, databases
// restored, warnings, summaries). The CLI renders them as progress bars
// and lines of text or as NDJSON, the agent writes them to its journal.
// A Reporter is safe for concurrent use (a clone's stages run at once),
// never fails and never blocks for long: rendering is not the engine's
// concern, and the engine writes nowhere else.
type Reporter interface {
	// Stage starts a stage of work, named for people ("snapshot
	// blog/production", "database wp"): its progress goes to the
	// returned Stage, which End closes.
	Stage(name string) Stage
	// Event reports one thing planned or done.
	Event(e Event)
}

// Stage is one stage of work in progress.
type Stage interface {
	Progress
	// End closes the stage; its bar, if any, is drawn no more.
	End()
}

// Event is one of the event types below. Type is its message_type in
// NDJSON output.
type Event interface{ Type() string }

// Discard is a Reporter that drops everything.
var Discard Reporter = discard{}

type discard struct{}

func (discard) Stage(string) Stage { return noStage{} }
func (discard) Event(Event)        {}

type noStage struct{ NoProgress }

func (noStage) End() {}

// FileChange is a change of a restore's files, as a dry run plans it.
type FileChange struct {
	Op   string // add, update, meta, delete
	Path string // relative to the target, slash-separated
	Size int64  // bytes written (add, update) or removed (delete)
	Dir  bool
}

// RewritePair is one rewrite a restore applies to the databases.
type RewritePair struct {
	From, To string
	DryRun   bool
}

// DatabasePlanned is a database a dry run would replace.
type DatabasePlanned struct {
	Name, Target    string // the snapshot's name for it; the target without its password
	Tables          int
	Rows, DumpBytes int64
	// InPlace: the load goes to scratch tables inside the target, not a
	// scratch database beside it, for the reason Why.
	InPlace bool
	Why     string
}

// DatabaseRestored is a database replaced by a snapshot's dump (or
// brought up to it row by row: Delta).
type DatabaseRestored struct {
	Name, Target    string
	Tables          int
	Rows, DumpBytes int64
	// ChecksumsDiffer are tables whose rows match the snapshot's but whose
	// checksums do not.
	ChecksumsDiffer []string
	Duration        time.Duration
	Delta           *Delta
}

// Delta says that only the rows that changed since Base were loaded.
type Delta struct {
	Base                   *Snapshot // what the target held
	Removed, Added, Tables int
	// BaseDumpRead: Base's dump was read back to compare (no index of
	// its rows was kept, or it could not be used), which takes longer.
	BaseDumpRead bool
}

// Rewritten is what the rewrite of one database's dump did.
type Rewritten struct {
	Database        string
	Matches, Values int64
}

// ConfigChange is a setting changed (or, in a dry run, to be changed) in
// the copy's own configuration files.
type ConfigChange struct {
	File, Key, Value string
	DryRun           bool
}

// ActionRun is an after_restore action done (or, in a dry run, planned).
type ActionRun struct {
	Action Action
	DryRun bool
}

// FilesRestored ends the files' part of a restore.
type FilesRestored struct {
	Snapshot                                 *Snapshot
	Target                                   string // the directory, as named
	DryRun                                   bool
	Added, Updated, Meta, Deleted, Unchanged int64
	// Extra are entries the snapshot lacks that were left in place
	// (no deletion asked for).
	Extra        int64
	BytesWritten int64
	// Patched are the updated files of which only the changed blocks
	// were sent: PatchSent bytes of their PatchSize.
	Patched, PatchSent, PatchSize int64
	Duration                      time.Duration
}

// SafetySnapshot is the snapshot a clone took of its target before
// changing it.
type SafetySnapshot struct {
	Environment string
	Snapshot    *Snapshot
}

// URLChecked is the answer of a copy's URL after a clone (Status 0 when
// it could not be reached: Err says why).
type URLChecked struct {
	URL        string
	Status     int
	StatusText string
	Err        error
}

// DeltaPlanned is a database a clone would bring up to date row by row
// (a dry run's plan).
type DeltaPlanned struct {
	Name, Target string
	Base         *Snapshot
	Whole        []string // tables changed since on the target: loaded whole
}

// SafetyFromState is a database whose safety snapshot takes (or, in a dry
// run, would take) what the last clone kept, dumping only the tables
// changed since.
type SafetyFromState struct {
	Target       string
	Kept, Dumped int // tables taken from the state, and dumped
}

// CloneSummary ends a clone.
type CloneSummary struct {
	Source, Target                                               string
	DryRun                                                       bool
	Snapshot                                                     string
	SafetySnapshot                                               string
	URLStatus                                                    int
	Seconds                                                      map[string]float64 // per stage, and total
	FilesWritten, FilesDeleted, BytesWritten, Rows, Replacements int64
}

// PlanStep is one step of a plan outlined in words (a dry run that has
// too little to plan the details with).
type PlanStep struct{ Text string }

// Warning is something the user should look at; the work went on.
type Warning struct{ Message string }

// Notice is something worth knowing.
type Notice struct{ Message string }

func (FileChange) Type() string       { return "change" }
func (RewritePair) Type() string      { return "rewrite_pair" }
func (DatabasePlanned) Type() string  { return "database" }
func (DatabaseRestored) Type() string { return "database" }
func (Rewritten) Type() string        { return "rewritten" }
func (ConfigChange) Type() string     { return "config_change" }
func (ActionRun) Type() string        { return "action" }
func (FilesRestored) Type() string    { return "summary" }
func (SafetySnapshot) Type() string   { return "safety_snapshot" }
func (URLChecked) Type() string       { return "url_check" }
func (DeltaPlanned) Type() string     { return "database_delta" }
func (SafetyFromState) Type() string  { return "safety_from_state" }
func (CloneSummary) Type() string     { return "clone_summary" }
func (PlanStep) Type() string         { return "plan_step" }
func (Warning) Type() string          { return "warning" }
func (Notice) Type() string           { return "notice" }
