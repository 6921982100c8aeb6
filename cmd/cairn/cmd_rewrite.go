package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/render"
	"github.com/cairn-backup/cairn/rewrite"
)

type rewriteOptions struct {
	from, to              []string
	in, out, dialect      string
	skip, tables, exclude []string
	emails, dryRun, json  bool
	allowUnparsed         bool
}

func (a *app) rewriteCommand() *cobra.Command {
	var o rewriteOptions
	cmd := &cobra.Command{
		Use:   "rewrite --from URL --to URL [--from URL --to URL]… [--in FILE] [--out FILE]",
		Short: "Replace URLs and paths in a SQL dump, safely (stdin to stdout)",
		Long: `Replace URLs and paths in a MySQL/MariaDB or PostgreSQL dump as it streams,
without breaking what the application stored: PHP-serialized values get
their lengths recomputed (nested and double-serialized too), JSON-escaped
(https:\/\/…) and URL-encoded (https%3A%2F%2F…) spellings and
protocol-relative links (//example.com) are rewritten too, matches respect
host boundaries (example.com never matches inside example.com.au), and a
second run changes nothing. Only string values of INSERT (and COPY) data
are touched; everything else passes through byte for byte.

Values that look PHP-serialized but do not parse are left as they are and
reported as unsafe. The report goes to stderr, or to stdout with --out or
--dry-run.`,
		Example: `  mysqldump wp | cairn rewrite --from https://example.com --to https://staging.example.com | mysql wp_staging
  cairn rewrite --from https://example.com --to http://localhost:8080 --from /var/www/prod --to /srv/dev --in prod.sql --out dev.sql
  cairn rewrite --from https://example.com --to https://example.org --in dump.sql --dry-run --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runRewrite(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.from, "from", nil, "text to replace: a URL, host or path (repeatable, paired with --to in order)")
	f.StringArrayVar(&o.to, "to", nil, "its replacement")
	f.StringVar(&o.in, "in", "", "read the dump from `FILE` (default stdin)")
	f.StringVar(&o.out, "out", "", "write the dump to `FILE`, atomically (default stdout)")
	f.StringVar(&o.dialect, "dialect", "", "mysql or postgres (default: recognised from the dump's first lines)")
	f.StringArrayVar(&o.skip, "skip-column", nil, "never rewrite this column (repeatable; default guid)")
	f.StringArrayVar(&o.tables, "table", nil, "rewrite only tables matching this wildcard (repeatable)")
	f.StringArrayVar(&o.exclude, "exclude-table", nil, "leave tables matching this wildcard as they are (repeatable)")
	f.BoolVar(&o.emails, "emails", false, "also rewrite e-mail domains (user@example.com)")
	f.BoolVar(&o.dryRun, "dry-run", false, "report what would change; write no dump")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.BoolVar(&o.allowUnparsed, "allow-unparsed", false, "exit 0 even when statements that hold a match were passed through unchanged, not understood")
	return cmd
}

// rewriteMemory bounds the heap of a rewrite: it holds one line piece and
// at most an 8 MiB value (two or three copies while it is rewritten).
const rewriteMemory = 56 << 20

func (a *app) runRewrite(ctx context.Context, o rewriteOptions) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(rewriteMemory)
	}
	if len(o.from) != len(o.to) {
		return usagef("give one --to for each --from (%d --from, %d --to)", len(o.from), len(o.to))
	}
	cfg := rewrite.Config{Options: rewrite.Options{Emails: o.emails}, SkipColumns: o.skip, Tables: o.tables, ExcludeTables: o.exclude}
	for i := range o.from {
		cfg.Pairs = append(cfg.Pairs, rewrite.Pair{From: o.from[i], To: o.to[i]})
	}
	w, err := rewrite.New(cfg)
	if err != nil {
		return err
	}
	in := a.stdin
	if o.in != "" && o.in != "-" {
		f, err := os.Open(o.in)
		if err != nil {
			return fmt.Errorf("%w. Try: check the --in path", err)
		}
		defer f.Close()
		in = f
	}
	br := bufio.NewReaderSize(in, 64<<10)
	dialect := rewrite.MySQL
	switch o.dialect {
	case "mysql", "mariadb":
	case "postgres", "postgresql":
		dialect = rewrite.Postgres
	case "":
		head, _ := br.Peek(4096)
		dialect = rewrite.Detect(head)
	default:
		return usagef("--dialect takes mysql or postgres, not %q", o.dialect)
	}
	var out io.Writer = a.stdout
	report := a.stderr
	var commit func() error
	switch {
	case o.dryRun:
		out, report = io.Discard, a.stdout
	case o.out != "" && o.out != "-":
		f, err := files.CreateOutput(o.out)
		if err != nil {
			return fmt.Errorf("%w. Try: check the --out directory", err)
		}
		defer f.Abort()
		out, report = f, a.stdout
		commit = f.Commit
	}
	rep, err := w.Dump(dialect, br, out)
	if err != nil {
		return fmt.Errorf("rewrite: %w", err)
	}
	if commit != nil {
		if err := commit(); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
	}
	if err := printRewriteReport(report, rep, o); err != nil {
		return err
	}
	return checkUnparsed(a.stderr, report, rep, o)
}

// checkUnparsed fails a rewrite that passed a statement holding a match
// through unchanged because it did not understand it, unless the user
// accepts that: the dump still holds the old URL there.
func checkUnparsed(stderr, report io.Writer, rep *rewrite.Report, o rewriteOptions) error {
	if rep.UnparsedMatches == 0 {
		return nil
	}
	if report != stderr || o.json {
		render.Unparsed(stderr, rep)
	}
	if o.allowUnparsed {
		return nil
	}
	return fmt.Errorf("%d statement(s) hold a match but were not understood, and were passed through unchanged (lines listed above). Try: rewrite them by hand, or --allow-unparsed to accept the dump as it is", rep.UnparsedMatches)
}

func printRewriteReport(w io.Writer, rep *rewrite.Report, o rewriteOptions) error {
	if o.json {
		return render.Line(w, render.RewriteJSON(rep, o.dryRun))
	}
	return render.Rewrite(w, rep, o.dryRun)
}
