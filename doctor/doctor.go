// Package doctor is cairn's preflight: it looks at everything a snapshot
// of an environment, or a restore onto it, depends on (each web node
// reached over SSH or here, its files, its free space, each database, its
// dump tool, its user's privileges) and says what would trip them up, with
// what to do. It changes nothing: nothing is written on any node, nothing
// in any database.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/shell"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/site"
	"github.com/cairn-backup/cairn/webapp"
)

// Status is how a check went.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // works, but worth knowing (or fixing before a restore)
	Fail Status = "fail" // a snapshot or a restore would fail
)

// Finding is one check's result.
type Finding struct {
	Status  Status `json:"status"`
	Subject string `json:"subject"` // what was checked: a node's files, a database
	Message string `json:"message"` // what was found, and what to do
}

// Doctor examines environments.
type Doctor struct {
	Sites *site.Catalog
	// Size, if set, is the size of the environment's latest snapshot's
	// files (0 when none), to compare free space with.
	Size func(ctx context.Context, e *cairn.Environment) int64
}

// Examine checks e and reports each finding as it is made; it returns
// how many failed.
func (d *Doctor) Examine(ctx context.Context, e *cairn.Environment, report func(Finding)) int {
	failed := 0
	say := func(s Status, subject, format string, args ...any) {
		if s == Fail {
			failed++
		}
		report(Finding{Status: s, Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	var size int64
	if d.Size != nil {
		size = d.Size(ctx, e)
	}
	nodes := e.Nodes
	if len(nodes) == 0 && e.Files.Path != "" {
		nodes = []cairn.Location{e.Files}
	}
	if len(nodes) == 0 {
		say(Warn, e.Name(), "no files: in the config: only its databases are snapshotted")
	}
	var trees []cairn.Tree
	for i, l := range nodes {
		t, done := d.node(ctx, l, i == 0, size, say)
		if done != nil {
			defer done()
		}
		if t != nil {
			trees = append(trees, t)
		}
	}
	if len(nodes) > 1 && len(trees) == len(nodes) {
		excl, _ := pattern.Compile(e.Exclude...)
		drift, err := site.Drift(ctx, trees, excl)
		switch {
		case err != nil:
			say(Warn, e.Name(), "the web nodes' files could not be compared: %v", err)
		case len(drift) > 0:
			for _, line := range drift {
				say(Warn, e.Name(), "%s. Try: copy what one node lacks onto it (cairn restore onto this environment puts the snapshot's files on every node)", line)
			}
		default:
			say(OK, e.Name(), "the %d web nodes hold the same files", len(nodes))
		}
	}
	for _, dsn := range e.Databases {
		d.database(ctx, dsn, say)
	}
	return failed
}

// node checks one web node's files; it returns the opened tree (nil if
// it could not be) and what releases it.
func (d *Doctor) node(ctx context.Context, l cairn.Location, first bool, size int64, say func(Status, string, string, ...any)) (files.Target, func()) {
	subject := "files " + l.String()
	var t files.Target
	var done func()
	if l.IsLocal() {
		lt, err := files.OpenLocal(l.Path)
		if err != nil {
			say(Fail, subject, "%v. Try: check the path in the config, and that cairn runs as a user who can read it", err)
			return nil, nil
		}
		t, done = lt, func() { lt.Close() }
		if unix.Access(l.Path, unix.W_OK) != nil {
			say(Warn, subject, "not writable by this user: a restore onto it would fail. Try: run cairn as the files' owner (or root)")
		}
	} else {
		rt, err := d.Sites.OpenRemote(ctx, l, false)
		if err != nil {
			if errors.Is(err, files.ErrNotDir) || strings.Contains(err.Error(), "not exist") {
				say(Fail, subject, "%v. Try: check the path in the config", err)
			} else {
				say(Fail, subject, "%v", err)
			}
			return nil, nil
		}
		t = rt
		say(OK, "ssh "+hostOf(l), "connected: host key as known_hosts lists it, key accepted, SFTP served")
		// Writable, and the tools a remote tree is best served by: find
		// -printf lists it in one stream, b2sum, dd and split --filter patch
		// its large files (each is done over SFTP alone without them).
		out, err := d.Sites.Shell(l)(ctx, "test -w "+shell.Quote(l.Path)+" && echo writable || echo read-only\n"+
			"find / -maxdepth 0 -printf 'find\\n' 2>&1\n"+
			"command -v b2sum >/dev/null 2>&1 && command -v dd >/dev/null 2>&1 && printf '' | split -b 1 --filter=true 2>&1 && echo patch\n")
		lines := strings.Fields(string(out))
		switch {
		case err != nil:
			say(Warn, subject, "could not tell whether it is writable: %v", err)
		case !slices.Contains(lines, "writable"):
			say(Warn, subject, "not writable by %s: a restore onto it would fail. Try: connect as the files' owner", userOf(l))
		}
		if err == nil {
			var tools []string
			if slices.Contains(lines, "find") {
				tools = append(tools, "lists the tree by one find")
			}
			if slices.Contains(lines, "patch") {
				tools = append(tools, "patches large files that changed (b2sum, split --filter)")
			}
			if len(tools) == 2 {
				say(OK, subject, "the host %s", strings.Join(tools, ", and "))
			} else {
				say(OK, subject, "the host has no find -printf, or no b2sum and split --filter (BusyBox?): the tree is listed over SFTP, or large files that changed are sent whole (slower, the same result)")
			}
		}
	}
	list, err := t.ReadDir(ctx, "")
	if err != nil {
		say(Fail, subject, "cannot be listed: %v. Try: run cairn (or connect) as a user who can read it", err)
		return nil, done
	}
	msg := fmt.Sprintf("readable (%d entries at the top)", len(list))
	if sp, ok := t.(interface {
		FreeSpace(context.Context) (int64, error)
	}); ok {
		if free, err := sp.FreeSpace(ctx); err == nil {
			msg += fmt.Sprintf("; %s free", humanize.IBytes(uint64(free)))
			if size > 0 && free < size {
				say(Warn, subject, "%s free, less than the latest snapshot's %s: a restore of it onto an empty directory there would fill the disk. Try: free space there first", humanize.IBytes(uint64(free)), humanize.IBytes(uint64(size)))
			}
		}
	}
	if first {
		if app, err := webapp.DetectTree(ctx, t); err == nil {
			msg += fmt.Sprintf("; %s %s (%s)", app.Name, app.Version, app.Config)
		} else if !errors.Is(err, webapp.ErrUnknown) {
			say(Warn, subject, "the application's settings could not be read: %v", err)
		}
	}
	say(OK, subject, "%s", msg)
	return t, done
}

// database checks one database.
func (d *Doctor) database(ctx context.Context, dsn cairn.DSN, say func(Status, string, string, ...any)) {
	db, err := d.Sites.OpenDatabase(dsn, database.Options{})
	if err != nil {
		say(Fail, "database "+cairn.RedactDSN(dsn.Reveal()), "%v", err)
		return
	}
	subject := "database " + db.Name()
	in, err := database.Inspect(ctx, db)
	if err != nil {
		say(Fail, subject, "%v", err)
		return
	}
	say(OK, subject, "%s reached as %s (%s)", in.Server, in.User, db)
	switch {
	case in.Tool == "" && db.Engine() != "sqlite":
		say(Fail, subject, "no dump tool here (mariadb-dump, mysqldump or pg_dump). Try: apt-get install mariadb-client (or postgresql-client)")
	case in.Mismatch != "":
		say(Warn, subject, "%s: %s. Try: install the client tools of the server's flavour and version", in.Mismatch, in.ToolVersion)
	case in.Tool != "":
		say(OK, subject, "dump tool %s", in.ToolVersion)
	}
	if len(in.NoSnapshot) > 0 {
		grant := fmt.Sprintf("GRANT %s ON `%s`.* TO %s", strings.Join(in.NoSnapshot, ", "), db.Name(), quoteUser(in.User))
		if db.Engine() == "postgres" {
			grant = "GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + in.User
		}
		say(Fail, subject, "%s lacks %s, which a snapshot needs. Try: %s", in.User, strings.Join(in.NoSnapshot, ", "), grant)
	}
	if in.Serial && len(in.NoSnapshot) == 0 {
		say(OK, subject, "%s lacks RELOAD: snapshots dump on one connection (a parallel dump stops commits for a moment, which needs it). Try, for faster dumps of a large database: GRANT RELOAD ON *.* TO %s", in.User, quoteUser(in.User))
	}
	if len(in.NoRestore) > 0 {
		say(Warn, subject, "%s lacks %s: a restore onto this database would fail (snapshots work). Try: grant them, or restore as a user who has them", in.User, strings.Join(in.NoRestore, ", "))
	}
	switch {
	case in.InPlace && db.Engine() == "postgres":
		say(OK, subject, "a restore loads inside the database in one transaction (its schemas renamed aside, new ones loaded and checked, then committed at once): %s", in.Why)
	case in.InPlace:
		say(OK, subject, "a restore loads into scratch tables inside the database, then swaps them in by one RENAME TABLE: %s", in.Why)
	case db.Engine() != "sqlite":
		say(OK, subject, "a restore loads into a scratch database beside it, then swaps it in")
	}
	if len(in.Definers) > 0 {
		say(Warn, subject, "%d object(s) have another DEFINER (%s): a restore makes them %s's, as keeping a DEFINER needs SUPER. Try: restore as that user, or recreate them after", len(in.Definers), firstN(in.Definers, 3), in.User)
	}
}

// quoteUser writes MySQL's user@host as a GRANT takes it: 'user'@'host'.
func quoteUser(u string) string {
	name, host, _ := strings.Cut(u, "@")
	return "'" + name + "'@'" + host + "'"
}

func hostOf(l cairn.Location) string {
	if l.User != "" {
		return l.User + "@" + l.Host
	}
	return l.Host
}

func userOf(l cairn.Location) string {
	if l.User != "" {
		return l.User
	}
	return "the SSH user"
}

func firstN(list []string, n int) string {
	if len(list) > n {
		return strings.Join(list[:n], "; ") + fmt.Sprintf("; and %d more", len(list)-n)
	}
	return strings.Join(list, "; ")
}
