package postgres

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// oldRows answers as sets of hashes would, whatever was deleted, updated
// (moved to the end), inserted or reordered between the two dumps: a new
// row is an earlier one when its hash is among the earlier hashes, and an
// earlier row of a unique hash is kept when the new dump has its hash.
func TestOldRowsAsSets(t *testing.T) {
	for round := range 200 {
		rnd := rand.New(rand.NewPCG(uint64(round), 7))
		var old []uint64
		for i := range 1 + rnd.IntN(2000) {
			old = append(old, uint64(i)*2654435761+1)
		}
		newer := slices.Clone(old)
		switch round % 4 {
		case 0: // deletions and updates, the updated rows moved to the end
			for range rnd.IntN(50) {
				if len(newer) == 0 {
					break
				}
				i := rnd.IntN(len(newer))
				newer = slices.Delete(newer, i, i+1)
				if rnd.IntN(2) == 0 {
					newer = append(newer, rnd.Uint64())
				}
			}
		case 1: // inserts anywhere
			for range rnd.IntN(50) {
				i := rnd.IntN(len(newer) + 1)
				newer = slices.Insert(newer, i, rnd.Uint64())
			}
		case 2: // reordered
			rnd.Shuffle(len(newer), func(i, j int) { newer[i], newer[j] = newer[j], newer[i] })
		case 3: // rows moved in runs
			for range rnd.IntN(20) {
				i := rnd.IntN(len(newer))
				h := newer[i]
				newer = slices.Delete(newer, i, i+1)
				newer = slices.Insert(newer, rnd.IntN(len(newer)+1), h)
			}
		}
		o := newOldRows(&IndexTable{Hashes: old})
		for _, h := range newer {
			if got, want := o.has(h), slices.Contains(old, h); got != want {
				t.Fatalf("round %d: has(%d) = %v, want %v", round, h, got, want)
			}
		}
		for i, h := range old {
			if got, want := o.kept(i), slices.Contains(newer, h); got != want {
				t.Fatalf("round %d: kept(%d) = %v, want %v", round, i, got, want)
			}
		}
	}
}
