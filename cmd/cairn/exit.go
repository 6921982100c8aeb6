package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-backup/cairn"
)

// Exit codes, listed in --help. Keep them stable: scripts depend on them.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitRepoMissing = 10
	exitLocked      = 11
	exitPassword    = 12
	exitNotFound    = 13
	exitProtected   = 14
	exitDamaged     = 15
	exitInUse       = 16
	exitInterrupted = 130
)

const exitCodesHelp = `Exit codes:
  0    success
  1    error (the message says what to do next)
  2    wrong usage (unknown command, flag or argument)
  10   repository not found (run cairn init)
  11   locked by another cairn process
  12   wrong or missing repository password
  13   snapshot, site or environment not found
  14   target environment is protected (needs --force and confirmation)
  15   the repository is damaged (cairn check found damage, or the format blob is unreadable)
  16   a target database is in use by other sessions and was left as it was
  130  interrupted (Ctrl-C or SIGTERM); nothing half-done is recorded`

// usageError marks wrong command-line usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exit prints err and maps it to an exit code.
func (a *app) exit(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	code := exitError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		fmt.Fprintln(a.stderr, "cairn: interrupted; nothing half-done was recorded. Run the same command again to finish the job.")
		return exitInterrupted
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintf(a.stderr, "cairn: %v\nTry: cairn --help\n", err)
		return exitUsage
	case errors.Is(err, cairn.ErrInvalidArgument):
		code = exitUsage
	case errors.Is(err, cairn.ErrRepoNotFound):
		code = exitRepoMissing
	case errors.Is(err, cairn.ErrLocked):
		code = exitLocked
	case errors.Is(err, cairn.ErrWrongPassword), errors.Is(err, cairn.ErrNoPassword):
		code = exitPassword
	case errors.Is(err, cairn.ErrNotFound), errors.Is(err, cairn.ErrAmbiguous):
		code = exitNotFound
	case errors.Is(err, cairn.ErrProtected):
		code = exitProtected
	case errors.Is(err, cairn.ErrDamaged):
		code = exitDamaged
	case errors.Is(err, cairn.ErrInUse):
		code = exitInUse
	}
	fmt.Fprintf(a.stderr, "cairn: %v\n", err)
	return code
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires exactly", "flag needs an argument", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
