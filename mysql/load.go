package mysql

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// clientTools are tried in order for loading dumps.
var clientTools = []string{"mariadb", "mysql"}

func clientTool() (string, error) {
	for _, name := range clientTools {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("neither the mariadb nor the mysql client is installed. Try: apt-get install mariadb-client (or default-mysql-client)")
}

// Load runs a SQL dump against the database c names (which must exist),
// with the engine's own client. A first line asking for MariaDB's "sandbox
// mode" (written by newer mariadb-dump, and refused by older servers and by
// MySQL) is dropped. Load stops at the first error.
func Load(ctx context.Context, c Config, r io.Reader) error {
	tool, err := clientTool()
	if err != nil {
		return err
	}
	defaults, err := defaultsFile(c)
	if err != nil {
		return fmt.Errorf("load into %s: write defaults file: %w", c, err)
	}
	defer os.Remove(defaults)
	cmd := exec.CommandContext(ctx, tool, "--defaults-extra-file="+defaults,
		"--default-character-set=utf8mb4", "--max-allowed-packet=1G", "--batch", c.Database)
	cmd.Stdin = withoutSandboxLine(r)
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("load into %s with %s: %v: %s%s", c, filepath.Base(tool), err, stderr.String(), hint(stderr.String()))
	}
	return nil
}

// sandboxLine starts the first line of dumps from MariaDB 10.5.25,
// 10.6.18, 10.11.8, 11.x and later.
var sandboxLine = []byte("/*M!999999\\- enable the sandbox mode */")

// withoutSandboxLine passes r through, minus a leading sandbox-mode line.
func withoutSandboxLine(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(len(sandboxLine))
	if !bytes.Equal(head, sandboxLine) {
		return br
	}
	if _, err := br.ReadSlice('\n'); err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return br
	}
	return br
}
