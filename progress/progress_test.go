package progress

import (
	"bytes"
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
