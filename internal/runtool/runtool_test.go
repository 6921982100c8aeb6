package runtool

import (
	"context"
	"errors"
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
