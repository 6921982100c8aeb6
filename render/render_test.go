package render_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/render"
	"github.com/cairn-backup/cairn/repo"
)

var (
	snap = &cairn.Snapshot{ID: "3f2a9c1b00000000", Site: "blog", Environment: "production", Time: time.Date(2026, 11, 1, 14, 30, 0, 0, time.UTC)}
	// events holds one of each event the engine reports.
	events = []cairn.Event{
		cairn.FileChange{Op: "add", Path: "wp-config.php", Size: 3000},
		cairn.FileChange{Op: "delete", Path: "old\xff", Dir: true},
		cairn.FileChange{Op: "add", Path: "evil\nrestored.txt\x1b[2J"},
		cairn.RewritePair{From: "https://example.com", To: "https://staging.example.com", DryRun: true},
		cairn.DatabasePlanned{Name: "wp", Target: "mysql://root@127.0.0.1/wp", Tables: 12, Rows: 3400, DumpBytes: 1 << 20},
		cairn.DatabaseRestored{Name: "wp", Target: "mysql://root@127.0.0.1/wp", Tables: 12, Rows: 3400, Duration: time.Second},
		cairn.DatabaseRestored{Name: "wp", Target: "t", Delta: &cairn.Delta{Base: snap, Removed: 1, Added: 2, Tables: 1}},
		cairn.ConfigChange{File: "wp-config.php", Key: "WP_HOME", Value: "https://staging.example.com"},
		cairn.ActionRun{Action: cairn.Action{Kind: "run", Arg: "true"}, DryRun: true},
		cairn.FilesRestored{Snapshot: snap, Target: "/srv/blog", Added: 3, Extra: 2},
		cairn.SafetySnapshot{Environment: "blog/staging", Snapshot: snap},
		cairn.DeltaPlanned{Name: "wp", Target: "t", Base: snap, Whole: []string{"wp_options"}},
		cairn.SafetyFromState{Target: "t", Kept: 3, Dumped: 1},
		cairn.CloneSummary{Source: "blog/production", Target: "blog/staging", Snapshot: snap.ID, Seconds: map[string]float64{"total": 1}},
		cairn.PlanStep{Text: "snapshot blog/production"},
		cairn.Rewritten{Database: "wp", Matches: 3, Values: 2},
		cairn.URLChecked{URL: "https://staging.example.com", Status: 503, StatusText: "503 Service Unavailable"},
		cairn.URLChecked{URL: "https://staging.example.com", Err: errors.New("connection refused")},
		cairn.Warning{Message: "something to look at"},
		cairn.Notice{Message: "something to know"},
	}
	// notes are the events shown as text on stderr, with --json too.
	notes = map[string]bool{"rewritten": true, "url_check": true, "warning": true, "notice": true}
)

// With JSON, every event but the notes is one NDJSON object on Out whose
// message_type is its Type (a safety snapshot is named by the clone's
// summary instead), and nothing else is written there.
func TestEventsJSON(t *testing.T) {
	var out, errs bytes.Buffer
	r := &render.Events{Out: &out, Err: &errs, JSON: true}
	want := 0
	for _, e := range events {
		r.Event(e)
		if !notes[e.Type()] && e.Type() != "safety_snapshot" {
			want++
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != want {
		t.Fatalf("%d lines on stdout, want %d:\n%s", len(lines), want, out.String())
	}
	i := 0
	for _, e := range events {
		if notes[e.Type()] || e.Type() == "safety_snapshot" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, lines[i])
		}
		if m["message_type"] != e.Type() {
			t.Errorf("line %d: message_type %v, want %s", i+1, m["message_type"], e.Type())
		}
		i++
	}
	if !strings.Contains(out.String(), `"path_bytes":"b2xk/w=="`) {
		t.Errorf("a path that is not UTF-8 lacks its bytes: %s", out.String())
	}
	for _, s := range []string{"warning: something to look at", "note: something to know", "rewrote 3 match(es)", "answers 503 Service Unavailable", "not reachable"} {
		if !strings.Contains(errs.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, errs.String())
		}
	}
}

// As text, what was planned or done goes to Out and the notes to Err.
func TestEventsText(t *testing.T) {
	var out, errs bytes.Buffer
	r := &render.Events{Out: &out, Err: &errs}
	for _, e := range events {
		r.Event(e)
	}
	for _, s := range []string{
		"+ wp-config.php (2.9 KiB)\n", "- \"old\\xff\"/\n", "+ \"evil\\nrestored.txt\\x1b[2J\"\n", "rewrite https://example.com → https://staging.example.com\n",
		"database wp → mysql://root@127.0.0.1/wp: would load the 1.0 MiB dump (12 tables, 3400 rows)",
		"database wp restored into mysql://root@127.0.0.1/wp: 12 tables, 3400 rows checked, swapped in, in 1s\n",
		"database wp updated in place from snapshot 3f2a9c1b: 1 row(s) out, 2 in",
		"wp-config.php set WP_HOME = https://staging.example.com\n", "after_restore run: true: would",
		"2 entries the snapshot lacks were left in /srv/blog; add --delete to remove them\n",
		"to undo this clone, cairn restore blog/staging@3f2a9c1b\n", "(wp_options changed since: loaded whole)",
		"3 table(s) as the last clone left them", "snapshot blog/production\n", "answers HTTP 503 Service Unavailable\n",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "warning") || strings.Contains(out.String(), "note:") {
		t.Errorf("notes on stdout:\n%s", out.String())
	}
}

// Events from several stages at once come out as whole lines.
func TestEventsConcurrent(t *testing.T) {
	var out bytes.Buffer
	r := &render.Events{Out: &out, Err: &out, JSON: true}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				r.Event(cairn.FileChange{Op: "add", Path: strings.Repeat("x", 200)})
			}
		})
	}
	wg.Wait()
	for i, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line %d is not JSON: %.80s", i+1, l)
		}
	}
	if r.Stage("files") == nil {
		t.Fatal("a stage without Stages is nil")
	}
}

// A damaged repository's NDJSON ends with a summary naming the repair.
func TestCheckJSON(t *testing.T) {
	rep := repo.Report{Snapshots: 2, Packs: 5,
		Problems: []repo.Problem{{Kind: repo.ProblemDamagedIndex, Blob: "xn0_1", Detail: "cannot be read"}},
		Damaged:  []repo.SnapshotDamage{{Snapshot: snap, Lost: []string{"wp-content/a.jpg"}}}}
	var out bytes.Buffer
	if err := render.CheckJSON(&out, rep, "cairn repair"); err != nil {
		t.Fatal(err)
	}
	var types []string
	var last map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		last = map[string]any{}
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatal(err)
		}
		types = append(types, last["message_type"].(string))
	}
	if strings.Join(types, ",") != "problem,damaged_snapshot,summary" || last["next"] != "cairn repair" || last["damaged"] != true {
		t.Fatalf("got %v, summary %v", types, last)
	}
	out.Reset()
	render.Check(&out, rep)
	if !strings.Contains(out.String(), "damage: index blob xn0_1: cannot be read\n") || strings.Contains(out.String(), "no damage found") {
		t.Fatalf("text report:\n%s", out.String())
	}
}
