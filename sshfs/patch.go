package sshfs

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/shell"
)

// A large file that changed is patched, not sent whole (see
// files.Patcher): the host copies the file there to a temporary name and
// prints the BLAKE2b sum of each block of the copy (cp, split --filter
// and b2sum: coreutils, nothing installed), while the new content's
// blocks are summed here; the blocks that differ are written into the
// copy over SFTP, and the copy is renamed over the file. The copy, not the
// file, is what is compared: whatever the file became meanwhile, the
// result is the new content (the copy's sums are read from the copy, and
// cp and split must say they succeeded).
//
// Blocks sit at fixed offsets, so an edit in place or an append sends a
// block or two, and an insertion what follows it (rsync's rolling hash
// finds moved data too; a site's large files are archives, databases'
// files and media, edited in place or appended to). A host that cannot
// patch (no b2sum, a split without --filter, BusyBox) has its files sent
// whole.

// patchers bounds the patches under way on a tree: each holds a session
// of the connection (OpenSSH allows 10 by default).
const patchers = 2

// patchBlock is the block size for a file of size bytes: some 64 blocks
// of 1 to 16 MiB (the host forks a b2sum for each).
func patchBlock(size int64) int64 {
	bs := int64(1 << 20)
	for bs < 16<<20 && bs*64 < size {
		bs *= 2
	}
	return bs
}

var _ files.Patcher = (*Tree)(nil)

// Patch rewrites rel with r's content, sending only the blocks that
// differ from a copy of rel made on the host (see files.Patcher).
func (t *Tree) Patch(ctx context.Context, rel string, r io.ReadSeeker, size int64, mode fs.FileMode, mtime time.Time) (sent int64, same bool, err error) {
	if size < files.PatchMin {
		return 0, false, fmt.Errorf("%w: smaller than %d MiB", files.ErrNoPatch, files.PatchMin>>20)
	}
	if why := t.noPatch.Load(); why != nil {
		return 0, false, *why
	}
	select {
	case t.patching <- struct{}{}:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	defer func() { <-t.patching }()
	old, err := t.Lstat(ctx, rel)
	if err != nil {
		return 0, false, err
	}
	if !old.Mode.IsRegular() {
		return 0, false, fmt.Errorf("%w: not a regular file on the host", files.ErrNoPatch)
	}
	err = t.place(ctx, rel, func(tmp string) error {
		sc := t.sc()
		f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return err
		}
		defer f.Close()
		// The copy will hold the old file's bytes: no one else may read
		// it. And the host writes into it only once it has checked that
		// the file it opened holds mark, which only this run knows: a
		// link swapped in for the copy's name leads it nowhere.
		if err := f.Chmod(0o600); err != nil {
			return err
		}
		mark := make([]byte, 16)
		rand.Read(mark) //nolint:errcheck
		if _, err := f.Write([]byte(hex.EncodeToString(mark) + "\n")); err != nil {
			return err
		}
		bs := patchBlock(size)
		theirs, ours, err := t.blockSums(ctx, copyScript(t.abs(rel), tmp, hex.EncodeToString(mark), old.Size, bs), halfBlocks(old.Size, bs), r, bs)
		if err != nil {
			return err
		}
		buf := make([]byte, bs)
		for i, sum := range ours {
			if err := ctx.Err(); err != nil {
				return err
			}
			if i < len(theirs) && theirs[i] == sum {
				continue
			}
			off := int64(i) * bs
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				return fmt.Errorf("read the new content: %w", err)
			}
			n, err := io.ReadFull(r, buf[:min(bs, size-off)])
			if err != nil {
				return fmt.Errorf("read the new content: %w", err)
			}
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return err
			}
			sent += int64(n)
		}
		same = sent == 0 && len(theirs) == len(ours)
		if err := f.Truncate(size); err != nil {
			return err
		}
		if err := f.Chmod(mode.Perm()); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return sc.Chtimes(tmp, mtime, mtime)
	})
	return sent, same, err
}

// blockSums has the host run script (see copyScript, and half), while
// r's blocks are summed here.
func (t *Tree) blockSums(ctx context.Context, script string, half int, r io.Reader, bs int64) (theirs, ours []string, err error) {
	type summed struct {
		sums []string
		err  error
	}
	done := make(chan summed, 1)
	go func() {
		s, err := sumBlocks(r, bs)
		done <- summed{s, err}
	}()
	theirs, err = t.copySums(ctx, script, half)
	s := <-done
	if s.err != nil {
		return nil, nil, fmt.Errorf("read the new content: %w", s.err)
	}
	return theirs, s.sums, err
}

// halfBlocks is how many blocks of bs bytes copyScript sums in the first
// half of a copy of size bytes.
func halfBlocks(size, bs int64) int { return int((size + bs - 1) / bs / 2) }

// copyScript copies src into tmp (which holds mark), then prints the
// b2sum of each block of bs bytes of the copy. The copy is cp's (the
// kernel's copy_file_range, or a reflink, where the host's cp has them:
// no pipe carries the bytes), into the file tmp was when its mark was
// checked, whatever its name is now; the sums are read from that file,
// its two halves at once (see readSums). It refuses a src that is no
// regular file (a pipe would never end, a link lead out of the tree),
// and a tmp that does not hold mark (removing what is at that name: a
// file it made, or a link swapped in). It ends itself after a bound (for
// a file of about size bytes), where timeout(1) is: OpenSSH does not pass
// a signal on to a root session, so a copy given up on here would run on
// there.
func copyScript(src, tmp, mark string, size, bs int64) string {
	b := strconv.FormatInt(bs, 10)
	half := strconv.Itoa(halfBlocks(size, bs))
	// Each sum's line is one write, named by split's piece: aaaa… for
	// the first half's blocks, baaa… for the second's.
	sums := func(dd, prefix string) string {
		return dd + " status=none | split -a 4 -b " + b + ` --filter='echo "$FILE $(b2sum)"' - ` + prefix + `; echo "cairn-summed $?" >&2`
	}
	body := "src=" + shell.Quote(src) + " tmp=" + shell.Quote(tmp) + "\n" +
		`[ -f "$src" ] && [ ! -h "$src" ] || { echo "cairn-patch: not a regular file" >&2; exit 3; }` + "\n" +
		// Opening a link swapped in for tmp could open a device (the
		// mark check comes after the open): the open is only tried on a
		// regular file, which narrows that race to between two calls.
		`[ -f "$tmp" ] && [ ! -h "$tmp" ] || { echo "cairn-patch: not the copy" >&2; exit 3; }` + "\n" +
		`exec 3<>"$tmp" || exit 3` + "\n" +
		`IFS= read -r mark <&3; [ "$mark" = ` + mark + ` ] || { rm -f -- "$tmp"; echo "cairn-patch: not the copy" >&2; exit 3; }` + "\n" +
		// /dev/fd/3 opens the file fd 3 is, whatever its name is now.
		`cp -- "$src" /dev/fd/3; c=$?; echo "cairn-copied $c" >&2; [ $c = 0 ] || exit 3` + "\n" +
		"{ " + sums("dd if=/dev/fd/3 bs="+b+" count="+half, "a") + "; } &\n" +
		sums("dd if=/dev/fd/3 bs="+b+" skip="+half, "b") + "\n" +
		"wait\n"
	// split runs each filter with $SHELL -c: a login shell's start-up
	// (bash reads ~/.bashrc when sshd started it) for every block.
	bound := strconv.FormatInt(60+size/(10<<20), 10)
	return "LC_ALL=C SHELL=/bin/sh; export LC_ALL SHELL\n" +
		"if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL " + bound + " sh -c " + shell.Quote(body) + "; fi\n" +
		"exec sh -c " + shell.Quote(body) + "\n"
}

// copySums runs script (see copyScript) on the host and reads its sums.
// A host that cannot (its tools lack or refuse) patches nothing more in
// this run; any other failure is this file's only.
func (t *Tree) copySums(ctx context.Context, script string, half int) ([]string, error) {
	cmd, err := start(ctx, t.conn, "a copy to patch", script)
	if err != nil {
		return nil, err
	}
	theirs, err := readSums(cmd.Out, half)
	if err != nil && !errors.Is(err, errBadSums) {
		cmd.abandon(err)
		return nil, t.cannotPatch(ctx, err)
	}
	if err := cmd.Wait(); err != nil {
		return nil, t.cannotPatch(ctx, err)
	}
	// What the host said first: a tool it lacks shows as lines that are
	// no sums, too.
	if e := cmd.Stderr(); !strings.Contains(e, "cairn-copied 0\n") || strings.Count(e, "cairn-summed 0\n") != 2 || lacksTools(e) {
		return nil, t.cannotPatch(ctx, errors.New(strings.TrimSpace(e)))
	}
	if err != nil {
		return nil, t.cannotPatch(ctx, err)
	}
	return theirs, nil
}

// cannotPatch says why the file could not be patched (unless ctx
// ended), and records it for the run when the host lacks the tools.
func (t *Tree) cannotPatch(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	why := fmt.Errorf("%w: the host could not copy and sum the file (%v)", files.ErrNoPatch, err)
	if lacksTools(err.Error()) {
		t.noPatch.CompareAndSwap(nil, &why)
	}
	return why
}

// lacksTools tells a shell's or a tool's complaint of a missing command
// or option of those the copy runs, from what it wrote to stderr (not
// any "not found": a login script's noise would turn patching off for
// the run).
func lacksTools(stderr string) bool { return missingTool.MatchString(stderr) }

// missingTool matches the complaints lacksTools looks for: dash's
// "sh: 1: b2sum: not found", bash's "b2sum: command not found", BusyBox's
// "split: unrecognized option", GNU's "invalid option".
var missingTool = regexp.MustCompile(`\b(b2sum|split|dd|cp|timeout):( command)? not found|\b(split|dd|cp|timeout|b2sum): (unrecognized|invalid|unknown) option|No such file or directory: b2sum`)

// sumLine is a line of copyScript's: a piece's name, and b2sum's line
// of its stdin.
var sumLine = regexp.MustCompile(`^([ab][a-z]{4}) ([0-9a-f]{128})  -$`)

// errBadSums means the host's sums are not what copyScript prints.
var errBadSums = errors.New("the host's sums are wrong")

// readSums reads copyScript's lines, in the order of the pieces they
// name: the first half's blocks, half of them, then the second's. A
// first half with fewer blocks than that, followed by a second, is an
// error (one dd read less than it was asked).
//
// It reads to the end whatever the lines: errBadSums means that they
// were read, and are wrong.
func readSums(r io.Reader, half int) ([]string, error) {
	byPiece := map[string]string{}
	var bad error
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := sumLine.FindStringSubmatch(sc.Text())
		if m == nil {
			bad = cmp.Or(bad, fmt.Errorf("%w: not a sum: %q", errBadSums, sc.Text()))
			continue
		}
		byPiece[m[1]] = m[2]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if bad != nil {
		return nil, bad
	}
	pieces := slices.Sorted(maps.Keys(byPiece))
	first := len(pieces) - len(slices.DeleteFunc(slices.Clone(pieces), func(p string) bool { return p[0] == 'a' }))
	if first < half && first < len(pieces) {
		return nil, fmt.Errorf("%w: the first half of the copy has %d blocks, not %d", errBadSums, first, half)
	}
	out := make([]string, len(pieces))
	for i, p := range pieces {
		want := "a" + splitSuffix(i)
		if i >= first {
			want = "b" + splitSuffix(i-first)
		}
		if p != want {
			return nil, fmt.Errorf("%w: block %d of the copy has none", errBadSums, i)
		}
		out[i] = byPiece[p]
	}
	return out, nil
}

// splitSuffix is the name split -a 4 gives its piece i: aaaa, aaab, …
func splitSuffix(i int) string {
	b := []byte("aaaa")
	for k := 3; k >= 0 && i > 0; k-- {
		b[k] += byte(i % 26)
		i /= 26
	}
	return string(b)
}

// sumBlocks sums r's blocks of bs bytes, as b2sum does.
func sumBlocks(r io.Reader, bs int64) ([]string, error) {
	// Two buffers: one block is summed while the next is read (reading
	// is the repository's decryption and copies, summing BLAKE2b's: about
	// even).
	type block struct {
		buf []byte
		n   int
	}
	full, free := make(chan block, 1), make(chan []byte, 2)
	free <- make([]byte, bs)
	free <- make([]byte, bs)
	var out []string
	summed := make(chan struct{})
	go func() {
		defer close(summed)
		for b := range full {
			sum := blake2b.Sum512(b.buf[:b.n])
			out = append(out, hex.EncodeToString(sum[:]))
			free <- b.buf
		}
	}()
	var err error
	for {
		buf := <-free
		var n int
		n, err = io.ReadFull(r, buf)
		if n > 0 {
			full <- block{buf, n}
		}
		if err != nil {
			break
		}
	}
	close(full)
	<-summed
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return out, nil
	}
	return nil, err
}
