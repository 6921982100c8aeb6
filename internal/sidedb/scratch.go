// Package sidedb names the databases a restore makes beside its target:
// TARGET_cairn_new_XXXXXXXX (the copy being loaded) and
// TARGET_cairn_old_XXXXXXXX (the previous tables, during a swap). Names
// fit MySQL's 64-character limit and PostgreSQL's 63.
package sidedb

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

func prefix(target, role string) string {
	if len(target) > 40 {
		target = target[:40]
	}
	return target + "_cairn_" + role + "_"
}

// Name returns a new random name beside target for role ("new", "old").
func Name(target, role string) string {
	b := make([]byte, 4)
	rand.Read(b) //nolint:errcheck
	return prefix(target, role) + hex.EncodeToString(b)
}

// Like is a LIKE pattern (backslash escapes) matching every name Name
// gives for target and role.
func Like(target, role string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return r.Replace(prefix(target, role)) + "%"
}
