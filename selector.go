package cairn

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Selector picks one snapshot: SITE/ENV@SEL, or a bare snapshot ID (or
// unique prefix). SEL is "latest", an ID prefix, or a time meaning the newest
// snapshot at or before it.
type Selector struct {
	Site, Environment string    // empty for a bare ID
	Latest            bool      // "latest"
	ID                string    // ID or prefix
	At                time.Time // time bound, zero when unused
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	hexRE  = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)
)

// ValidName reports whether s can name a site or an environment.
func ValidName(s string) bool { return nameRE.MatchString(s) }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

// ParseSelector parses "SITE/ENV@SEL", "SITE/ENV" (meaning latest) or a bare
// snapshot ID. Times without a zone are read in loc.
func ParseSelector(s string, loc *time.Location) (Selector, error) {
	target, sel, hasAt := strings.Cut(s, "@")
	if !hasAt && !strings.Contains(s, "/") {
		if !hexRE.MatchString(s) {
			return Selector{}, fmt.Errorf("%w: %q is neither SITE/ENV@SEL nor a snapshot ID. Try: cairn snapshots, to see the IDs", ErrInvalidArgument, s)
		}
		return Selector{ID: strings.ToLower(s)}, nil
	}
	site, env, ok := strings.Cut(target, "/")
	if !ok || !ValidName(site) || !ValidName(env) {
		return Selector{}, fmt.Errorf("%w: %q: expected SITE/ENV@SEL, e.g. blog/production@latest", ErrInvalidArgument, s)
	}
	out := Selector{Site: site, Environment: env}
	switch {
	case !hasAt || sel == "latest" || sel == "":
		out.Latest = true
	default:
		if t, ok := parseTime(sel, loc); ok {
			out.At = t
		} else if hexRE.MatchString(sel) {
			out.ID = strings.ToLower(sel)
		} else {
			return Selector{}, fmt.Errorf("%w: %q: SEL must be latest, a snapshot ID or a time such as 2026-11-01 or 2026-11-01T14:30", ErrInvalidArgument, sel)
		}
	}
	return out, nil
}

func parseTime(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			if layout == "2006-01-02" {
				// A bare date means the whole day: the newest snapshot of it.
				t = t.Add(24*time.Hour - time.Nanosecond)
			} else if layout == "2006-01-02T15:04" || layout == "2006-01-02 15:04" {
				t = t.Add(time.Minute - time.Nanosecond)
			} else if !strings.Contains(s, ".") {
				// Listings show whole seconds: include all of that second.
				t = t.Add(time.Second - time.Nanosecond)
			}
			return t, true
		}
	}
	return time.Time{}, false
}

// String renders the selector the way a user would type it.
func (s Selector) String() string {
	if s.Site == "" {
		return s.ID
	}
	switch {
	case s.ID != "":
		return s.Site + "/" + s.Environment + "@" + s.ID
	case !s.At.IsZero():
		return s.Site + "/" + s.Environment + "@" + s.At.Format(time.RFC3339)
	}
	return s.Site + "/" + s.Environment + "@latest"
}

// Pick resolves the selector against a list of snapshots (any order).
func (s Selector) Pick(snaps []*Snapshot) (*Snapshot, error) {
	var cands []*Snapshot
	for _, sn := range snaps {
		if s.Site != "" && (sn.Site != s.Site || sn.Environment != s.Environment) {
			continue
		}
		if s.ID != "" && !strings.HasPrefix(sn.ID, s.ID) {
			continue
		}
		if !s.At.IsZero() && sn.Time.After(s.At) {
			continue
		}
		cands = append(cands, sn)
	}
	if len(cands) == 0 {
		return nil, s.notFound()
	}
	if s.ID != "" && len(cands) > 1 {
		ids := make([]string, 0, len(cands))
		for _, c := range cands {
			ids = append(ids, c.ID)
		}
		return nil, fmt.Errorf("%w: %q matches %s. Try: a longer prefix", ErrAmbiguous, s.ID, strings.Join(ids, ", "))
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Time.Before(cands[j].Time) })
	return cands[len(cands)-1], nil
}

func (s Selector) notFound() error {
	switch {
	case s.Site == "":
		return fmt.Errorf("snapshot %s: %w. Try: cairn snapshots, to list them", s.ID, ErrNotFound)
	case !s.At.IsZero():
		return fmt.Errorf("no snapshot of %s/%s at or before %s: %w. Try: cairn snapshots %s", s.Site, s.Environment, s.At.Format(time.RFC3339), ErrNotFound, s.Site)
	case s.ID != "":
		return fmt.Errorf("no snapshot of %s/%s with ID %s: %w. Try: cairn snapshots %s", s.Site, s.Environment, s.ID, ErrNotFound, s.Site)
	}
	return fmt.Errorf("no snapshot of %s/%s yet: %w. Try: cairn snapshot %s/%s", s.Site, s.Environment, ErrNotFound, s.Site, s.Environment)
}
