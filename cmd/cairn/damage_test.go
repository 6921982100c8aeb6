package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// Commands that damage a repository the way disks and networks do.

// flipbyte FILE OFFSET: invert one byte (a negative OFFSET counts from
// the end).
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	b, off := readAt(ts, args)
	b[off] ^= 0xff
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o600))
}

// flipchar FILE OFFSET: change one base64 character into another, so that
// a text file stays well-formed but says something else.
func cmdFlipChar(ts *testscript.TestScript, neg bool, args []string) {
	b, off := readAt(ts, args)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, b[off])
	if i < 0 {
		ts.Fatalf("byte %d of %s is %q, not a base64 character", off, args[0], b[off])
	}
	b[off] = alphabet[(i+1)%len(alphabet)]
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o600))
}

func readAt(ts *testscript.TestScript, args []string) ([]byte, int) {
	if len(args) != 2 {
		ts.Fatalf("usage: %s FILE OFFSET", "flipbyte|flipchar")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		ts.Fatalf("offset %s is outside %s (%d bytes)", args[1], args[0], len(b))
	}
	return b, off
}

// truncate FILE SIZE: cut a file to SIZE bytes (a negative SIZE cuts that
// many from the end).
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	if n < 0 {
		n += fi.Size()
	}
	ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
}

// pickblob VAR REPO PREFIX newest|largest: set VAR to the path of the
// newest or largest blob of a local repository whose name starts with
// PREFIX (p: data packs, q: metadata packs, x: index blobs).
func cmdPickBlob(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 4 {
		ts.Fatalf("usage: pickblob VAR REPO PREFIX newest|largest")
	}
	root := ts.MkAbs(args[1])
	var best string
	var bestFi os.FileInfo
	ts.Check(filepath.Walk(filepath.Join(root, args[2][:1]), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !strings.HasPrefix(strings.ReplaceAll(rel, string(filepath.Separator), ""), args[2]) {
			return nil
		}
		better := bestFi == nil
		switch {
		case better:
		case args[3] == "newest":
			better = fi.ModTime().After(bestFi.ModTime())
		case args[3] == "largest":
			better = fi.Size() > bestFi.Size()
		default:
			ts.Fatalf("pickblob: want newest or largest, not %s", args[3])
		}
		if better {
			best, bestFi = p, fi
		}
		return nil
	}))
	if best == "" {
		ts.Fatalf("no blob %s* in %s", args[2], args[1])
	}
	ts.Setenv(args[0], best)
}
