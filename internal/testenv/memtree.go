package testenv

import (
	"context"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
)

// MemNode is an in-memory snapshot tree, for restoring onto targets
// without a repository.
type MemNode struct {
	name  string
	mode  fs.FileMode
	data  string
	mtime time.Time
	kids  []*MemNode
}

func (n *MemNode) Name() string       { return n.name }
func (n *MemNode) Mode() fs.FileMode  { return n.mode }
func (n *MemNode) Size() int64        { return int64(len(n.data)) }
func (n *MemNode) ModTime() time.Time { return n.mtime }
func (n *MemNode) Children(context.Context) ([]cairn.Node, error) {
	out := make([]cairn.Node, len(n.kids))
	for i, k := range n.kids {
		out[i] = k
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Open reads the file; it seeks, as a snapshot's files do.
func (n *MemNode) Open(context.Context) (io.ReadCloser, error) {
	return memFile{strings.NewReader(n.data)}, nil
}

type memFile struct{ *strings.Reader }

func (memFile) Close() error                                { return nil }
func (n *MemNode) Readlink(context.Context) (string, error) { return n.data, nil }

// MemTime is the modification time of every MemTree entry.
var MemTime = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// MemTree builds a tree from "path" → content ("->target" makes a link),
// files 0644, directories 0755.
func MemTree(files map[string]string) *MemNode {
	root := &MemNode{mode: fs.ModeDir | 0o755, mtime: MemTime}
	for p, content := range files {
		cur := root
		parts := strings.Split(p, "/")
		for _, d := range parts[:len(parts)-1] {
			var next *MemNode
			for _, k := range cur.kids {
				if k.name == d {
					next = k
				}
			}
			if next == nil {
				next = &MemNode{name: d, mode: fs.ModeDir | 0o755, mtime: MemTime}
				cur.kids = append(cur.kids, next)
			}
			cur = next
		}
		n := &MemNode{name: parts[len(parts)-1], mode: 0o644, data: content, mtime: MemTime}
		if strings.HasPrefix(content, "->") {
			n.mode, n.data = fs.ModeSymlink|0o777, strings.TrimPrefix(content, "->")
		}
		cur.kids = append(cur.kids, n)
	}
	return root
}
