package database

import (
	"context"
	"fmt"
	"os"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/postgres"
)

// Inspection is what a preflight learns of a database, the engine's
// details put the same way for every engine.
type Inspection struct {
	Server      string // the server's version
	Tool        string // the dump tool's path here ("" if none)
	ToolVersion string
	User        string // as the server knows it
	// Mismatch says how the dump tool and the server may not agree.
	Mismatch string
	// NoSnapshot and NoRestore say what keeps the user from a snapshot
	// of the database, and from a restore onto it (missing privileges,
	// unreadable tables).
	NoSnapshot, NoRestore []string
	// Definers are objects another user defined, whom a restore cannot
	// keep as their DEFINER.
	Definers []string
	// InPlace: a restore loads into scratch tables (or a schema) inside
	// the database, not a scratch database beside it; Why says why.
	InPlace bool
	Why     string
	// Serial: a snapshot dumps on one connection only (MySQL: the user
	// lacks RELOAD for a parallel dump).
	Serial bool
}

// Inspect connects to db (through its SSH host, if it has one) and
// looks at what a snapshot or a restore would trip over. It changes
// nothing.
func Inspect(ctx context.Context, db cairn.Database) (Inspection, error) {
	switch d := db.(type) {
	case mysqlDB:
		c, err := d.conn(ctx)
		if err != nil {
			return Inspection{}, err
		}
		in, err := mysql.Inspect(ctx, c)
		return Inspection{Server: in.Server, Tool: in.Tool, ToolVersion: in.ToolVersion, User: in.User, Mismatch: in.Mismatch,
			NoSnapshot: in.MissingSnapshot, NoRestore: in.MissingRestore, Definers: in.Definers, InPlace: in.InPlace, Why: in.Why, Serial: in.Serial}, err
	case postgresDB:
		c, err := d.conn(ctx)
		if err != nil {
			return Inspection{}, err
		}
		in, err := postgres.Inspect(ctx, c)
		out := Inspection{Server: in.Server, Tool: in.Tool, ToolVersion: in.ToolVersion, User: in.User, Mismatch: in.Mismatch, NoRestore: in.MissingRestore,
			InPlace: in.InPlace, Why: in.Why}
		for _, t := range in.Unreadable {
			out.NoSnapshot = append(out.NoSnapshot, "SELECT on "+t)
		}
		return out, err
	case sqliteDB:
		f, err := os.Open(d.c.Path)
		if err != nil {
			return Inspection{}, fmt.Errorf("%s: %w", d.c.Path, err)
		}
		f.Close()
		return Inspection{Server: "SQLite file " + d.c.Path}, nil
	}
	return Inspection{}, fmt.Errorf("%s: no preflight for this engine", db)
}
