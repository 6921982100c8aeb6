package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/format"

	"github.com/cairn-backup/cairn"
)

// formatCopyBlob is cairn's copy of kopia's format blob (kopia.repository),
// written on the first open that succeeds and whenever the format blob
// changes. A wrong password and a damaged format blob both make kopia
// fail to decrypt it; comparing it with the copy tells them apart, and
// cairn repair puts the copy back.
const formatCopyBlob blob.ID = "cairn.format"

// isFormatError tells whether kopia could not parse the format blob.
func isFormatError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"can't parse format blob", "invalid format blob", "invalid repository format", "unknown encryption algorithm", "derive format encryption key"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// formatState is the format blob and cairn's copy of it, as stored.
type formatState struct {
	blob, copy   []byte
	hasCopy      bool
	parses, same bool
}

func readFormat(ctx context.Context, st blob.Storage) (formatState, error) {
	var fs formatState
	b, err := getBlob(ctx, st, format.KopiaRepositoryBlobID)
	if err != nil {
		return fs, fmt.Errorf("read %s: %w", format.KopiaRepositoryBlobID, err)
	}
	fs.blob = b
	_, perr := format.ParseKopiaRepositoryJSON(b)
	fs.parses = perr == nil
	c, err := getBlob(ctx, st, formatCopyBlob)
	switch {
	case err == nil:
		fs.copy, fs.hasCopy, fs.same = c, true, bytes.Equal(b, c)
	case !errors.Is(err, blob.ErrBlobNotFound):
		return fs, fmt.Errorf("read %s: %w", formatCopyBlob, err)
	}
	return fs, nil
}

// diagnoseFormat explains why the format blob could not be opened: a
// wrong password, or damage.
func diagnoseFormat(ctx context.Context, loc Location, openErr error) error {
	st, err := openStorage(ctx, loc, false)
	if err != nil {
		return err
	}
	defer st.Close(ctx) //nolint:errcheck
	fs, err := readFormat(ctx, st)
	if err != nil {
		return err
	}
	damaged := !fs.parses || isFormatError(openErr) || (fs.hasCopy && !fs.same)
	switch {
	case damaged && fs.hasCopy:
		return fmt.Errorf("%w: the format blob %s of %s is damaged (it differs from the copy cairn keeps in %s). "+
			"Try: cairn repair, which puts the copy back; or restore %s from a copy of the repository",
			cairn.ErrDamaged, format.KopiaRepositoryBlobID, loc, formatCopyBlob, format.KopiaRepositoryBlobID)
	case damaged:
		return fmt.Errorf("%w: the format blob %s of %s is damaged (%v). "+
			"Try: restore %s from a copy of the repository (it is the same file in every copy), then cairn check",
			cairn.ErrDamaged, format.KopiaRepositoryBlobID, loc, openErr, format.KopiaRepositoryBlobID)
	case !fs.hasCopy:
		return fmt.Errorf("%w for %s. Try: check CAIRN_PASSWORD or the password file; the password cannot be recovered. "+
			"If the password is surely right, the format blob %s may be damaged: restore it from a copy of the repository",
			cairn.ErrWrongPassword, loc, format.KopiaRepositoryBlobID)
	}
	return fmt.Errorf("%w for %s. Try: check CAIRN_PASSWORD or the password file; the password cannot be recovered", cairn.ErrWrongPassword, loc)
}

// keepFormatCopy writes cairn's copy of the format blob if it is missing
// or stale. The open just succeeded, so the format blob is sound. A
// failure only loses the diagnosis, never data: it is logged.
func (r *Repo) keepFormatCopy(ctx context.Context) {
	st, err := openStorage(ctx, r.opts.Location, false)
	if err != nil {
		r.log.Info("format copy", "err", err)
		return
	}
	defer st.Close(ctx) //nolint:errcheck
	fs, err := readFormat(ctx, st)
	if err != nil || fs.same {
		return
	}
	if err := st.PutBlob(ctx, formatCopyBlob, byteSlice(fs.blob), blob.PutOptions{}); err != nil {
		r.log.Info("write format copy", "err", err)
	}
}

// restoreFormat puts cairn's copy of the format blob back in place of a
// damaged one, keeping the damaged one beside it. It reports whether it
// did.
func restoreFormat(ctx context.Context, loc Location) (bool, error) {
	st, err := openStorage(ctx, loc, false)
	if err != nil {
		return false, err
	}
	defer st.Close(ctx) //nolint:errcheck
	fs, err := readFormat(ctx, st)
	if err != nil || !fs.hasCopy || fs.same {
		return false, err
	}
	if _, err := format.ParseKopiaRepositoryJSON(fs.copy); err != nil {
		return false, fmt.Errorf("%w: the copy %s is damaged too. Try: restore %s from a copy of the repository", cairn.ErrDamaged, formatCopyBlob, format.KopiaRepositoryBlobID)
	}
	if err := st.PutBlob(ctx, formatCopyBlob+".damaged", byteSlice(fs.blob), blob.PutOptions{}); err != nil {
		return false, fmt.Errorf("keep the damaged format blob: %w", err)
	}
	if err := st.PutBlob(ctx, format.KopiaRepositoryBlobID, byteSlice(fs.copy), blob.PutOptions{}); err != nil {
		return false, fmt.Errorf("restore the format blob: %w", err)
	}
	return true, nil
}

func getBlob(ctx context.Context, st blob.Storage, id blob.ID) ([]byte, error) {
	var out bufOutput
	if err := st.GetBlob(ctx, id, 0, -1, &out); err != nil {
		return nil, err //nolint:wrapcheck
	}
	return out.Bytes(), nil
}

// bufOutput is a blob.OutputBuffer in memory.
type bufOutput struct{ bytes.Buffer }

func (b *bufOutput) Length() int { return b.Len() }

// byteSlice is a []byte as blob.Bytes.
type byteSlice []byte

func (b byteSlice) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}
func (b byteSlice) Length() int { return len(b) }
func (b byteSlice) Reader() io.ReadSeekCloser {
	return nopCloser{bytes.NewReader(b)}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
