package main

import (
	"encoding/json"
	"io"
	"time"
	"unicode/utf8"

	"github.com/cairn-backup/cairn"
)

// snapshotJSON is a snapshot as --json shows it. Fields are added, never
// renamed.
type snapshotJSON struct {
	ID          string         `json:"id"`
	ShortID     string         `json:"short_id"`
	Time        string         `json:"time"`
	Site        string         `json:"site"`
	Environment string         `json:"environment"`
	URL         string         `json:"url,omitempty"`
	Host        string         `json:"host"`
	Source      string         `json:"source"`
	Version     string         `json:"cairn_version"`
	Files       int64          `json:"files"`
	Dirs        int64          `json:"dirs"`
	Bytes       int64          `json:"bytes"`
	DurationSec float64        `json:"duration_seconds"`
	Warnings    []string       `json:"warnings,omitempty"`
	Databases   []databaseJSON `json:"databases,omitempty"`
	App         *appJSON       `json:"app,omitempty"`
	// Damaged: repository damage took data from this snapshot (cairn
	// repair recorded it); LostPaths says which.
	Damaged   bool     `json:"damaged"`
	LostPaths []string `json:"lost_paths,omitempty"`
}

// databaseJSON is one database of a snapshot.
type databaseJSON struct {
	Name   string      `json:"name"`
	Engine string      `json:"engine"`
	DSN    string      `json:"dsn"`
	Bytes  int64       `json:"dump_bytes"`
	Tables int         `json:"tables"`
	Rows   int64       `json:"rows"`
	Stats  []tableJSON `json:"table_stats,omitempty"` // show only
}

type tableJSON struct {
	Name     string `json:"name"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum,omitempty"`
}

type appJSON struct {
	Name       string            `json:"name"`
	Version    string            `json:"version,omitempty"`
	Components map[string]string `json:"components,omitempty"` // show only
}

func toJSON(s *cairn.Snapshot) snapshotJSON {
	out := snapshotJSON{
		ID: s.ID, ShortID: s.ShortID(), Time: s.Time.Format(time.RFC3339), Site: s.Site,
		Environment: s.Environment, URL: s.URL, Host: s.Host, Source: s.Source, Version: s.Version,
		Files: s.Files, Dirs: s.Dirs, Bytes: s.Bytes, DurationSec: s.Duration.Seconds(), Warnings: s.Warnings,
		Damaged: s.Damaged != nil, LostPaths: s.Damaged,
	}
	for _, d := range s.Databases {
		out.Databases = append(out.Databases, databaseJSON{Name: d.Name, Engine: d.Engine, DSN: d.DSN, Bytes: d.Bytes, Tables: d.Tables, Rows: d.Rows})
	}
	if s.App != nil {
		out.App = &appJSON{Name: s.App.Name, Version: s.App.Version, Components: s.App.Components}
	}
	return out
}

// entryJSON is one tree entry as `cairn ls --json` shows it.
type entryJSON struct {
	Path string `json:"path"`
	// PathBytes is the path's bytes (base64) when they are not UTF-8,
	// which JSON strings cannot hold: Path then shows them as U+FFFD.
	PathBytes []byte `json:"path_bytes,omitempty"`
	Type      string `json:"type"` // file, dir, symlink, other
	Mode      string `json:"mode"`
	Size      int64  `json:"size"`
	ModTime   string `json:"mtime"`
	Target    string `json:"target,omitempty"`
}

// changeJSON is one planned or made restore change.
type changeJSON struct {
	MessageType string `json:"message_type"` // "change"
	Op          string `json:"op"`
	Path        string `json:"path"`
	PathBytes   []byte `json:"path_bytes,omitempty"` // see entryJSON
	Size        int64  `json:"size,omitempty"`
	Dir         bool   `json:"dir,omitempty"`
}

// rawBytes returns s's bytes when s is not UTF-8 (see entryJSON).
func rawBytes(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

// databaseRestoreJSON is one database a restore replaced (or would).
type databaseRestoreJSON struct {
	MessageType     string     `json:"message_type"` // "database"
	Name            string     `json:"name"`
	Target          string     `json:"target"`
	DryRun          bool       `json:"dry_run"`
	Tables          int        `json:"tables"`
	Rows            int64      `json:"rows"`
	DumpBytes       int64      `json:"dump_bytes"`
	ChecksumsDiffer []string   `json:"checksums_differ,omitempty"`
	DurationSec     float64    `json:"duration_seconds"`
	Delta           *deltaJSON `json:"delta,omitempty"` // only changed rows were loaded
}

// deltaJSON tells, in a database's restore report, that only changed rows
// were loaded.
type deltaJSON struct {
	Base    string `json:"base"` // the snapshot the target held
	Removed int    `json:"rows_removed"`
	Added   int    `json:"rows_added"`
	Tables  int    `json:"tables"`
	// BaseDumpRead: the base's dump was read back to compare (no index
	// of its rows was kept, or it was damaged).
	BaseDumpRead bool `json:"base_dump_read,omitempty"`
}

// safetyPlanJSON is a target database whose safety snapshot would take
// what the last clone kept.
type safetyPlanJSON struct {
	MessageType  string `json:"message_type"` // "safety_from_state"
	Target       string `json:"target"`
	TablesKept   int    `json:"tables_kept"`
	TablesDumped int    `json:"tables_dumped"`
}

// deltaPlanJSON is a database a clone would update row by row.
type deltaPlanJSON struct {
	MessageType string   `json:"message_type"` // "database_delta"
	Name        string   `json:"name"`
	Target      string   `json:"target"`
	Base        string   `json:"base"`
	Whole       []string `json:"whole,omitempty"` // tables changed since, loaded whole
}

// rewritePairJSON is one rewrite a restore applies to databases.
type rewritePairJSON struct {
	MessageType string `json:"message_type"` // "rewrite_pair"
	From        string `json:"from"`
	To          string `json:"to"`
	DryRun      bool   `json:"dry_run"`
}

// restoreSummaryJSON ends `cairn restore --json`.
type restoreSummaryJSON struct {
	MessageType  string  `json:"message_type"` // "summary"
	Snapshot     string  `json:"snapshot"`
	Target       string  `json:"target"`
	DryRun       bool    `json:"dry_run"`
	Added        int64   `json:"added"`
	Updated      int64   `json:"updated"`
	Meta         int64   `json:"attributes_fixed"`
	Deleted      int64   `json:"deleted"`
	Unchanged    int64   `json:"unchanged"`
	Extra        int64   `json:"extra_kept"` // what the snapshot lacks, left without --delete
	BytesWritten int64   `json:"bytes_written"`
	DurationSec  float64 `json:"duration_seconds"`
}

func jsonLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
