package cairn

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// Lookup walks a snapshot tree from root to the relative path p and
// returns the node and p cleaned ("" for the root).
func Lookup(ctx context.Context, root Node, p string) (Node, string, error) {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return root, "", nil
	}
	n := root
	for _, part := range strings.Split(p, "/") {
		if !n.Mode().IsDir() {
			return nil, "", ErrNotFound
		}
		kids, err := n.Children(ctx)
		if err != nil {
			return nil, "", err
		}
		var next Node
		for _, k := range kids {
			if k.Name() == part {
				next = k
				break
			}
		}
		if next == nil {
			return nil, "", fmt.Errorf("no such path: %w. Try: cairn ls SNAP to see what the snapshot holds", ErrNotFound)
		}
		n = next
	}
	return n, p, nil
}
