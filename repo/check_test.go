package repo

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kopia/kopia/repo/blob"

	"github.com/cairn-backup/cairn"
)

func TestParseDataSubset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DataSubset
		bad  bool
	}{
		{in: "10%", want: DataSubset{Percent: 10}},
		{in: "100%", want: DataSubset{Percent: 100}},
		{in: "2.5%", want: DataSubset{Percent: 2.5}},
		{in: "1/7", want: DataSubset{N: 1, T: 7}},
		{in: "7/7", want: DataSubset{N: 7, T: 7}},
		{in: "0%", bad: true},
		{in: "101%", bad: true},
		{in: "0/3", bad: true},
		{in: "4/3", bad: true},
		{in: "1/0", bad: true},
		{in: "x%", bad: true},
		{in: "3", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseDataSubset(tc.in)
		if tc.bad {
			if !errors.Is(err, cairn.ErrInvalidArgument) {
				t.Errorf("ParseDataSubset(%q) = %v, %v; want ErrInvalidArgument", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want || got.String() != tc.in {
			t.Errorf("ParseDataSubset(%q) = %+v (%q), %v; want %+v", tc.in, got, got.String(), err, tc.want)
		}
	}
}

// The slices 1/T … T/T pick every pack exactly once, whatever the packs.
func TestDataSubsetSlicesCoverAll(t *testing.T) {
	var ids []blob.ID
	for i := range 500 {
		ids = append(ids, blob.ID(fmt.Sprintf("p%032x-s%d", i*7919, i)))
	}
	for _, total := range []int{1, 2, 7} {
		seen := map[blob.ID]int{}
		for n := 1; n <= total; n++ {
			for id := range (DataSubset{N: n, T: total}).pick(ids) {
				seen[id]++
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Fatalf("T=%d: pack %s picked %d times, want 1", total, id, seen[id])
			}
		}
	}
	if got := len((DataSubset{Percent: 10}).pick(ids)); got != 50 {
		t.Errorf("10%% of 500 packs picked %d, want 50", got)
	}
	if got := len((DataSubset{}).pick(ids)); got != 0 {
		t.Errorf("no subset picked %d packs, want 0", got)
	}
}
