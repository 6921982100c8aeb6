package files

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/cairn-backup/cairn"
)

// Tree is a local directory seen as a snapshot tree, to restore from. A
// clone syncs the source's files onto its target with it while the
// snapshot of those files is being taken; restoring the snapshot then
// finds them in place (same size and time) and writes only what changed
// in between.
func Tree(root string) (cairn.Node, error) {
	l := Local{Root: root}
	info, err := l.Lstat("")
	if err != nil {
		return nil, err
	}
	if !info.Mode.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	return &treeNode{l: l, info: info}, nil
}

type treeNode struct {
	l    Local
	rel  string
	info Info
}

func (n *treeNode) Name() string       { return n.info.Name }
func (n *treeNode) Mode() fs.FileMode  { return n.info.Mode }
func (n *treeNode) Size() int64        { return n.info.Size }
func (n *treeNode) ModTime() time.Time { return n.info.ModTime }

// Children lists the directory sorted by name, as os.ReadDir does.
func (n *treeNode) Children(context.Context) ([]cairn.Node, error) {
	infos, err := n.l.ReadDir(n.rel)
	if err != nil {
		return nil, err
	}
	out := make([]cairn.Node, len(infos))
	for i, info := range infos {
		out[i] = &treeNode{l: n.l, rel: path.Join(n.rel, info.Name), info: info}
	}
	return out, nil
}

func (n *treeNode) Open(context.Context) (io.ReadCloser, error) { return n.l.Open(n.rel) }

func (n *treeNode) Readlink(context.Context) (string, error) { return n.l.Readlink(n.rel) }
