// Package settings works out, from the configuration, the environment and
// the command line, which repository a run of cairn uses (its location,
// password or key file, state directory) and where cairn's own files
// live: the XDG data, state and config directories, and the list of
// paths no snapshot or restore may touch. The CLI and the agent open
// repositories the same way through it.
package settings

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/config"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/repo"
)

// Env reads the environment (os.LookupEnv in use; a map in tests).
type Env func(name string) (string, bool)

func (e Env) get(name string) string {
	if e == nil {
		e = os.LookupEnv
	}
	v, _ := e(name)
	return v
}

// Dirs are cairn's own directories.
type Dirs struct {
	Data, State, Config string
}

// FindDirs finds them under $XDG_DATA_HOME, $XDG_STATE_HOME and
// $XDG_CONFIG_HOME, else under the home directory.
func FindDirs(env Env) (Dirs, error) {
	var d Dirs
	var err error
	for _, x := range []struct {
		dst            *string
		name, fallback string
	}{{&d.Data, "XDG_DATA_HOME", ".local/share"}, {&d.State, "XDG_STATE_HOME", ".local/state"}, {&d.Config, "XDG_CONFIG_HOME", ".config"}} {
		if *x.dst, err = xdgDir(env, x.name, x.fallback); err != nil {
			return d, err
		}
	}
	return d, nil
}

func xdgDir(env Env, name, fallback string) (string, error) {
	if d := env.get(name); d != "" {
		return filepath.Join(d, "cairn"), nil
	}
	home := env.get("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("find home directory: %w. Try: set HOME or %s", err, name)
		}
	}
	return filepath.Join(home, fallback, "cairn"), nil
}

// Repository is the repository a run uses.
type Repository struct {
	Options repo.Options
	// IsDefault: the per-user default local repository (made on first
	// use).
	IsDefault bool
	// Warnings are worth telling the user (a password file others can
	// read).
	Warnings []string
}

// Flags are what the command line says of the repository.
type Flags struct {
	Repo        string  // --repo
	LimitUpload float64 // bytes per second, 0 unlimited
}

// Resolve works out the repository: --repo, else $CAIRN_REPOSITORY, else
// the config's, else the per-user default; its password from
// $CAIRN_PASSWORD, $CAIRN_PASSWORD_FILE, the config's password or
// password_file, else its key file.
func Resolve(cfg *config.Config, f Flags, env Env, dirs Dirs) (Repository, error) {
	var r Repository
	loc, isDefault, err := location(cfg, f, env, dirs)
	if err != nil {
		return r, err
	}
	password, warning, err := password(cfg, env)
	if err != nil {
		return r, err
	}
	if warning != "" {
		r.Warnings = append(r.Warnings, warning)
	}
	rc := cfg.Repository
	r.IsDefault = isDefault
	r.Options = repo.Options{
		Location:    loc,
		Password:    password,
		KeyFile:     filepath.Join(dirs.Config, "keys", loc.ID()+".key"),
		StateDir:    filepath.Join(dirs.State, "repos", loc.ID()),
		Compression: rc.Compression, DumpCompression: rc.DumpCompression,
		LimitUpload: f.LimitUpload,
	}
	if password == "" {
		if w := Readable(r.Options.KeyFile); w != "" {
			r.Warnings = append(r.Warnings, w)
		}
	}
	return r, nil
}

func location(cfg *config.Config, f Flags, env Env, dirs Dirs) (loc repo.Location, isDefault bool, err error) {
	if err := cfg.CheckRepository(); err != nil {
		return loc, false, err
	}
	rc := cfg.Repository
	raw := f.Repo
	if raw == "" {
		raw = env.get("CAIRN_REPOSITORY")
	}
	if raw == "" {
		switch {
		case rc.URL != "" && rc.Path != "":
			return loc, false, fmt.Errorf("%s: repository: set url or path, not both", cfg.File)
		case rc.URL != "":
			raw = rc.URL
		case rc.Path != "":
			raw = cfg.RepositoryPath()
		}
	}
	if raw == "" {
		raw, isDefault = filepath.Join(dirs.Data, "repository"), true
	}
	if loc, err = repo.ParseLocation(raw); err != nil {
		return loc, false, err
	}
	if loc.S3 != nil {
		loc.S3.AccessKeyID = rc.S3.AccessKeyID
		loc.S3.SecretAccessKey = rc.S3.SecretAccessKey
		loc.S3.SessionToken = rc.S3.SessionToken
		if loc.S3.Region == "" {
			loc.S3.Region = rc.S3.Region
		}
	}
	return loc, isDefault, nil
}

// password returns the password from $CAIRN_PASSWORD, $CAIRN_PASSWORD_FILE,
// or the config; "" means: use the key file.
func password(cfg *config.Config, env Env) (cairn.Secret, string, error) {
	if p := env.get("CAIRN_PASSWORD"); p != "" {
		return cairn.Secret(p), "", nil
	}
	file, where := env.get("CAIRN_PASSWORD_FILE"), "$CAIRN_PASSWORD_FILE"
	if file == "" {
		if cfg.Repository.Password != "" {
			return cfg.Repository.Password, "", nil
		}
		file, where = cfg.PasswordFilePath(), cfg.Where("repository.password_file")
	}
	if file == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w: cannot read password file: %v. Try: fix repository.password_file or $CAIRN_PASSWORD_FILE", where, cairn.ErrNoPassword, err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", "", fmt.Errorf("%s: %w: password file %s is empty", where, cairn.ErrNoPassword, file)
	}
	return cairn.Secret(p), Readable(file), nil
}

// Check checks what the config package cannot know by itself (the
// compressors, repository URLs and DSNs cairn takes), so that every
// mistake in the file is reported with its file, line and key, at start.
func Check(cfg *config.Config) error {
	checks := []struct {
		key   string
		check func(string) error
	}{
		{"repository.compression", repo.CheckCompression},
		{"repository.dump_compression", repo.CheckCompression},
		{"repository.url", func(v string) error { _, err := repo.ParseLocation(v); return err }},
		{"sites.*.environments.*.databases[*]", func(v string) error { _, err := database.Open(cairn.NewDSN(v), database.Options{}); return err }},
	}
	for _, c := range checks {
		if err := cfg.Check(c.key, c.check); err != nil {
			return err
		}
	}
	return nil
}

// Readable warns when a password or key file is open to other users.
func Readable(file string) string {
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Sprintf("%s holds the repository password and other users can access it (mode %04o). Try: chmod 600 %s", file, fi.Mode().Perm(), file)
	}
	return ""
}

// Own are cairn's own files, resolved: every repository this run knows
// of (not only the one it opens), the key files, the state directory
// (kopia's config and caches, locks, records), the password file and
// the config. They are never snapshotted, overwritten or deleted.
func Own(cfg *config.Config, f Flags, env Env, dirs Dirs) ([]string, error) {
	var raw []string
	if loc, _, err := location(cfg, f, env, dirs); err == nil && loc.Path != "" {
		raw = append(raw, loc.Path)
	}
	if cfg.Repository.Path != "" {
		raw = append(raw, cfg.RepositoryPath())
	}
	if p := env.get("CAIRN_REPOSITORY"); p != "" && !strings.Contains(p, "://") {
		raw = append(raw, p)
	}
	raw = append(raw, filepath.Join(dirs.Data, "repository"), filepath.Join(dirs.Config, "keys"), dirs.State)
	for _, file := range []string{env.get("CAIRN_PASSWORD_FILE"), cfg.PasswordFilePath(), cfg.File} {
		if file != "" {
			raw = append(raw, file)
		}
	}
	out := make([]string, 0, len(raw))
	for _, p := range raw {
		r, err := files.Resolve(p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", p, err)
		}
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}
