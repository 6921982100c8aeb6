package render

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/progress"
)

// Snapshot is a snapshot as JSON shows it.
type Snapshot struct {
	ID          string     `json:"id"`
	ShortID     string     `json:"short_id"`
	Time        string     `json:"time"`
	Site        string     `json:"site"`
	Environment string     `json:"environment"`
	URL         string     `json:"url,omitempty"`
	Host        string     `json:"host"`
	Source      string     `json:"source"`
	Version     string     `json:"cairn_version"`
	Files       int64      `json:"files"`
	Dirs        int64      `json:"dirs"`
	Bytes       int64      `json:"bytes"`
	DurationSec float64    `json:"duration_seconds"`
	Warnings    []string   `json:"warnings,omitempty"`
	Databases   []Database `json:"databases,omitempty"`
	App         *App       `json:"app,omitempty"`
	// Damaged: repository damage took data from this snapshot (cairn
	// repair recorded it); LostPaths says which.
	Damaged   bool     `json:"damaged"`
	LostPaths []string `json:"lost_paths,omitempty"`
}

// Database is one database of a snapshot.
type Database struct {
	Name   string  `json:"name"`
	Engine string  `json:"engine"`
	DSN    string  `json:"dsn"`
	Bytes  int64   `json:"dump_bytes"`
	Tables int     `json:"tables"`
	Rows   int64   `json:"rows"`
	Stats  []Table `json:"table_stats,omitempty"` // in a Detail only
}

// Table is one table of a snapshot's database.
type Table struct {
	Name     string `json:"name"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum,omitempty"`
}

// App is the application a snapshot found.
type App struct {
	Name       string            `json:"name"`
	Version    string            `json:"version,omitempty"`
	Components map[string]string `json:"components,omitempty"` // in a Detail only
}

// SnapshotJSON is s as JSON shows it.
func SnapshotJSON(s *cairn.Snapshot) Snapshot {
	out := Snapshot{
		ID: s.ID, ShortID: s.ShortID(), Time: s.Time.Format(time.RFC3339), Site: s.Site,
		Environment: s.Environment, URL: s.URL, Host: s.Host, Source: s.Source, Version: s.Version,
		Files: s.Files, Dirs: s.Dirs, Bytes: s.Bytes, DurationSec: s.Duration.Seconds(), Warnings: s.Warnings,
		Damaged: s.Damaged != nil, LostPaths: s.Damaged,
	}
	for _, d := range s.Databases {
		out.Databases = append(out.Databases, Database{Name: d.Name, Engine: d.Engine, DSN: d.DSN, Bytes: d.Bytes, Tables: d.Tables, Rows: d.Rows})
	}
	if s.App != nil {
		out.App = &App{Name: s.App.Name, Version: s.App.Version, Components: s.App.Components}
	}
	return out
}

// Saved says that snapshot s was saved, with its databases.
func Saved(w io.Writer, s *cairn.Snapshot) {
	fmt.Fprintf(w, "snapshot %s of %s saved: %d files, %s, in %s\n", s.ShortID(), s.Name(),
		s.Files, progress.Bytes(s.Bytes), s.Duration.Round(time.Millisecond))
	for _, d := range s.Databases {
		fmt.Fprintf(w, "  database %s (%s): %d tables, %d rows, %s dump\n", d.Name, d.DSN, d.Tables, d.Rows, progress.Bytes(d.Bytes))
	}
}

// Snapshots lists snapshots as a table, a line each.
func Snapshots(w io.Writer, list []*cairn.Snapshot) error {
	damaged := slices.ContainsFunc(list, func(s *cairn.Snapshot) bool { return s.Damaged != nil })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "ID\tTIME\tSITE/ENV\tHOST\tFILES\tSIZE"
	if damaged {
		header += "\tDAMAGE"
	}
	fmt.Fprintln(tw, header)
	for _, s := range list {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s", s.ShortID(), s.Time.Local().Format("2006-01-02 15:04:05"),
			s.Name(), s.Host, s.Files, progress.Bytes(s.Bytes))
		if s.Damaged != nil {
			line += fmt.Sprintf("\tDAMAGED: %d path(s) lost (cairn show %s)", len(s.Damaged), s.ShortID())
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// Details is what a repository tells of a snapshot beyond its record.
type Details interface {
	// App is the application the snapshot found, with its components.
	App(ctx context.Context, s *cairn.Snapshot) (*cairn.AppInfo, error)
	// Tables are the snapshot's database name's tables.
	Tables(ctx context.Context, s *cairn.Snapshot, name string) ([]cairn.TableStat, error)
}

// Detail is s as JSON shows it with its application's components and
// its databases' tables, read from d.
func Detail(ctx context.Context, d Details, s *cairn.Snapshot) (Snapshot, error) {
	out := SnapshotJSON(s)
	if s.App != nil {
		full, err := d.App(ctx, s)
		if err != nil {
			return out, err
		}
		out.App.Components = full.Components
	}
	for i, db := range s.Databases {
		stats, err := d.Tables(ctx, s, db.Name)
		if err != nil {
			return out, err
		}
		for _, t := range stats {
			out.Databases[i].Stats = append(out.Databases[i].Stats, Table(t))
		}
	}
	return out, nil
}

// Show writes a snapshot's detail (see Detail) for people.
func Show(w io.Writer, s *cairn.Snapshot, out Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"id", s.ID}, {"time", s.Time.Local().Format(time.RFC3339)}, {"site", s.Site},
		{"environment", s.Environment}, {"url", s.URL}, {"host", s.Host}, {"source", s.Source},
		{"files", fmt.Sprintf("%d in %d directories", s.Files, s.Dirs)},
		{"size", fmt.Sprintf("%s (%d bytes)", progress.Bytes(s.Bytes), s.Bytes)},
		{"took", s.Duration.Round(time.Millisecond).String()}, {"cairn", s.Version},
	}
	if out.App != nil {
		rows = append(rows, [2]string{"app", strings.TrimSpace(out.App.Name + " " + out.App.Version)})
	}
	if s.Damaged != nil {
		rows = append(rows, [2]string{"damaged", "lost " + strings.Join(s.Damaged, ", ")})
	}
	for _, row := range rows {
		if row[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
	}
	if out.App != nil {
		for _, k := range sortedKeys(out.App.Components) {
			fmt.Fprintf(tw, "  %s:\t%s\n", k, out.App.Components[k])
		}
	}
	for _, warn := range s.Warnings {
		fmt.Fprintf(tw, "warning:\t%s\n", warn)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range out.Databases {
		fmt.Fprintf(w, "\ndatabase %s (%s, %s): %d tables, %d rows, %s dump\n", d.Name, d.Engine, d.DSN, d.Tables, d.Rows, progress.Bytes(d.Bytes))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TABLE\tROWS\tCHECKSUM\t")
		for _, t := range d.Stats {
			sum := t.Checksum
			if sum == "" {
				sum = "-"
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t\n", t.Name, t.Rows, sum)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Entry is one tree entry as `cairn ls --json` shows it.
type Entry struct {
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

// Listing writes tree entries as `cairn ls` does: names (with Long, mode,
// size and time too), or with JSON an Entry a line.
type Listing struct {
	W                     io.Writer
	Long, JSON, Recursive bool
}

// Dir writes the entries of dir, at the path rel, and with Recursive
// those of its subdirectories after each.
func (l Listing) Dir(ctx context.Context, dir cairn.Node, rel string) error {
	kids, err := dir.Children(ctx)
	if err != nil {
		return err
	}
	for _, k := range kids {
		kp := path.Join(rel, k.Name())
		if err := l.Entry(ctx, k, kp); err != nil {
			return err
		}
		if l.Recursive && k.Mode().IsDir() {
			if err := l.Dir(ctx, k, kp); err != nil {
				return err
			}
		}
	}
	return nil
}

// Entry writes the entry n at the path rel.
func (l Listing) Entry(ctx context.Context, n cairn.Node, rel string) error {
	target := ""
	if n.Mode()&fs.ModeSymlink != 0 {
		target, _ = n.Readlink(ctx)
	}
	if l.JSON {
		typ := "other"
		switch m := n.Mode(); {
		case m.IsDir():
			typ = "dir"
		case m.IsRegular():
			typ = "file"
		case m&fs.ModeSymlink != 0:
			typ = "symlink"
		}
		return Line(l.W, Entry{Path: rel, PathBytes: rawBytes(rel), Type: typ, Mode: fmt.Sprintf("%#o", n.Mode().Perm()), Size: n.Size(),
			ModTime: n.ModTime().Format(time.RFC3339Nano), Target: target})
	}
	name := Path(rel)
	if n.Mode().IsDir() {
		name += "/"
	}
	if target != "" {
		name += " -> " + Path(target)
	}
	var err error
	if l.Long {
		_, err = fmt.Fprintf(l.W, "%s %12d %s %s\n", n.Mode(), n.Size(), n.ModTime().Local().Format("2006-01-02 15:04:05"), name)
	} else {
		_, err = fmt.Fprintln(l.W, name)
	}
	return err
}
