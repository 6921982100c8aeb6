package repo

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kopia/kopia/repo/compression"

	"github.com/cairn-backup/cairn"
)

// Compressors lists the names repository.compression and dump_compression
// take: "none" and kopia's registered compressors that are not deprecated.
func Compressors() []string {
	names := []string{"none"}
	for n := range compression.ByName {
		if compression.IsSupported(n) && !compression.IsDeprecated[n] {
			names = append(names, string(n))
		}
	}
	slices.Sort(names)
	return names
}

// CheckCompression reports a compressor name kopia does not know (it would
// store the data uncompressed without a word). "" is the default.
func CheckCompression(name string) error {
	if name == "" || slices.Contains(Compressors(), name) {
		return nil
	}
	return fmt.Errorf("%w: unknown compressor %q. Try one of: %s", cairn.ErrInvalidArgument, name, strings.Join(Compressors(), ", "))
}
