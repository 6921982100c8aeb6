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
		{[]TableStat{{Name: "posts", Rows: 3, Checksum: "abd"}, {Name: "log", Rows: 1}}, false}, // strict only
	}
	for i, tt := range tests {
		err := Expect(want, nil)(tt.got)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrMismatch)) {
			t.Errorf("case %d: strict = %v, want ok=%v", i, err, tt.ok)
		}
		var differ []string
		err = Expect(want, &differ)(tt.got)
		lenientOK := tt.ok || i == len(tests)-1
		if (err == nil) != lenientOK {
			t.Errorf("case %d: lenient = %v, want ok=%v", i, err, lenientOK)
		}
		if i == len(tests)-1 && (len(differ) != 1 || differ[0] != "posts") {
			t.Errorf("case %d: differ = %v, want [posts]", i, differ)
		}
	}
}

func TestTableCounts(t *testing.T) {
	got := TableCounts(map[string]int64{"b": 2, "a": 0})
	if len(got) != 2 || got[0] != (TableStat{Name: "a"}) || got[1] != (TableStat{Name: "b", Rows: 2}) {
		t.Errorf("TableCounts = %+v", got)
	}
}
