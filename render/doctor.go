package render

import (
	"fmt"
	"io"

	"github.com/cairn-backup/cairn/doctor"
)

// Finding writes one preflight finding for people: its status, what was
// checked, and what was found.
func Finding(w io.Writer, f doctor.Finding) {
	fmt.Fprintf(w, "%-4s  %s: %s\n", f.Status, f.Subject, f.Message)
}
