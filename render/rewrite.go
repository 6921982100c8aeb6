package render

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/rewrite"
)

// Rewrite writes a rewrite's report for people: the matches per table and
// column, then the places left as they were.
func Rewrite(w io.Writer, rep *rewrite.Report, dryRun bool) error {
	verb := "replaced"
	if dryRun {
		verb = "would replace"
	}
	var values, total int64
	for _, c := range rep.Counts {
		values += c.Values
		total += c.Replacements
	}
	fmt.Fprintf(w, "%s %d match(es) in %d value(s); %d lines, %s read\n", verb, total, values, rep.Lines, progress.Bytes(rep.BytesIn))
	if len(rep.Counts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TABLE\tCOLUMN\tVALUES\tMATCHES")
		for _, c := range rep.Counts {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", c.Table, c.Column, c.Values, c.Replacements)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, p := range rep.Unsafe {
		fmt.Fprintf(w, "unsafe: line %d, %s.%s: %s\n", p.Line, p.Table, p.Column, p.Reason)
	}
	Unparsed(w, rep)
	if rep.Dropped > 0 {
		fmt.Fprintf(w, "… and %d more unsafe or unparsed places\n", rep.Dropped)
	}
	return nil
}

// Unparsed lists the statements a rewrite passed through, not understood.
func Unparsed(w io.Writer, rep *rewrite.Report) {
	for _, p := range rep.Unparsed {
		fmt.Fprintf(w, "passed through: line %d (%s): %s\n", p.Line, p.Table, p.Reason)
	}
}

// RewriteReport is a rewrite's report as JSON shows it.
type RewriteReport struct {
	MessageType string `json:"message_type"` // "rewrite_report"
	DryRun      bool   `json:"dry_run"`
	// UnparsedMatches counts the statements in Unparsed that hold a match.
	UnparsedMatches int64           `json:"unparsed_matches"`
	Counts          []rewrite.Count `json:"counts"`
	Unsafe          []rewrite.Place `json:"unsafe"`
	Unparsed        []rewrite.Place `json:"unparsed"`
	Dropped         int64           `json:"not_listed"`
	Lines           int64           `json:"lines"`
	BytesIn         int64           `json:"bytes_in"`
	BytesOut        int64           `json:"bytes_out"`
}

// RewriteJSON is r as JSON shows it (lists empty, never null).
func RewriteJSON(r *rewrite.Report, dryRun bool) RewriteReport {
	out := RewriteReport{MessageType: "rewrite_report", DryRun: dryRun, UnparsedMatches: r.UnparsedMatches, Counts: r.Counts, Unsafe: r.Unsafe,
		Unparsed: r.Unparsed, Dropped: r.Dropped, Lines: r.Lines, BytesIn: r.BytesIn, BytesOut: r.BytesOut}
	for _, s := range []*[]rewrite.Place{&out.Unsafe, &out.Unparsed} {
		if *s == nil {
			*s = []rewrite.Place{}
		}
	}
	if out.Counts == nil {
		out.Counts = []rewrite.Count{}
	}
	return out
}
