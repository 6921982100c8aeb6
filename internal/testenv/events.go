package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-backup/cairn"
)

// Events is a cairn.Reporter that keeps what it is told: the events, and
// the names of the stages.
type Events struct {
	mu     sync.Mutex
	List   []cairn.Event
	Stages []string
}

func (e *Events) Stage(name string) cairn.Stage {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Stages = append(e.Stages, name)
	return cairn.Discard.Stage(name)
}

func (e *Events) Event(ev cairn.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.List = append(e.List, ev)
}

// Of returns the events of type T that e was told.
func Of[T cairn.Event](e *Events) []T {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []T
	for _, ev := range e.List {
		if v, ok := ev.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// SQLite runs sql on the SQLite database file path with the sqlite3 tool
// and returns what it printed.
func SQLite(t testing.TB, path, sql string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", "-bail", "-batch", path, sql).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// WriteFile writes a file, making its directories.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
