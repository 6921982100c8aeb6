package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	b := New(&bytes.Buffer{}, "restore", false)
	start := b.start
	b.now = func() time.Time { return start.Add(10 * time.Second) }
	b.Total(100, 100<<20)
	b.Done(50, 50<<20)
	got := b.Line(120)
	for _, want := range []string{"restore", "50/100 files", "50.0 MiB/100.0 MiB", "5.0 MiB/s", "ETA 0:10", "[="} {
		if !strings.Contains(got, want) {
			t.Errorf("Line() = %q, missing %q", got, want)
		}
	}
	if len(b.Line(30)) > 30 {
		t.Errorf("Line(30) longer than 30 columns")
	}
}

func TestDisabledDrawsNothing(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", false)
	b.Done(1, 1)
	b.Finish()
	if buf.Len() != 0 {
		t.Errorf("disabled bar wrote %q", buf.String())
	}
}

func TestBytes(t *testing.T) {
	tests := map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536 << 20: "1.5 GiB"}
	for n, want := range tests {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A board shows its stages on one line, finished ones as done; printing
// through its writer clears the line first.
func TestBoard(t *testing.T) {
	var out strings.Builder
	b := NewBoard(&out, "clone a → b", false)
	start := b.start
	b.now = func() time.Time { return start.Add(7 * time.Second) }
	snap, db, files := b.Stage("snapshot"), b.Stage("database wp"), b.Stage("files")
	snap.Total(0, 3<<30)
	snap.Done(1, 1<<30)
	db.Done(0, 320<<20)
	files.Finish()
	want := "clone a → b  0:07  1/1 files  1.3 GiB  192.0 MiB/s  snapshot 1.0 GiB/3.0 GiB · database wp 320.0 MiB · files ✓"
	if got := b.Line(200); got != want {
		t.Errorf("line\n%q, want\n%q", got, want)
	}
	if got := b.Line(20); got != "clone a → b  0:07  1" {
		t.Errorf("cut line %q", got)
	}
	// Once every running stage knows its size, the time left shows.
	db.Total(0, 1<<30)
	want = "clone a → b  0:07  1/1 files  1.3 GiB  192.0 MiB/s  ETA 0:14  snapshot 1.0 GiB/3.0 GiB · database wp 320.0 MiB/1.0 GiB · files ✓"
	if got := b.Line(200); got != want {
		t.Errorf("line with sizes\n%q, want\n%q", got, want)
	}
	if b.Writer(&out) != io.Writer(&out) {
		t.Errorf("a disabled board wraps writers")
	}
	b.Finish()
	if out.Len() != 0 {
		t.Errorf("a disabled board drew %q", out.String())
	}
}
