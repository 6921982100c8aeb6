package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// Load runs a plain SQL dump against the database c names (which must
// exist) with psql, in one transaction that stops at the first error: the
// database gets the whole dump or nothing of it.
func Load(ctx context.Context, c Config, r io.Reader) error {
	tool, err := exec.LookPath("psql")
	if err != nil {
		return errors.New("psql is not installed. Try: apt-get install postgresql-client")
	}
	pass, err := passFile(c)
	if err != nil {
		return fmt.Errorf("load into %s: write password file: %w", c, err)
	}
	defer os.Remove(pass)
	cmd := exec.CommandContext(ctx, tool, "--no-psqlrc", "--quiet", "--no-password",
		"--set=ON_ERROR_STOP=1", "--single-transaction", "--file=-")
	cmd.Env = toolEnv(c, pass)
	cmd.Stdin = r
	var stderr tail
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("load into %s with psql: %v: %s%s", c, err, stderr.String(), hint(stderr.String()))
	}
	return nil
}
