package runtool

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	ctx := context.Background()
	if err := Run(ctx, exec.CommandContext(ctx, "sh", "-c", "exit 0")); err != nil {
		t.Fatal(err)
	}
	err := Run(ctx, exec.CommandContext(ctx, "sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x >&2; echo THE END >&2; exit 3"))
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.HasSuffix(err.Error(), "THE END") || len(err.Error()) > 4200 {
		t.Errorf("failure: %.80q… (%d bytes)", err, len(err.Error()))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Run(cctx, exec.CommandContext(cctx, "sleep", "5")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestFind(t *testing.T) {
	if p, err := Find("apt-get install coreutils", "no-such-tool-xyz", "sh"); err != nil || !strings.HasSuffix(p, "/sh") {
		t.Errorf("Find = %q, %v", p, err)
	}
	if _, err := Find("apt-get install x", "no-such-a", "no-such-b"); err == nil || err.Error() != "no-such-a or no-such-b is not installed. Try: apt-get install x" {
		t.Errorf("Find missing = %v", err)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("repository read failed")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestRunStdin(t *testing.T) {
	ctx := context.Background()
	// A stdin that fails half-way fails the run, though the tool was happy
	// with what it got.
	cmd := exec.CommandContext(ctx, "sh", "-c", "cat >/dev/null")
	cmd.Stdin = &failingReader{n: 3 << 20}
	if err := Run(ctx, cmd); err == nil || !strings.Contains(err.Error(), "repository read failed") {
		t.Errorf("failing stdin: %v", err)
	}
	// A tool that stops reading early decides by its own exit status.
	cmd = exec.CommandContext(ctx, "head", "-c", "1")
	cmd.Stdin, cmd.Stdout = strings.NewReader(strings.Repeat("x", 8<<20)), io.Discard
	if err := Run(ctx, cmd); err != nil {
		t.Errorf("early exit: %v", err)
	}
	// Everything arrives.
	var out strings.Builder
	cmd = exec.CommandContext(ctx, "wc", "-c")
	cmd.Stdin, cmd.Stdout = strings.NewReader(strings.Repeat("y", 5<<20+7)), &out
	if err := Run(ctx, cmd); err != nil || strings.TrimSpace(out.String()) != "5242887" {
		t.Errorf("wc -c = %q, %v", out.String(), err)
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("repository full")
	}
	return len(p), nil
}

func TestRunStdout(t *testing.T) {
	ctx := context.Background()
	var out strings.Builder
	cmd := exec.CommandContext(ctx, "sh", "-c", "head -c 5000001 /dev/zero | tr '\\0' x")
	cmd.Stdout = &out
	if err := Run(ctx, cmd); err != nil || out.Len() != 5000001 {
		t.Errorf("got %d bytes, %v", out.Len(), err)
	}
	// A stdout that fails stops the tool, and the run fails.
	cmd = exec.CommandContext(ctx, "sh", "-c", "head -c 50000000 /dev/zero")
	cmd.Stdout = &failingWriter{n: 3 << 20}
	if err := Run(ctx, cmd); err == nil {
		t.Error("a failing stdout went unnoticed")
	}
}
