// Package runtool finds and runs the database engines' own command-line
// tools (mariadb-dump, pg_dump, psql, sqlite3…), keeping the end of what
// they print on stderr for the error a user will read.
package runtool

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Find returns the path of the first of names on PATH, or an error that
// says what to install (install is advice such as "apt-get install sqlite3").
func Find(install string, names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed. Try: %s", strings.Join(names, " or "), install)
}

// Run runs cmd, which the caller made with exec.CommandContext(ctx, …)
// and gave its stdin and stdout. A failure's error ends with the last 4 KiB
// of the tool's stderr; when ctx is done, the error wraps ctx.Err().
func Run(ctx context.Context, cmd *exec.Cmd) error {
	var stderr tail
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", cmd.Args[0], ctx.Err())
		}
		return fmt.Errorf("%w: %s", err, stderr.String())
	}
	return nil
}

// tail keeps the last 4 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }
