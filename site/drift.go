package site

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/pattern"
)

// entryShape is what drift compares of an entry: its kind, size and time
// (to the second: file systems keep finer times differently).
type entryShape struct {
	kind  fs.FileMode
	size  int64
	mtime int64
}

// Drift compares the trees of an environment's web nodes (the first is
// the one a snapshot reads) and says how each other one differs from it:
// files it lacks, files only it has, files of another size, kind or time
// (an upload that reached one node only, a deploy that missed one).
// Paths exclude matches are not compared. It returns nothing when the
// trees agree; it fails only when the first cannot be read.
func Drift(ctx context.Context, trees []cairn.Tree, exclude pattern.Set) ([]string, error) {
	if len(trees) < 2 {
		return nil, nil
	}
	first, err := shapes(ctx, trees[0], exclude)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range trees[1:] {
		other, err := shapes(ctx, t, exclude)
		if err != nil {
			// Another node's trouble is no reason not to snapshot the
			// first: it is said.
			out = append(out, fmt.Sprintf("the web nodes' files could not be compared: %s: %v", t, err))
			continue
		}
		var lacks, extra, differ []string
		for p, a := range first {
			b, ok := other[p]
			switch {
			case !ok:
				lacks = append(lacks, p)
			case a != b:
				differ = append(differ, p)
			}
		}
		for p := range other {
			if _, ok := first[p]; !ok {
				extra = append(extra, p)
			}
		}
		var parts []string
		for _, d := range []struct {
			what string
			list []string
		}{{"lacks", lacks}, {"has, alone,", extra}, {"has another version of", differ}} {
			if len(d.list) > 0 {
				parts = append(parts, fmt.Sprintf("%s %d path(s): %s", d.what, len(d.list), examples(d.list)))
			}
		}
		if len(parts) > 0 {
			out = append(out, fmt.Sprintf("the web nodes' files differ: %s, against %s, %s", t, trees[0], strings.Join(parts, "; ")))
		}
	}
	return out, nil
}

// examples lists the first few of list, sorted.
func examples(list []string) string {
	sort.Strings(list)
	if len(list) > 5 {
		return strings.Join(list[:5], ", ") + fmt.Sprintf(" and %d more", len(list)-5)
	}
	return strings.Join(list, ", ")
}

// shapes lists a tree: every entry's shape by path, directories' times
// left out (any file written in one changes it).
func shapes(ctx context.Context, t cairn.Tree, exclude pattern.Set) (map[string]entryShape, error) {
	out := map[string]entryShape{}
	var walk func(rel string) error
	walk = func(rel string) error {
		list, err := t.ReadDir(ctx, rel)
		if err != nil {
			return fmt.Errorf("compare the web nodes' files: %w", err)
		}
		for _, i := range list {
			p := path.Join(rel, i.Name)
			if files.IsTemp(i.Name) || exclude.Match(p, i.Mode.IsDir()) {
				continue
			}
			s := entryShape{kind: i.Mode.Type()}
			if !i.Mode.IsDir() {
				s.size = i.Size
			}
			if i.Mode.IsRegular() { // a link's own time is not always kept by a copy
				s.mtime = i.ModTime.Truncate(time.Second).Unix()
			}
			out[p] = s
			if i.Mode.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk("")
}
