package runtool

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SecretPath is where a tool given a Secret as its first extra file
// (cmd.ExtraFiles[0], its descriptor 3) reads it.
const SecretPath = "/dev/fd/3"

// Secret holds content (a defaults file, a password file: the password in
// clear) for a tool that reads it by file name, without a file on any
// disk: it is anonymous memory (memfd), mode 0600, linked in no
// directory, so nothing is left behind even when cairn or the tool is
// killed with SIGKILL, and no other user can open it. Give it to the tool
// as cmd.ExtraFiles[0] and the tool the name SecretPath; close it once
// the tool has exited. mariadb-dump and mysql read it with
// --defaults-extra-file, libpq's tools with PGPASSFILE (which must be a
// regular file of mode 0600: a memfd is one, a pipe is not).
func Secret(content []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("cairn-secret", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("hold a secret for a tool in memory (memfd_create): %w", err)
	}
	f := os.NewFile(uintptr(fd), "cairn-secret")
	if err = unix.Fchmod(fd, 0o600); err == nil {
		_, err = f.Write(content)
	}
	if err == nil {
		// The tool cannot change it; nobody can make it larger.
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("hold a secret for a tool in memory: %w", err)
	}
	return f, nil
}

// leftoverSecrets are the names earlier versions of cairn gave the
// defaults and password files they wrote to the temporary directory,
// which a killed cairn left behind with the password in clear.
var leftoverSecrets = []string{"cairn-my-*.cnf", "cairn-pg-*.pass"}

// SweepLeftovers removes, from the temporary directory, the files with a
// password in clear that earlier versions of cairn left when killed: this
// user's, older than a minute (a running earlier version's tool has read
// its own by then). It returns the files removed.
func SweepLeftovers() []string {
	var removed []string
	for _, pattern := range leftoverSecrets {
		matches, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
		for _, m := range matches {
			fi, err := os.Lstat(m)
			if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
				continue
			}
			if os.Remove(m) == nil {
				removed = append(removed, m)
			}
		}
	}
	return removed
}
