// Package render shows what cairn did and found, for people as lines of
// text and for programs as JSON: the engine's events (a cairn.Reporter),
// snapshots and their listings, tree entries, check and repair reports,
// rewrite reports. The CLI writes them to the terminal, the agent to its
// journal, and the dashboard receives the same JSON.
//
// The JSON is a contract: fields are added, never renamed or removed.
// Streams (restore, clone, check, ls) are NDJSON, one object a line with
// its "message_type"; single results (snapshots, show) are indented JSON.
// Renderers write only to the io.Writers they are given.
package render

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line writes v as one line of JSON (NDJSON).
func Line(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Indented writes v as indented JSON.
func Indented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// rawBytes returns s's bytes when s is not UTF-8, which JSON strings
// cannot hold (they show such bytes as U+FFFD).
// Path is a path as text shows it: as it is, or Go-quoted ("evil\nname",
// "\x1b[31m") when it holds control characters or bytes that are no
// UTF-8, so that a hostile file name can neither pass for two entries nor
// drive the terminal. (JSON carries it whole: path_bytes.)
func Path(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

func rawBytes(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}
