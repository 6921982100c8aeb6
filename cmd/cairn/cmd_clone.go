package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/repo"
)

type cloneOptions struct {
	from, confirm             string
	dryRun, json, force, noSS bool
	terminate                 bool
	lockWait                  time.Duration
}

func (a *app) cloneCommand() *cobra.Command {
	var o cloneOptions
	cmd := &cobra.Command{
		Use:   "clone SITE/SRC SITE/DST",
		Short: "Make one environment an exact, working copy of another",
		Long: `Clone snapshots the source environment (or, with --from, uses one of its
snapshots), then restores it onto the target: each database is loaded into
a scratch database with the source's URL and files path rewritten to the
target's (PHP-serialized and JSON data included), checked and swapped in;
the files are synced by difference, keeping the target's preserve: and
exclude: paths. Before touching the target, cairn snapshots it (a safety
snapshot to roll back to; --no-safety-snapshot skips it). The source is
only read. A protected target needs --force and its name typed back (or
--confirm SITE/DST). --dry-run prints the plan.

A fresh clone runs side by side: the dump streams into the repository and
into the scratch database at once, and the files are copied while they
are snapshotted; nothing is swapped in before both snapshots are complete.
A MySQL/MariaDB target that the last clone left untouched gets only the
rows that changed, in one transaction (see the README).`,
		Example: "  cairn clone blog/production blog/staging\n  cairn clone blog/production blog/staging --from 2026-11-01 --dry-run",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runClone(cmd.Context(), args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "clone this snapshot of the source (`SEL`: latest, an ID, a time) instead of a fresh one")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan, change nothing")
	f.BoolVar(&o.json, "json", false, "print the plan or the changes as JSON lines")
	f.BoolVar(&o.noSS, "no-safety-snapshot", false, "do not snapshot the target before overwriting it")
	f.BoolVar(&o.force, "force", false, "allow a protected target (asks to confirm)")
	f.StringVar(&o.confirm, "confirm", "", "confirm a protected target without a prompt, by its `SITE/ENV` name")
	f.BoolVar(&o.terminate, "terminate-sessions", false, "end the sessions that keep a database swap from happening (PostgreSQL: connected to the target; MySQL/MariaDB: holding its tables)")
	f.DurationVar(&o.lockWait, "lock-wait", mysql.DefaultLockWait, "wait at most this `DURATION` (whole seconds), three times, for the sessions using a target database's tables at the swap")
	return cmd
}

func (a *app) runClone(ctx context.Context, srcName, dstName string, o cloneOptions) error {
	if _, err := a.catalog(); err != nil {
		return err
	}
	src, err := a.envByName(srcName)
	if err != nil {
		return err
	}
	dst, err := a.envByName(dstName)
	if err != nil {
		return err
	}
	if src.Name() == dst.Name() {
		return usagef("clone %s onto itself? Try: cairn restore %s@SEL to roll it back", src.Name(), src.Name())
	}
	ro := restoreOptions{to: dst.Name(), dryRun: o.dryRun, json: o.json, force: o.force, confirm: o.confirm, terminate: o.terminate, lockWait: o.lockWait, workers: 8}
	if !o.dryRun {
		var protected []*cairn.Environment
		if dst.Protected {
			protected = append(protected, dst)
		}
		if dst.Files.Path != "" && dst.Files.IsLocal() {
			dir, err := files.Resolve(dst.Files.Path)
			if err != nil {
				return err
			}
			for _, e := range a.sites.ProtectedAt(dir) {
				if e != dst {
					protected = append(protected, e)
				}
			}
		}
		for _, e := range protected {
			if err := a.confirmProtected(e.Name(), ro); err != nil {
				return err
			}
		}
		ro.confirmed = true
	}
	r, err := a.openRepo(ctx, true)
	if err != nil {
		return err
	}
	defer r.Close(ctx)

	if !o.dryRun {
		defer a.startBoard("clone " + src.Name() + " → " + dst.Name())()
	}
	a.totals = &totals{}
	defer func() { a.totals = nil }()
	start := time.Now()
	sum := cloneSummaryJSON{MessageType: "clone_summary", Source: src.Name(), Target: dst.Name(), DryRun: o.dryRun, Seconds: map[string]float64{}}
	stage := func(name string, since time.Time) { sum.Seconds[name] = time.Since(since).Seconds() }
	if o.from == "" && !o.dryRun {
		if err := a.streamClone(ctx, r, src, dst, ro, o.noSS, &sum); err != nil {
			return err
		}
		return a.finishClone(ctx, dst, o, &sum, start, true)
	}
	var snap *cairn.Snapshot
	t0 := time.Now()
	if o.from != "" {
		snap, err = a.pickIn(ctx, r, src.Name()+"@"+o.from)
	} else {
		snap, err = a.pickIn(ctx, r, src.Name()+"@latest")
		if errors.Is(err, cairn.ErrNotFound) {
			return a.outlineClone(src, dst)
		}
		if err == nil {
			fmt.Fprintf(a.stderr, "dry run: planning with the latest snapshot of %s (%s); a real clone takes a fresh one\n", src.Name(), snap.ShortID())
		}
	}
	if err != nil {
		return err
	}
	stage("snapshot", t0)
	sum.Snapshot = snap.ID
	if !o.dryRun && !o.noSS {
		t0 := time.Now()
		// The target's files were most likely cloned from the source:
		// its snapshot spares rereading those that did not change.
		safety, err := a.safetySnapshot(ctx, r, dst, takeOptions{hints: []string{snap.ID}}, o.json)
		if err != nil {
			return err
		}
		if safety != nil {
			stage("safety_snapshot", t0)
			sum.SafetySnapshot = safety.ID
		}
	}
	t, err := a.restoreTarget(snap, ro)
	if err != nil {
		return err
	}
	t0 = time.Now()
	if err := a.restoreSnapshot(ctx, r, snap, t, ro); err != nil {
		return err
	}
	stage("restore", t0)
	if o.dryRun && o.from == "" {
		a.planDeltas(ctx, r, snap, t, ro)
	}
	return a.finishClone(ctx, dst, o, &sum, start, false)
}

// finishClone checks the target's URL (unless checked already) and prints
// the summary.
func (a *app) finishClone(ctx context.Context, dst *cairn.Environment, o cloneOptions, sum *cloneSummaryJSON, start time.Time, checked bool) error {
	if !o.dryRun && !checked && dst.URL != "" {
		sum.URLStatus = a.checkURL(ctx, dst.URL, o.json, nil)
	}
	sum.Seconds["total"] = time.Since(start).Seconds()
	a.totals.fill(sum)
	if o.json {
		return jsonLine(a.stdout, sum)
	}
	return nil
}

// cloneSummaryJSON ends `cairn clone --json`.
type cloneSummaryJSON struct {
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

// totals adds up what a clone did, for its summary; its methods may be
// called from the clone's stages at once.
type totals struct {
	filesWritten, filesDeleted, bytesWritten, rows, replacements atomic.Int64
}

func (t *totals) addFiles(st files.Stats) {
	if t != nil {
		t.filesWritten.Add(st.Added + st.Updated)
		t.filesDeleted.Add(st.Deleted)
		t.bytesWritten.Add(st.BytesWritten)
	}
}

func (t *totals) addRows(rows, replacements int64) {
	if t != nil {
		t.rows.Add(rows)
		t.replacements.Add(replacements)
	}
}

func (t *totals) fill(sum *cloneSummaryJSON) {
	sum.FilesWritten, sum.FilesDeleted, sum.BytesWritten = t.filesWritten.Load(), t.filesDeleted.Load(), t.bytesWritten.Load()
	sum.Rows, sum.Replacements = t.rows.Load(), t.replacements.Load()
}

// checkURL fetches the target's URL, if it is reachable from here, and
// reports the HTTP status: a quick sign the copy serves pages.
func (a *app) checkURL(ctx context.Context, u string, quiet bool, connected func()) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("User-Agent", "cairn/"+cairn.Version+" (clone check)")
	client := http.DefaultClient
	if connected != nil {
		// A page view may write to the site's database: connected is
		// called before the request goes out, once the server answers.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		dialer := &net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				connected()
			}
			return c, err
		}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(a.stderr, "note: %s is not reachable from here, so the copy was not checked (%v)\n", u, err)
		return 0
	}
	resp.Body.Close()
	if !quiet {
		fmt.Fprintf(a.stdout, "%s answers HTTP %s\n", u, resp.Status)
	}
	if resp.StatusCode >= 500 {
		fmt.Fprintf(a.stderr, "warning: %s answers %s: the copy may not work. Try: look at the web server's error log\n", u, resp.Status)
	}
	return resp.StatusCode
}

// outlineClone prints what a clone would do when there is no snapshot of
// the source to plan the details with.
func (a *app) outlineClone(src, dst *cairn.Environment) error {
	fmt.Fprintf(a.stderr, "dry run: %s has no snapshot yet, so this is an outline; a snapshot first gives the full plan (files and tables)\n", src.Name())
	fmt.Fprintf(a.stdout, "would snapshot %s (files %s, %d database(s))\n", src.Name(), src.Files.Path, len(src.Databases))
	fmt.Fprintf(a.stdout, "would take a safety snapshot of %s\n", dst.Name())
	if src.URL != "" && dst.URL != "" && src.URL != dst.URL {
		fmt.Fprintf(a.stdout, "rewrite %s → %s\n", strings.TrimRight(src.URL, "/"), strings.TrimRight(dst.URL, "/"))
	}
	for i, dsn := range src.Databases {
		if i < len(dst.Databases) {
			fmt.Fprintf(a.stdout, "database %s → %s: would load into a scratch database and swap it in\n", dsn, dst.Databases[i])
		}
	}
	fmt.Fprintf(a.stdout, "would sync files %s → %s, keeping %v\n", src.Files.Path, dst.Files.Path, append(append([]string(nil), dst.Exclude...), dst.Preserve...))
	for _, act := range dst.AfterRestore {
		fmt.Fprintf(a.stdout, "after_restore %s: would %s\n", act, act.Describe())
	}
	return nil
}

// envByName finds SITE/ENV in the config.
func (a *app) envByName(name string) (*cairn.Environment, error) {
	site, env, ok := strings.Cut(name, "/")
	if !ok {
		return nil, usagef("%q is not SITE/ENV", name)
	}
	return a.cfg.Env(site, env)
}

// pickIn resolves a selector among the repository's snapshots.
func (a *app) pickIn(ctx context.Context, r *repo.Repo, arg string) (*cairn.Snapshot, error) {
	sel, err := cairn.ParseSelector(arg, time.Local)
	if err != nil {
		return nil, err
	}
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	return sel.Pick(all)
}

// takeSnapshot snapshots an environment from the config.
// takeOptions tune takeSnapshot.
type takeOptions struct {
	hints []string      // see cairn.SnapshotRequest.Hints
	noDB  bool          // files only
	reuse []repo.Reused // databases taken so, by their DSN (see clone_state.go)
}

func (a *app) takeSnapshot(ctx context.Context, r *repo.Repo, e *cairn.Environment, label string, o takeOptions) (*cairn.Snapshot, error) {
	req, err := a.sites.Request(e, nil, o.noDB)
	if err != nil {
		return nil, err
	}
	req.Hints = o.hints
	for i, db := range req.Databases {
		for _, re := range o.reuse {
			if re.String() == db.String() {
				req.Databases[i] = re
			}
		}
	}
	bar := a.bar(label)
	snap, err := a.sites.Snapshot(ctx, r, req, bar)
	bar.Finish()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	for _, w := range snap.Warnings {
		fmt.Fprintln(a.stderr, "warning:", w)
	}
	a.log.Info("snapshot saved", "id", snap.ID, "environment", snap.Name())
	return snap, nil
}
