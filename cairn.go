// Package cairn holds the vocabulary shared by every other package: sites,
// environments, snapshots, selectors, the interfaces between layers and the
// errors a user can act on. It imports nothing heavy; the technologies live
// in their own packages (repo, config, files, …) and the wiring in cmd/cairn.
package cairn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// Version is cairn's version, stamped into every snapshot.
var Version = "0.1.0-dev"

// Errors a user can act on. Each layer wraps them with context; the CLI maps
// them to exit codes in one place.
var (
	ErrNotFound        = errors.New("not found")
	ErrRepoNotFound    = errors.New("repository not found")
	ErrWrongPassword   = errors.New("wrong repository password")
	ErrNoPassword      = errors.New("no repository password given")
	ErrLocked          = errors.New("locked by another cairn process")
	ErrProtected       = errors.New("environment is protected")
	ErrAmbiguous       = errors.New("ambiguous snapshot selector")
	ErrIncomplete      = errors.New("snapshot incomplete")
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrDamaged: the repository is damaged (cairn check found damage, or
	// its format blob cannot be read). The message says what to do.
	ErrDamaged = errors.New("repository damaged")
	// ErrInUse: a database restore found the target held by other
	// sessions and left it as it was.
	ErrInUse = errors.New("database in use")
)

// Snapshot is one environment at one moment, as recorded in the repository.
// Only complete snapshots exist as values of this type: a snapshot that did
// not finish is never listed.
type Snapshot struct {
	ID          string         // repository-wide unique ID (hex)
	Time        time.Time      // when the snapshot started
	Site        string         // site name ("blog")
	Environment string         // environment name ("production")
	URL         string         // the environment's URL, if known
	Host        string         // the machine that took the snapshot
	Source      string         // where the files came from (path or ssh URL)
	Version     string         // cairn version that wrote it
	Files       int64          // regular files in the tree
	Dirs        int64          // directories in the tree
	Bytes       int64          // bytes in regular files
	Duration    time.Duration  // wall time taken
	Warnings    []string       // non-fatal problems (files that changed while read)
	Databases   []DatabaseInfo // the databases dumped with the files
	App         *AppInfo       // the application found in the files (Components not loaded); nil if none
	// Damaged lists the paths this snapshot lost to repository damage
	// (as cairn repair recorded them: file paths, "database NAME");
	// nil when it is whole.
	Damaged []string
}

// DatabaseInfo is one database as a snapshot recorded it.
type DatabaseInfo struct {
	Name   string // unique within the snapshot: the database's name
	Engine string // mysql, postgres or sqlite
	DSN    string // where it was dumped from, without its password
	Bytes  int64  // size of the SQL dump
	Tables int    // tables recorded (views not counted)
	Rows   int64  // rows in all tables
}

// AppInfo is the web application found in a snapshot's files.
type AppInfo struct {
	Name    string // wordpress, drupal, laravel, elgg
	Version string // "" when unknown
	// Components are plugins and themes with their versions:
	// "plugin/akismet" → "5.3".
	Components map[string]string
}

// Database is one database of an environment, reached through its
// engine's own tools.
type Database interface {
	// Engine is "mysql", "postgres" or "sqlite".
	Engine() string
	// Name is the database's name (for SQLite, the file's base name).
	Name() string
	// String is the DSN without its password, for people.
	String() string
	// Dump streams a consistent SQL dump to w and returns the stats of the
	// dumped tables: rows counted from the dump itself, and checksums
	// where the engine has a cheap one. The dump is complete only if err
	// is nil.
	Dump(ctx context.Context, w io.Writer) ([]TableStat, error)
	// Replace makes the database hold dump: it is loaded into a scratch
	// database beside it, checked by verify, and only then swapped in
	// atomically. Until the swap, any failure or cancellation leaves the
	// database as it was and removes the scratch copy.
	Replace(ctx context.Context, dump io.Reader, verify Verify) error
	// Exec runs SQL statements with the engine's own client.
	Exec(ctx context.Context, statements string) error
}

// PartedDumper is implemented by databases that can dump on several
// connections at once, inside one consistent snapshot: each connection's
// part goes to its own writer, the dump being the parts' outputs one after
// the other. parts(n) returns the n writers and is called once; a
// database that cannot share its dump now asks for one. A writer that is
// also an io.Closer is closed as soon as its part is written whole, while
// other parts may still be dumping (never when the part failed; a part
// left open ends with DumpParts). It returns what Dump does.
type PartedDumper interface {
	DumpParts(ctx context.Context, parts func(n int) []io.Writer) ([]TableStat, error)
}

// PartedReplacer is implemented by databases that can load a dump's
// parts (see PartedDumper) at once: ReplaceParts is Replace of the parts'
// concatenation.
type PartedReplacer interface {
	ReplaceParts(ctx context.Context, parts []io.Reader, verify Verify) error
}

// ShortID is the abbreviated ID shown to people.
func (s *Snapshot) ShortID() string {
	if len(s.ID) > 8 {
		return s.ID[:8]
	}
	return s.ID
}

// Name is SITE/ENV.
func (s *Snapshot) Name() string { return s.Site + "/" + s.Environment }

// Node is one entry of a snapshot's file tree: a directory, a regular file or
// a symbolic link. Nodes are read-only views into the repository.
type Node interface {
	Name() string
	// Mode holds the type bits (fs.ModeDir, fs.ModeSymlink) and permissions.
	Mode() fs.FileMode
	Size() int64
	ModTime() time.Time
	// Children lists a directory's entries sorted by name. It fails for
	// anything that is not a directory.
	Children(ctx context.Context) ([]Node, error)
	// Open streams a regular file's content.
	Open(ctx context.Context) (io.ReadCloser, error)
	// Readlink returns a symbolic link's target.
	Readlink(ctx context.Context) (string, error)
}

// ReadPlanner is implemented by snapshot trees whose files are much faster
// to read in storage order than in tree order (files stored in packs, far
// away). Restore hands it batches of files it is about to read and reads
// them in the order returned: a permutation of the indexes of files. The
// planner may start fetching them. It never fails: reading works the same
// in any order.
type ReadPlanner interface {
	PlanReads(ctx context.Context, files []Node) []int
}

// FileInfo describes one entry of a file tree.
type FileInfo struct {
	Name    string
	Mode    fs.FileMode // type bits and permissions
	Size    int64
	ModTime time.Time
	// Dev, Ino and Nlink identify a local file's inode, for hard links;
	// zero where the tree has none. Nlink 0 means the file's other names
	// are unknown (a tree over SFTP): it may have some, so a restore
	// never changes it in place.
	Dev, Ino, Nlink uint64
}

// Tree is a file tree to read: a directory on this machine or on another
// host (over SFTP). Paths are relative, slash-separated, "" being the
// root; nothing is followed through a symbolic link. Missing entries are
// reported with errors satisfying errors.Is(err, fs.ErrNotExist). Every
// method may do I/O over a network: ctx bounds it.
type Tree interface {
	// Lstat describes one entry without following symbolic links.
	Lstat(ctx context.Context, rel string) (FileInfo, error)
	// ReadDir lists a directory's entries, in no particular order.
	ReadDir(ctx context.Context, rel string) ([]FileInfo, error)
	// Open reads a regular file.
	Open(ctx context.Context, rel string) (io.ReadCloser, error)
	// Readlink returns a symbolic link's target.
	Readlink(ctx context.Context, rel string) (string, error)
	// String names the tree for messages (a path, an ssh:// URL).
	String() string
}

// SnapshotRequest describes one snapshot to take.
type SnapshotRequest struct {
	Site, Environment string
	URL               string
	// Path is the local directory holding the files; when Tree is set,
	// the files are read from it instead and Path is where it lives
	// (ssh://user@host/path), for the record.
	Path      string
	Tree      Tree
	Exclude   []string // gitignore-style patterns, relative to Path
	Databases []Database
	App       *AppInfo // recorded with the snapshot when not nil
	// Hints are IDs of snapshots this tree was probably restored from:
	// files with the same size and time as there are taken from them
	// without being read, as from an earlier snapshot of the same tree.
	Hints []string
	// Mirror, when not nil, is given a copy of each file as the snapshot
	// reads it.
	Mirror FileMirror
	// Warnings are recorded with the snapshot's own (what was found
	// before it was taken: web nodes whose files differ).
	Warnings []string
	// Protect lists absolute, resolved paths never snapshotted: cairn's
	// own repository, keys and state. One that lies inside Path is left
	// out, and the snapshot's warnings say so.
	Protect []string
	// ProtectIDs are the same files' inodes (device, number): a directory
	// of the tree that is one (a bind mount of the repository) is left
	// out too.
	ProtectIDs [][2]uint64
}

// FileMirror receives copies of the files a snapshot reads (a clone writes
// its target's files from them). A mirror must never slow a snapshot down
// by failing: it drops what it cannot copy.
type FileMirror interface {
	// MirrorFile is called as the snapshot starts reading the file rel
	// (slash-separated, relative to the snapshot's root), recorded with
	// mode, size and mtime; it returns where to copy the file's bytes,
	// or nil to leave the file alone.
	MirrorFile(rel string, mode fs.FileMode, size int64, mtime time.Time) MirrorWriter
}

// MirrorWriter takes one file's bytes in order. Its Write never fails.
type MirrorWriter interface {
	io.Writer
	// Finish is called once, when reading is over: complete says the
	// file was read whole, from start to end, and did not change
	// meanwhile.
	Finish(complete bool)
}

// Progress receives counts as work proceeds. Implementations must be safe
// for concurrent use. A nil Progress is never passed: use NoProgress.
type Progress interface {
	// Total announces the estimated amount of work (may be called again
	// with a better estimate).
	Total(files, bytes int64)
	// Done reports finished work.
	Done(files, bytes int64)
}

// NoProgress discards progress reports.
type NoProgress struct{}

// Visible tells producers that nobody watches, so no estimate is needed.
func (NoProgress) Visible() bool { return false }

func (NoProgress) Total(int64, int64) {}
func (NoProgress) Done(int64, int64)  {}

// Secret is a string that never prints: logs, errors and JSON show
// **redacted** instead of its value. Use Reveal to get the value.
type Secret string

func (s Secret) String() string { return redact(s) }

// GoString keeps %#v from leaking the value.
func (s Secret) GoString() string { return redact(s) }

// MarshalJSON keeps JSON output from leaking the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redact(s) + `"`), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func redact(s Secret) string {
	if s == "" {
		return ""
	}
	return "**redacted**"
}

// TableStat describes one database table as recorded when a snapshot was
// taken: its rows, and a content checksum where the engine offers a cheap
// one ("" otherwise).
type TableStat struct {
	Name     string
	Rows     int64
	Checksum string
}

// ErrMismatch means a restored copy does not match the statistics recorded
// when the snapshot was taken.
var ErrMismatch = errors.New("restored data does not match the snapshot")

// CheckTables compares a loaded copy (got) with the recorded statistics
// (want): every recorded table must be there with as many rows, or err
// wraps ErrMismatch. Tables whose checksums differ (where both sides have
// one) are listed in differ: a table written to while the snapshot was
// taken can have a checksum that no copy of the dump matches, while its
// rows, counted from the dump itself, always must.
func CheckTables(got, want []TableStat) (differ []string, err error) {
	have := make(map[string]TableStat, len(got))
	for _, s := range got {
		have[s.Name] = s
	}
	for _, w := range want {
		g, ok := have[w.Name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: table %s is missing", ErrMismatch, w.Name)
		case g.Rows != w.Rows:
			return nil, fmt.Errorf("%w: table %s has %d rows, the snapshot recorded %d", ErrMismatch, w.Name, g.Rows, w.Rows)
		case w.Checksum != "" && g.Checksum != "" && checksumKind(g.Checksum) == checksumKind(w.Checksum) && g.Checksum != w.Checksum:
			differ = append(differ, w.Name)
		}
	}
	return differ, nil
}

// checksumKind is the kind of a checksum that names one ("kind:value", as
// PostgreSQL's pgsum1), "" for one that does not (an md5, MySQL's
// CHECKSUM TABLE). Checksums of two kinds are not compared: a snapshot
// taken by an earlier version is checked by its row counts.
func checksumKind(sum string) string {
	kind, _, ok := strings.Cut(sum, ":")
	if !ok {
		return ""
	}
	return kind
}

// Verify checks a loaded copy of a database before it is swapped in: an
// error stops the swap and leaves the target as it was.
type Verify func(loaded []TableStat) error

// Expect verifies a loaded copy against want (see CheckTables). With a nil
// differ it is strict: a differing checksum is a mismatch too. Otherwise
// the tables whose checksums differ are added to *differ and the copy
// passes.
func Expect(want []TableStat, differ *[]string) Verify {
	return func(got []TableStat) error {
		d, err := CheckTables(got, want)
		if err != nil {
			return err
		}
		if len(d) > 0 && differ == nil {
			return fmt.Errorf("%w: the checksum of %s differs", ErrMismatch, strings.Join(d, ", "))
		}
		if differ != nil {
			*differ = append(*differ, d...)
		}
		return nil
	}
}

// TableCounts turns per-table row counts into stats, in table name order.
func TableCounts(counts map[string]int64) []TableStat {
	out := make([]TableStat, 0, len(counts))
	for t, n := range counts {
		out = append(out, TableStat{Name: t, Rows: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
