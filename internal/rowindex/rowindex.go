// Package rowindex writes and reads the row indexes a clone keeps of the
// dump it loaded (see cairn.Incremental): gob, compressed with zstd,
// behind a line naming the layout, so that an index of another layout (or
// engine) is refused rather than misread.
package rowindex

import (
	"encoding/gob"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Write writes v to w under format.
func Write(w io.Writer, format string, v any) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	enc := gob.NewEncoder(zw)
	if err := enc.Encode(format); err != nil {
		return err
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	return zw.Close()
}

// Read reads into v what Write wrote under format.
func Read(r io.Reader, format string, v any) error {
	zr, err := zstd.NewReader(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	dec := gob.NewDecoder(zr)
	var got string
	if err := dec.Decode(&got); err != nil {
		return err
	}
	if got != format {
		return fmt.Errorf("row index of another format (%q)", got)
	}
	return dec.Decode(v)
}

// Table is one table's rows in an index: a hash of each, and its primary
// key, in dump order.
type Table struct {
	NoKey  bool     // some row's primary key could not be read, or the table has none
	Hashes []uint64 // of each row as the dump has it
	Keys   []uint32 // Keys[i]…Keys[i+1]: row i's primary key in Arena
	Arena  []byte
}

// Check tells whether every table of an index read back is whole.
func Check(tables map[string]*Table) error {
	for name, t := range tables {
		if len(t.Keys) != len(t.Hashes)+1 || int(t.Keys[len(t.Keys)-1]) > len(t.Arena) {
			return fmt.Errorf("row index: table %s is damaged", name)
		}
	}
	return nil
}
