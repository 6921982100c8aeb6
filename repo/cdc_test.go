package repo

import (
	"bytes"
	"math/rand"
	"testing"
)

// cutAll cuts data fed in pieces of step bytes.
func cutAll(data []byte, step int) [][]byte {
	var out [][]byte
	var c cdc
	cur := []byte{}
	for len(data) > 0 || len(cur) > 0 {
		if n := c.cut(cur); n > 0 {
			out = append(out, cur[:n:n])
			cur = append([]byte(nil), cur[n:]...)
			continue
		}
		if len(data) == 0 {
			out = append(out, cur)
			break
		}
		k := min(step, len(data))
		cur, data = append(cur, data[:k]...), data[k:]
	}
	return out
}

func TestCDC(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	data := make([]byte, 24<<20)
	rng.Read(data)
	a := cutAll(data, 64<<10)
	if b := cutAll(data, 3<<20+7); len(a) != len(b) {
		t.Fatalf("cuts depend on how the stream arrives: %d vs %d chunks", len(a), len(b))
	}
	total := 0
	for i, c := range a {
		total += len(c)
		if len(c) > cdcMax || (len(c) < cdcMin && i != len(a)-1) {
			t.Errorf("chunk %d: %d bytes", i, len(c))
		}
	}
	if total != len(data) || len(a) < 12 || len(a) > 48 {
		t.Errorf("%d chunks, %d bytes", len(a), total)
	}
	// An insertion near the start changes the chunks around it only.
	edited := append(append(append([]byte(nil), data[:1000]...), []byte("INSERTED")...), data[1000:]...)
	e := cutAll(edited, 64<<10)
	same := 0
	set := map[string]bool{}
	for _, c := range a {
		set[string(c)] = true
	}
	for _, c := range e {
		if set[string(c)] {
			same++
		}
	}
	if same < len(a)-2 {
		t.Errorf("after an insertion only %d of %d chunks are unchanged", same, len(a))
	}
	if !bytes.Equal(bytes.Join(e, nil), edited) {
		t.Error("chunks do not add up to the data")
	}
}
