package files

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn/pattern"
)

// The names random trees are made of: few, so that the snapshot and the
// target often have different kinds of entries at the same path.
var randomNames = []string{"a", "b", "wp-content", "caf\xe9", "uploads", ".cairn-x.tmp"}

// randomSnapshot builds a random snapshot tree of files, directories and
// links (some pointing outside).
func randomSnapshot(rng *rand.Rand, outside string) *memNode {
	var build func(depth int) []*memNode
	build = func(depth int) []*memNode {
		var kids []*memNode
		for _, name := range randomNames {
			if rng.IntN(3) == 0 {
				continue
			}
			n := &memNode{name: name, mtime: t0}
			switch k := rng.IntN(4); {
			case k == 0 && depth < 3:
				n.mode = fs.ModeDir | 0o755
				n.kids = build(depth + 1)
			case k == 1:
				n.mode = fs.ModeSymlink | 0o777
				n.data = []string{outside, "../../..", "a", outside + "/victim"}[rng.IntN(4)]
			default:
				n.mode = fs.FileMode([]int{0o644, 0o600, 0o755}[rng.IntN(3)])
				n.data = fmt.Sprintf("snapshot %d", rng.IntN(1000))
			}
			kids = append(kids, n)
		}
		return kids
	}
	return &memNode{mode: fs.ModeDir | 0o755, mtime: t0, kids: build(0)}
}

// randomTarget fills dir with random entries: files, directories, links
// into outside (absolute and relative), named like the snapshot's.
func randomTarget(t *testing.T, rng *rand.Rand, dir, outside string, depth int) {
	for _, name := range randomNames {
		p := filepath.Join(dir, name)
		switch rng.IntN(5) {
		case 0:
			continue
		case 1:
			if depth < 3 {
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				randomTarget(t, rng, p, outside, depth+1)
				continue
			}
			fallthrough
		case 2:
			rel, _ := filepath.Rel(dir, outside)
			if err := os.Symlink([]string{outside, rel, filepath.Join(outside, "victim")}[rng.IntN(3)], p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte("target's own"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkRestored compares dir with the snapshot tree n, ignoring kept
// paths (which may hold anything).
func checkRestored(t *testing.T, n *memNode, dir, rel string, keep pattern.Set, deleted bool) {
	t.Helper()
	want := map[string]*memNode{}
	for _, k := range n.kids {
		want[k.name] = k
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := path.Join(rel, e.Name())
		fi, _ := os.Lstat(filepath.Join(dir, e.Name()))
		k, ok := want[e.Name()]
		if keep.Match(p, fi.IsDir()) || fi.Mode()&fs.ModeSymlink != 0 && keep.Match(p, true) || ok && (keep.Match(p, k.mode.IsDir()) || k.mode&fs.ModeSymlink != 0 && keep.Match(p, true)) {
			delete(want, e.Name()) // kept as the target has it
			continue
		}
		if !ok {
			if deleted || IsTemp(e.Name()) {
				t.Errorf("%s: left on the target, the snapshot lacks it", p)
			}
			continue
		}
		if fi.Mode().Type() != k.mode.Type() {
			t.Errorf("%s: %v on the target, %v in the snapshot", p, fi.Mode(), k.mode)
			continue
		}
		switch {
		case k.mode.IsDir():
			checkRestored(t, k, filepath.Join(dir, e.Name()), p, keep, deleted)
		case k.mode&fs.ModeSymlink != 0:
			if target, _ := os.Readlink(filepath.Join(dir, e.Name())); target != k.data {
				t.Errorf("%s: link to %q, want %q", p, target, k.data)
			}
		default:
			if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); string(b) != k.data || fi.Mode().Perm() != k.mode.Perm() {
				t.Errorf("%s: %q %v, want %q %v", p, b, fi.Mode(), k.data, k.mode)
			}
		}
		delete(want, e.Name())
	}
	for name, k := range want {
		if p := path.Join(rel, name); !keep.Match(p, k.mode.IsDir()) && !(k.mode&fs.ModeSymlink != 0 && keep.Match(p, true)) {
			t.Errorf("%s: in the snapshot, missing on the target", p)
		}
	}
}

func restoreRandomly(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := t.TempDir()
	dst, outside := filepath.Join(base, "target"), filepath.Join(base, "outside")
	write(t, outside, map[string]string{"victim/file": "outside", "a": "outside a", "wp-content/uploads/x": "outside x"})
	os.MkdirAll(dst, 0o755)
	randomTarget(t, rng, dst, outside, 0)
	before := fingerprint(t, outside)
	snap := randomSnapshot(rng, outside)
	var keep pattern.Set
	if rng.IntN(2) == 0 {
		keep = pattern.MustCompile("uploads/", "/b")
	}
	deleted := rng.IntN(2) == 0
	if _, err := Restore(context.Background(), snap, local(t, dst), "", Options{Keep: keep, Delete: deleted, Workers: 1 + rng.IntN(4)}); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if after := fingerprint(t, outside); after != before {
		t.Fatalf("seed %d: the restore changed a directory outside its target:\nbefore\n%s\nafter\n%s", seed, before, after)
	}
	checkRestored(t, snap, dst, "", keep, deleted)
}

// Restores of random trees onto random targets (files, directories and
// links where the snapshot has other kinds) never change anything outside
// the target, and leave it as the snapshot has it.
func TestRestoreRandomTrees(t *testing.T) {
	for seed := range uint64(150) {
		restoreRandomly(t, seed)
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
}

func FuzzRestore(f *testing.F) {
	f.Add(uint64(1))
	f.Fuzz(func(t *testing.T, seed uint64) { restoreRandomly(t, seed) })
}
