package postgres

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os/exec"
	"regexp"
	"strconv"
)

// restricted makes psql run a dump's SQL and nothing else (its COPYs
// made COPY … WITH (FREEZE), see filterCopies): psql also runs
// its own backslash commands found in its input, and one such as
// \connect other_db (or \! to run a shell command) in a dump would load
// the rest somewhere other than the scratch database. pg_dump's own plain
// dumps name no database and, since the August 2025 releases, start with
// \restrict KEY (every backslash command but \unrestrict KEY refused
// until then) and end with \unrestrict KEY; older dumps have neither.
// restricted starts the stream with a \restrict of its own, with a key the
// dump cannot know, and drops the dump's own \restrict lines (one a part
// of a dump in parts) and the matching \unrestricts, so that any other
// backslash command fails the load (a dump's \restrict dropped leaves
// cairn's in force). With a psql too old to know
// \restrict, the dump is passed as it is.
//
// The caller closes the reader returned once done with it.
func restricted(ctx context.Context, psql string, dump io.Reader) io.ReadCloser {
	if !knowsRestrict(ctx, psql) {
		return io.NopCloser(dump)
	}
	b := make([]byte, 16)
	rand.Read(b) //nolint:errcheck
	key := hex.EncodeToString(b)
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(filterCopies(pw, dump, key))
	}()
	return pr
}

var restrictRE = regexp.MustCompile(`^\\(un)?restrict ([A-Za-z0-9]+)\r?\n?$`)

// filterCopies copies dump to w after a \restrict key line (none if key
// is ""), without the dump's own \restrict and \unrestrict lines (see
// restricted), its COPYs made FREEZE.
func filterCopies(w io.Writer, dump io.Reader, key string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if key != "" {
		if _, err := bw.WriteString("\\restrict " + key + "\n"); err != nil {
			return err
		}
	}
	r := bufio.NewReaderSize(dump, 1<<20)
	keys, inCopy := map[string]bool{}, false
	var text sqlText // a line inside a literal is neither a COPY nor a \restrict
	var copies copyLines
	for {
		line, err := r.ReadSlice('\n')
		full := err != bufio.ErrBufferFull
		sql := !inCopy
		if len(line) > 0 && full {
			lit := text.literal()
			if !inCopy && (!lit || copies.open()) {
				// A COPY line on several lines is written whole.
				text.write(line)
				whole, done := copies.take(bytes.TrimSuffix(line, []byte("\n")))
				switch {
				case !done && err == nil:
					continue
				case !done: // cut short inside a name: as it is
					line = copies.head
				case len(whole) > len(line):
					line = append(whole, '\n')
				}
				sql, lit = false, false
			}
			trimmed := bytes.TrimSpace(line)
			var m [][]byte
			if !inCopy && !lit && bytes.HasPrefix(line, []byte(`\`)) {
				m = restrictRE.FindSubmatch(line)
			}
			switch {
			case inCopy:
				inCopy = !bytes.Equal(trimmed, []byte(`\.`))
			case lit:
			case m != nil && m[1] == nil:
				// A dump's own (a dump in parts has one a part).
				keys[string(m[2])] = true
				continue
			case m != nil && keys[string(m[2])]:
				continue
			case bytes.HasPrefix(trimmed, []byte("COPY ")) && bytes.HasSuffix(trimmed, []byte("FROM stdin;")):
				inCopy = true
				// Every load runs in one transaction that made the
				// table (its leaf, for a partitioned one: pg_dump
				// copies into partitions): FREEZE writes the rows
				// frozen, hint bits set, so that neither the check
				// after the load nor the site's first reads write
				// every page again, and VACUUM has nothing to freeze.
				// (A new slice: line is the reader's buffer.)
				line = append(append([]byte(nil), bytes.TrimSuffix(trimmed, []byte(";"))...), " WITH (FREEZE);\n"...)
			}
		}
		if sql {
			text.write(line)
		}
		if _, werr := bw.Write(line); werr != nil {
			return werr
		}
		for !full { // the rest of a long line
			line, err = r.ReadSlice('\n')
			full = err != bufio.ErrBufferFull
			if sql {
				text.write(line)
			}
			if _, werr := bw.Write(line); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
	}
}

// knowsRestrict tells whether psql has \restrict: 13.22, 14.19, 15.14,
// 16.10, 17.6 and later.
func knowsRestrict(ctx context.Context, psql string) bool {
	out, err := exec.CommandContext(ctx, psql, "--version").Output()
	if err != nil {
		return false
	}
	m := regexp.MustCompile(`(\d+)\.(\d+)`).FindSubmatch(out)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	need := map[int]int{13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
	if n, ok := need[major]; ok {
		return minor >= n
	}
	return major >= 18
}

// copyTarget reads the table of a COPY line, `COPY schema.table (…) FROM
// stdin;`, as it is written there (quoted where pg_dump quoted it).
func copyTarget(line []byte) (string, bool) {
	rest := line[len("COPY "):]
	quoted := false
	for i, b := range rest {
		switch {
		case b == '"':
			quoted = !quoted
		case b == ' ' && !quoted:
			return string(rest[:i]), i > 0
		}
	}
	return "", false
}
