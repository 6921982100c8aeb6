package clone

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/rewrite"
)

// Records are what clones left in their target databases, kept beside
// the repository's state (never in it). They are files of cairn's own
// state directory (0700, cairn's, never a restore's target: site.Guard
// refuses one there, and no site's user can write it), so they are
// written by path, not through a target's directory handles: for each target, a record of the
// snapshot loaded and the tables' UPDATE_TIMEs after the clone, the row
// index of the dump loaded, and (in the repository, as state) a dump of
// what the target held after the load. The next clone onto the target
// uses them to load only what changed (see delta.go) and to take the
// safety snapshot from what was kept (see state.go). Anything else that
// replaces a target database must Invalidate its records first.
type Records struct {
	r   *repo.Repo
	log *slog.Logger
}

// NewRecords returns the records kept for repository r.
func NewRecords(r *repo.Repo, log *slog.Logger) *Records {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Records{r: r, log: log}
}

// record is what a clone left in one target database.
type record struct {
	Target   string            `json:"target"`   // the DSN without its password
	Snapshot string            `json:"snapshot"` // the source snapshot loaded
	Database string            `json:"database"` // its name in that snapshot
	Pairs    []rewrite.Pair    `json:"pairs"`
	Updated  map[string]string `json:"updated"` // table → UPDATE_TIME after the clone
	Time     time.Time         `json:"time"`
	// What the target was loaded from, kept (see state.go).
	Loaded      string            `json:"loaded,omitempty"`       // the state's ID
	LoadedTimes map[string]string `json:"loaded_times,omitempty"` // table → UPDATE_TIME right after the load
	Schema      string            `json:"schema,omitempty"`       // fingerprint right after the load
}

// Invalidate forgets what the last clone left in db: it no longer holds
// (a restore is about to replace it).
func (rs *Records) Invalidate(ctx context.Context, db cairn.Database) {
	os.Remove(rs.path(db)) // in cairn's state directory (see Records)
	rs.writeRowIndex(db, "", nil)
	if err := rs.r.DropState(ctx, stateKey(db)); err != nil {
		rs.log.Info("dropping what the last clone kept failed", "target", db.String(), "err", err)
	}
}

func (rs *Records) dir() string { return filepath.Join(rs.r.StateDir(), "clones") }

func (rs *Records) path(db cairn.Database) string {
	return filepath.Join(rs.dir(), recordName(db.String())+".json")
}

func recordName(target string) string {
	sum := sha256.Sum256([]byte(target))
	return hex.EncodeToString(sum[:8])
}

// stateKey names the state kept for a target database.
func stateKey(to cairn.Database) string {
	return "clone/" + recordName(to.String())
}

// read returns the record of db, if there is one for it.
func (rs *Records) read(db cairn.Database) (record, bool) {
	b, err := os.ReadFile(rs.path(db))
	if err != nil {
		return record{}, false
	}
	var rec record
	if json.Unmarshal(b, &rec) != nil || rec.Target != db.String() {
		return record{}, false
	}
	return rec, true
}

// write keeps rec as db's record, with x, the index of the dump loaded;
// a failure only costs the next clone its delta.
func (rs *Records) write(db cairn.Database, rec record, x cairn.RowIndex) {
	path := rs.path(db)
	b, err := json.Marshal(rec)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil { // cairn's state (see Records)
			err = os.WriteFile(path, b, 0o600)
		}
	}
	if err != nil {
		rs.log.Info("noting what the clone left failed; the next clone loads the whole database", "target", db.String(), "err", err)
		return
	}
	rs.writeRowIndex(db, rec.Snapshot, x)
}

// A clone also keeps, beside its record, the row index of the dump it
// loaded (see cairn.Incremental), so that the next delta need not read that
// dump back from the repository.

func (rs *Records) rowIndexPath(db cairn.Database, snapshot string) string {
	return filepath.Join(rs.dir(), recordName(db.String())+"-"+snapshot+".rows")
}

// writeRowIndex keeps the index of snapshot's dump for db, in place of
// any other; nil removes them. A failure costs the next delta a read. The
// files are cairn's state's, written by path (see Records).
func (rs *Records) writeRowIndex(db cairn.Database, snapshot string, x cairn.RowIndex) {
	old, _ := filepath.Glob(filepath.Join(rs.dir(), recordName(db.String())+"-*.rows"))
	for _, f := range old {
		os.Remove(f) // in cairn's state directory (see Records), never a target
	}
	if x == nil {
		return
	}
	path := rs.rowIndexPath(db, snapshot)
	f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // cairn's state (see Records)
	if err != nil {
		return
	}
	_, err = x.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path) // cairn's state (see Records)
	}
	if err != nil {
		os.Remove(path + ".tmp") // cairn's state (see Records)
	}
}

// readRowIndex returns the kept index of snapshot's dump for db, or nil.
func (rs *Records) readRowIndex(db cairn.Database, snapshot string) cairn.RowIndex {
	inc, ok := db.(cairn.Incremental)
	if !ok {
		return nil
	}
	f, err := os.Open(rs.rowIndexPath(db, snapshot))
	if err != nil {
		return nil
	}
	defer f.Close()
	x, err := inc.ReadRowIndex(bufio.NewReader(f))
	if err != nil {
		return nil
	}
	return x
}
