package rewrite

import (
	"fmt"

	"github.com/cairn-backup/cairn"
)

var (
	errNoPairs   = fmt.Errorf("%w: nothing to replace. Try: --from URL --to URL", cairn.ErrInvalidArgument)
	errEmptyFrom = fmt.Errorf("%w: an empty --from would match everywhere", cairn.ErrInvalidArgument)
)

func errBadPattern(p string) error {
	return fmt.Errorf("%w: bad table pattern %q", cairn.ErrInvalidArgument, p)
}
