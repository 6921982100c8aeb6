package postgres

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/cairn-backup/cairn/internal/runtool"
)

// Load runs a plain SQL dump against the database c names (which must
// exist) with psql, in one transaction that stops at the first error: the
// database gets the whole dump or nothing of it.
func Load(ctx context.Context, c Config, r io.Reader) error {
	tool, err := runtool.Find("apt-get install postgresql-client", "psql")
	if err != nil {
		return err
	}
	pass, err := passFile(c)
	if err != nil {
		return fmt.Errorf("load into %s: %w", c, err)
	}
	defer pass.Close()
	cmd := exec.CommandContext(ctx, tool, "--no-psqlrc", "--quiet", "--no-password",
		"--set=ON_ERROR_STOP=1", "--single-transaction", "--file=-")
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.ExtraFiles = toolEnv(c), r, io.Discard, []*os.File{pass}
	if err := runtool.Run(ctx, cmd); err != nil {
		return fmt.Errorf("load into %s with psql: %w%s", c, err, hint(err.Error()))
	}
	return nil
}
