package cairn

import (
	"errors"
	"testing"
)

func TestCheckTables(t *testing.T) {
	want := []TableStat{{Name: "posts", Rows: 3, Checksum: "abc"}, {Name: "log", Rows: 1}}
	tests := []struct {
		got []TableStat
		ok  bool
	}{
		{[]TableStat{{Name: "log", Rows: 1, Checksum: "x"}, {Name: "posts", Rows: 3, Checksum: "abc"}, {Name: "extra", Rows: 9}}, true},
		{[]TableStat{{Name: "posts", Rows: 3}, {Name: "log", Rows: 1}}, true}, // no checksum on one side
		{[]TableStat{{Name: "posts", Rows: 3, Checksum: "abc"}}, false},       // missing table
		{[]TableStat{{Name: "posts", Rows: 2, Checksum: "abc"}, {Name: "log", Rows: 1}}, false},
		{[]TableStat{{Name: "posts", Rows: 3, Checksum: "abd"}, {Name: "log", Rows: 1}}, false},
	}
	for i, tt := range tests {
		err := CheckTables(tt.got, want)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrMismatch)) {
			t.Errorf("case %d: CheckTables = %v, want ok=%v", i, err, tt.ok)
		}
	}
}

func TestTableCounts(t *testing.T) {
	got := TableCounts(map[string]int64{"b": 2, "a": 0})
	if len(got) != 2 || got[0] != (TableStat{Name: "a"}) || got[1] != (TableStat{Name: "b", Rows: 2}) {
		t.Errorf("TableCounts = %+v", got)
	}
}
