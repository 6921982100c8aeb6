package repo

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/kopia/kopia/repo/blob"
)

// guardType is the storage type cairn writes into kopia's connection file
// around the real one: it hides the index blobs found damaged, so that a
// repository with a damaged index still opens (kopia refuses to open it
// at all otherwise) and everything intact can be listed and restored.
const guardType = "cairn-guard"

// guardOptions wrap the real storage's connection; Token names the live
// guard in guards.
type guardOptions struct {
	Inner blob.ConnectionInfo `json:"inner"`
	Token string              `json:"cairnGuardToken"`
}

// guards maps tokens to the guards of storages being opened.
var guards sync.Map

func init() {
	blob.AddSupportedStorage(guardType, guardOptions{}, func(ctx context.Context, o *guardOptions, create bool) (blob.Storage, error) {
		st, err := blob.NewStorage(ctx, o.Inner, create)
		if err != nil {
			return nil, err //nolint:wrapcheck
		}
		g, _ := guards.LoadOrStore(o.Token, &guard{})
		return &guardedStorage{Storage: st, g: g.(*guard)}, nil
	})
}

// guard is the set of blobs a storage hides.
type guard struct {
	mu     sync.Mutex
	hidden map[blob.ID]bool
}

func (g *guard) hide(id blob.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hidden == nil {
		g.hidden = map[blob.ID]bool{}
	}
	g.hidden[id] = true
}

func (g *guard) isHidden(id blob.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hidden[id]
}

func (g *guard) list() []blob.ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []blob.ID
	for id := range g.hidden {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// guardedStorage is a storage whose hidden blobs look deleted to readers.
// Writes and deletes go through unchanged.
type guardedStorage struct {
	blob.Storage
	g *guard
}

func (s *guardedStorage) ListBlobs(ctx context.Context, prefix blob.ID, cb func(blob.Metadata) error) error {
	return s.Storage.ListBlobs(ctx, prefix, func(m blob.Metadata) error { //nolint:wrapcheck
		if s.g.isHidden(m.BlobID) {
			return nil
		}
		return cb(m)
	})
}

func (s *guardedStorage) GetBlob(ctx context.Context, id blob.ID, offset, length int64, out blob.OutputBuffer) error {
	if s.g.isHidden(id) {
		return blob.ErrBlobNotFound
	}
	return s.Storage.GetBlob(ctx, id, offset, length, out) //nolint:wrapcheck
}

func (s *guardedStorage) GetMetadata(ctx context.Context, id blob.ID) (blob.Metadata, error) {
	if s.g.isHidden(id) {
		return blob.Metadata{}, blob.ErrBlobNotFound
	}
	return s.Storage.GetMetadata(ctx, id) //nolint:wrapcheck
}

// badIndexBlob finds the index blob that kopia failed to load in an open
// error. Kopia stops at the first one, so a repository with several is
// opened once per damaged blob.
var badIndexBlob = regexp.MustCompile(`error loading index blob ([0-9A-Za-z_-]+)`)

func damagedIndexBlob(err error) (blob.ID, bool) {
	msg := err.Error()
	m := badIndexBlob.FindStringSubmatchIndex(msg)
	if m == nil {
		return "", false
	}
	id, rest := blob.ID(msg[m[2]:m[3]]), msg[m[1]:]
	// Only damage, never a storage that failed to answer: a blob that
	// was read but cannot be decrypted or parsed.
	if !isIndexBlob(id) || !(strings.Contains(rest, "decrypt") || strings.Contains(rest, "invalid") || strings.Contains(rest, "unable to open")) {
		return "", false
	}
	return id, true
}

// isIndexBlob: kopia's index blobs start with "x" (epoch indexes) or "n"
// (the first index format).
func isIndexBlob(id blob.ID) bool {
	return strings.HasPrefix(string(id), "x") || strings.HasPrefix(string(id), "n")
}
