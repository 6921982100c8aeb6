package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sync"
	"time"
)

// Renamer is implemented by targets that can rename an entry within
// themselves, replacing a file at the new name atomically.
type Renamer interface {
	Rename(ctx context.Context, from, to string) error
}

var (
	_ Renamer = (*Local)(nil)
	_ Target  = (*Staged)(nil)
	_ Linker  = (*Staged)(nil)
)

// Staged is a target whose changes a restore makes out of sight first:
// every file, link and hard link it writes is written under a temporary
// name beside its place (which a snapshot leaves out and the next restore
// removes), and every removal and change of attributes is held back.
// Commit then puts it all in place in one quick pass (removals, renames,
// attributes); Abort removes what was staged instead, leaving the target
// as it was. A restore onto several web nodes stages on every node, and
// commits only once every node has staged.
//
// Directories are made at once (empty until Commit, but for temporary
// files). A file (or link) the snapshot has a directory in the place of is
// renamed aside when the directory is made: Commit removes it, Abort puts
// it back.
type Staged struct {
	t Target

	mu      sync.Mutex
	renames []rename          // in the order written
	staged  map[string]string // final name → temporary name
	removes []string          // held back, in order
	removed map[string]bool
	attrs   []attr // held back, in order
	made    []string
	aside   []rename // entries moved aside for a directory: tmp holds what was at rel
}

type rename struct{ tmp, rel string }

type attr struct {
	rel   string
	mode  fs.FileMode
	mtime time.Time
}

// Stage wraps t, which must be a Renamer.
func Stage(t Target) (*Staged, error) {
	if _, ok := t.(Renamer); !ok {
		return nil, fmt.Errorf("%s cannot rename its files, so a restore cannot be staged there", t)
	}
	return &Staged{t: t, staged: map[string]string{}, removed: map[string]bool{}}, nil
}

func (s *Staged) String() string { return s.t.String() }

func (s *Staged) Lstat(ctx context.Context, rel string) (Info, error) { return s.t.Lstat(ctx, rel) }
func (s *Staged) ReadDir(ctx context.Context, rel string) ([]Info, error) {
	return s.t.ReadDir(ctx, rel)
}
func (s *Staged) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	return s.t.Open(ctx, rel)
}
func (s *Staged) Readlink(ctx context.Context, rel string) (string, error) {
	return s.t.Readlink(ctx, rel)
}

// Mkdir makes the directory now; what is held back for removal there (a
// file where the snapshot has a directory) goes first.
func (s *Staged) Mkdir(ctx context.Context, rel string, mode fs.FileMode) error {
	s.mu.Lock()
	gone := s.removed[rel]
	if gone { // moved aside now, not removed at Commit
		delete(s.removed, rel)
		s.removes = slices.DeleteFunc(s.removes, func(r string) bool { return r == rel })
	}
	s.mu.Unlock()
	if gone {
		tmp := temp(rel)
		if err := s.t.(Renamer).Rename(ctx, rel, tmp); err != nil {
			return err
		}
		s.mu.Lock()
		s.aside = append(s.aside, rename{tmp, rel})
		s.mu.Unlock()
	}
	if err := s.t.Mkdir(ctx, rel, mode); err != nil {
		return err
	}
	s.mu.Lock()
	s.made = append(s.made, rel)
	s.mu.Unlock()
	return nil
}

// temp is a fresh temporary name beside rel.
func temp(rel string) string { return path.Join(path.Dir(rel), tempName(path.Base(rel))) }

func (s *Staged) note(tmp, rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renames = append(s.renames, rename{tmp, rel})
	s.staged[rel] = tmp
}

func (s *Staged) WriteFile(ctx context.Context, rel string, r io.Reader, mode fs.FileMode, mtime time.Time) error {
	tmp := temp(rel)
	if err := s.t.WriteFile(ctx, tmp, r, mode, mtime); err != nil {
		s.t.RemoveAll(ctx, tmp) //nolint:errcheck // the write's error is the one to report
		return err
	}
	s.note(tmp, rel)
	return nil
}

func (s *Staged) Symlink(ctx context.Context, target, rel string) error {
	tmp := temp(rel)
	if err := s.t.Symlink(ctx, target, tmp); err != nil {
		return err
	}
	s.note(tmp, rel)
	return nil
}

// Link stages rel as another name of existing (staged itself, or in
// place).
func (s *Staged) Link(ctx context.Context, existing, rel string) error {
	l, ok := s.t.(Linker)
	if !ok {
		return fmt.Errorf("%s cannot make hard links", s.t)
	}
	s.mu.Lock()
	if tmp, ok := s.staged[existing]; ok {
		existing = tmp
	}
	s.mu.Unlock()
	tmp := temp(rel)
	if err := l.Link(ctx, existing, tmp); err != nil {
		return err
	}
	s.note(tmp, rel)
	return nil
}

// RemoveAll holds rel's removal back until Commit.
func (s *Staged) RemoveAll(_ context.Context, rel string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.removed[rel] {
		s.removed[rel] = true
		s.removes = append(s.removes, rel)
	}
	return nil
}

// SetAttrs holds the change back until Commit.
func (s *Staged) SetAttrs(_ context.Context, rel string, mode fs.FileMode, mtime time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attrs = append(s.attrs, attr{rel, mode, mtime})
	return nil
}

// Commit puts what was staged in place: the removals held back, then the
// staged entries over their places, then the attributes (directories'
// times last, as the restore asked for them).
func (s *Staged) Commit(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rel := range s.removes {
		if _, ok := s.staged[rel]; ok {
			if i, err := s.t.Lstat(ctx, rel); err == nil && !i.Mode.IsDir() {
				continue // the rename replaces it atomically
			}
		}
		if err := s.t.RemoveAll(ctx, rel); err != nil {
			return fmt.Errorf("remove %s/%s: %w", s.t, rel, err)
		}
	}
	rn := s.t.(Renamer)
	for _, r := range s.renames {
		if err := rn.Rename(ctx, r.tmp, r.rel); err != nil {
			return fmt.Errorf("put %s/%s in place: %w", s.t, r.rel, err)
		}
	}
	for _, a := range s.attrs {
		if err := s.t.SetAttrs(ctx, a.rel, a.mode, a.mtime); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("set attributes of %s/%s: %w", s.t, a.rel, err)
		}
	}
	for _, a := range s.aside {
		if err := s.t.RemoveAll(ctx, a.tmp); err != nil {
			return fmt.Errorf("remove %s/%s: %w", s.t, a.tmp, err)
		}
	}
	s.renames, s.removes, s.attrs, s.made, s.aside = nil, nil, nil, nil, nil
	return nil
}

// Abort removes what was staged, best effort: the target is left as it
// was, but for empty directories made that could not be removed (and
// temporary files, on a target that could not be reached, which the next
// restore removes).
func (s *Staged) Abort(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, r := range s.renames {
		if err := s.t.RemoveAll(ctx, r.tmp); err != nil && first == nil {
			first = err
		}
	}
	for i := len(s.made) - 1; i >= 0; i-- {
		if list, err := s.t.ReadDir(ctx, s.made[i]); err == nil && len(list) == 0 {
			s.t.RemoveAll(ctx, s.made[i]) //nolint:errcheck // an empty directory left is harmless
		}
	}
	rn := s.t.(Renamer)
	for i := len(s.aside) - 1; i >= 0; i-- {
		a := s.aside[i]
		if err := rn.Rename(ctx, a.tmp, a.rel); err != nil && first == nil {
			first = fmt.Errorf("put %s/%s back: %w", s.t, a.rel, err)
		}
	}
	s.renames, s.removes, s.attrs, s.made, s.aside = nil, nil, nil, nil, nil
	return first
}
