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
	"regexp"

	"github.com/cairn-backup/cairn/internal/runtool"
)

// Load runs a SQL dump against the database c names (which must exist),
// with the engine's own client, through loadFilter (no sandbox-mode line,
// no DEFINER clauses). Load stops at the first error.
func Load(ctx context.Context, c Config, r io.Reader) error {
	tool, err := runtool.Find(mysqlClients, "mariadb", "mysql")
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
	cmd.Stdin, cmd.Stdout = newLoadFilter(r), io.Discard
	if err := runtool.Run(ctx, cmd); err != nil {
		return fmt.Errorf("load into %s with %s: %w%s", c, filepath.Base(tool), err, hint(err.Error()))
	}
	return nil
}

// sandboxLine starts the first line of dumps from MariaDB 10.5.25,
// 10.6.18, 10.11.8, 11.x and later.
var sandboxLine = []byte("/*M!999999\\- enable the sandbox mode */")

// definerRE matches the DEFINER clause of a view, trigger, routine or event.
var definerRE = regexp.MustCompile("DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*`")

// loadFilter passes a dump through with two changes that let it load
// anywhere: a leading sandbox-mode line is dropped, and DEFINER clauses
// are removed, so that the loading user (who may not hold SUPER or SET
// USER on a staging server) becomes the definer. mysqldump writes them only
// on lines starting "/*!" or "CREATE "; every row of data is on an INSERT
// line, so data is never touched. Long lines pass through as they are.
type loadFilter struct {
	br      *bufio.Reader
	pending []byte
	first   bool
	inLong  bool // inside a line longer than the buffer
}

func newLoadFilter(r io.Reader) *loadFilter {
	return &loadFilter{br: bufio.NewReaderSize(r, 1<<20), first: true}
}

// next returns the next piece of the dump to pass on: a line (changed if
// need be), or a part of a line longer than the buffer. The piece is only
// valid until the next call.
func (f *loadFilter) next() ([]byte, error) {
	for {
		line, err := f.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			f.inLong, f.first = true, false
			return line, nil
		case err != nil && len(line) == 0:
			return nil, err
		}
		whole := !f.inLong
		f.inLong = false
		if whole && f.first && bytes.HasPrefix(line, sandboxLine) {
			f.first = false
			continue
		}
		f.first = false
		if whole && (bytes.HasPrefix(line, []byte("/*!")) || bytes.HasPrefix(line, []byte("CREATE "))) && bytes.Contains(line, []byte("DEFINER=")) {
			line = definerRE.ReplaceAll(line, nil)
		}
		return line, nil
	}
}

func (f *loadFilter) Read(p []byte) (int, error) {
	if len(f.pending) == 0 {
		line, err := f.next()
		if err != nil {
			return 0, err
		}
		f.pending = append(f.pending[:0], line...)
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// WriteTo passes the dump on without copying it: each piece is written as
// the reader holds it.
func (f *loadFilter) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(f.pending) > 0 {
		n, err := w.Write(f.pending)
		total += int64(n)
		f.pending = nil
		if err != nil {
			return total, err
		}
	}
	for {
		line, err := f.next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := w.Write(line)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}
