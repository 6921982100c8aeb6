package cairn

import (
	"errors"
	"testing"
	"time"
)

func TestParseSelector(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		in   string
		want Selector
		err  bool
	}{
		{"blog/production@latest", Selector{Site: "blog", Environment: "production", Latest: true}, false},
		{"blog/production", Selector{Site: "blog", Environment: "production", Latest: true}, false},
		{"blog/production@3f2a9c", Selector{Site: "blog", Environment: "production", ID: "3f2a9c"}, false},
		{"3F2A9C", Selector{ID: "3f2a9c"}, false},
		{"blog/production@2026-11-01", Selector{Site: "blog", Environment: "production", At: time.Date(2026, 11, 1, 23, 59, 59, 999999999, utc)}, false},
		{"blog/production@2026-11-01T14:30", Selector{Site: "blog", Environment: "production", At: time.Date(2026, 11, 1, 14, 30, 59, 999999999, utc)}, false},
		{"blog/production@2026-11-01T14:30:05Z", Selector{Site: "blog", Environment: "production", At: time.Date(2026, 11, 1, 14, 30, 5, 999999999, utc)}, false},
		{"blog/production@2026-11-01T14:30:05.5Z", Selector{Site: "blog", Environment: "production", At: time.Date(2026, 11, 1, 14, 30, 5, 500000000, utc)}, false},
		{"blog@latest", Selector{}, true},
		{"blog/prod/x@latest", Selector{}, true},
		{"blog/production@yesterday", Selector{}, true},
		{"xyz", Selector{}, true},
		{"abc", Selector{}, true}, // too short for an ID
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.in, utc)
		if (err != nil) != tt.err {
			t.Errorf("ParseSelector(%q) error = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && (got.Site != tt.want.Site || got.Environment != tt.want.Environment || got.Latest != tt.want.Latest || got.ID != tt.want.ID || !got.At.Equal(tt.want.At)) {
			t.Errorf("ParseSelector(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestPick(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	snaps := []*Snapshot{
		{ID: "aaaa1111", Site: "blog", Environment: "production", Time: day(1, 10)},
		{ID: "aaaa2222", Site: "blog", Environment: "production", Time: day(2, 10)},
		{ID: "bbbb3333", Site: "blog", Environment: "staging", Time: day(3, 10)},
		{ID: "cccc4444", Site: "blog", Environment: "production", Time: day(4, 10)},
	}
	tests := []struct {
		sel     string
		want    string
		wantErr error
	}{
		{"blog/production@latest", "cccc4444", nil},
		{"blog/production@2026-11-02", "aaaa2222", nil},
		{"blog/production@2026-11-02T09:00", "aaaa1111", nil},
		{"blog/production@2026-10-31", "", ErrNotFound},
		{"blog/production@aaaa1", "aaaa1111", nil},
		{"blog/production@aaaa", "", ErrAmbiguous},
		{"blog/production@bbbb", "", ErrNotFound}, // another environment's ID
		{"bbbb", "bbbb3333", nil},
		{"dddd", "", ErrNotFound},
		{"blog/dev@latest", "", ErrNotFound},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sel.Pick(snaps)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Pick(%q) error = %v, want %v", tt.sel, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.ID != tt.want {
			t.Errorf("Pick(%q) = %v, %v; want %s", tt.sel, got, err, tt.want)
		}
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"blog/production@latest", "3f2a9c", "a/b@2026-11-01T14:30", "a/b@", "@", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s, time.UTC)
		if err != nil {
			return
		}
		if sel.Site == "" && sel.ID == "" {
			t.Fatalf("ParseSelector(%q) accepted a selector with neither site nor ID", s)
		}
		sel.Pick(nil) //nolint:errcheck
	})
}

func TestSecretRedacts(t *testing.T) {
	s := Secret("hunter2")
	for _, got := range []string{s.String(), s.GoString()} {
		if got != "**redacted**" {
			t.Errorf("secret printed as %q", got)
		}
	}
	b, _ := s.MarshalJSON()
	if string(b) != `"**redacted**"` || s.Reveal() != "hunter2" {
		t.Errorf("MarshalJSON = %s, Reveal = %q", b, s.Reveal())
	}
}
