// Package shell quotes words for sh, for the scripts cairn runs on other
// hosts.
package shell

import "strings"

// Quote quotes s for sh: in single quotes, each single quote in s closing
// the quotes, escaped, and opening them again.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
