package sshfs

import (
	"strings"
	"testing"
)

// The host sums a copy's two halves at once: their lines come in any
// order, and are put back in the blocks' order; a half that lost a block
// (its dd read short) is an error, not a shift of every later block.
func TestReadSums(t *testing.T) {
	sum := func(c byte) string { return strings.Repeat(string(c), 128) + "  -" }
	lines := []string{"baaab " + sum('e'), "aaaaa " + sum('a'), "baaaa " + sum('d'), "aaaab " + sum('b'), "aaaac " + sum('c')}
	got, err := readSums(strings.NewReader(strings.Join(lines, "\n")+"\n"), 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range "abcde" {
		if got[i] != strings.Repeat(string(c), 128) {
			t.Errorf("block %d: %.8s…, want %c…", i, got[i], c)
		}
	}
	for name, in := range map[string]string{
		"a first half short of a block": "aaaaa " + sum('a') + "\nbaaaa " + sum('d') + "\n",
		"a block missing in a half":     "aaaaa " + sum('a') + "\naaaac " + sum('c') + "\naaaad " + sum('c') + "\n",
		"not a sum":                     "aaaaa " + strings.Repeat("a", 128) + "\n",
	} {
		if _, err := readSums(strings.NewReader(in), 3); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A file of fewer blocks than the first half expects (it shrank):
	// what there is, in order.
	if got, err := readSums(strings.NewReader("aaaaa "+sum('a')+"\n"), 3); err != nil || len(got) != 1 {
		t.Errorf("a shrunk file: %d sums, %v", len(got), err)
	}
	if splitSuffix(0) != "aaaa" || splitSuffix(27) != "aabb" {
		t.Errorf("splitSuffix: %s %s", splitSuffix(0), splitSuffix(27))
	}
}

// The host lacks a tool the copy runs, as each shell says it; a login
// script's complaint of some other command is not that.
func TestLacksTools(t *testing.T) {
	for _, e := range []string{"sh: 6: b2sum: not found", "bash: line 1: b2sum: command not found", "split: unrecognized option '--filter=b2sum'", "dd: invalid option -- 'x'", "sh: dd: not found"} {
		if !lacksTools(e) {
			t.Errorf("%q: not taken for a missing tool", e)
		}
	}
	for _, e := range []string{"bash: pyenv: command not found", "/home/u/.bashrc: line 3: nvm: not found", "cairn-patch: not a regular file"} {
		if lacksTools(e) {
			t.Errorf("%q: taken for a missing tool", e)
		}
	}
}
