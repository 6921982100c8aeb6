package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/config"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/internal/runtool"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/site"
)

// app holds what every command shares: the streams and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configFlag string
	repoFlag   string
	verbose    int
	noProgress bool
	limitUp    int

	cfg *config.Config
	log *slog.Logger

	// board, while set, draws every bar a.bar makes as one stage of one
	// line (a clone's side-by-side stages).
	board *progress.Board
	// sites is the catalog (see catalog).
	sites *site.Catalog
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn",
		Short: "Snapshot, restore and clone whole web sites",
		Long: `cairn keeps web sites safe and reproducible: it snapshots a site's files
and databases, at one moment, into a deduplicated, encrypted repository on
local disk or S3-compatible storage; restores any snapshot whole or in part;
clones production to staging in one command (URLs rewritten in the
databases, PHP-serialized and JSON data included); and rewrites SQL dumps
safely on their own.

Configuration is read from --config, else $CAIRN_CONFIG, else ./cairn.yaml.
Without one, cairn uses a local repository in your data directory and a
generated key in your config directory.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           cairn.Version,
		PersistentPreRunE: a.setup,
	}
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + exitCodesHelp + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFlag, "config", "", "configuration file (default $CAIRN_CONFIG, else ./cairn.yaml)")
	pf.StringVarP(&a.repoFlag, "repo", "r", "", "repository: a path or s3://bucket/prefix?endpoint=… (default $CAIRN_REPOSITORY, else the config, else the local default)")
	pf.CountVarP(&a.verbose, "verbose", "v", "log more to stderr (-vv for debug)")
	pf.BoolVar(&a.noProgress, "no-progress", false, "never draw progress bars")
	pf.IntVar(&a.limitUp, "limit-upload", 0, "limit writes to the repository to `KiB/s` (0 = unlimited)")
	root.AddCommand(a.initCommand(), a.snapshotCommand(), a.snapshotsCommand(), a.showCommand(),
		a.lsCommand(), a.restoreCommand(), a.cloneCommand(), a.rewriteCommand(),
		a.checkCommand(), a.repairCommand())
	return root
}

func (a *app) setup(cmd *cobra.Command, _ []string) error {
	level := slog.LevelWarn
	switch {
	case a.verbose >= 2:
		level = slog.LevelDebug
	case a.verbose == 1:
		level = slog.LevelInfo
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	// Earlier versions wrote database passwords to files in the shared
	// temporary directory, which a killed run left behind.
	for _, f := range runtool.SweepLeftovers() {
		a.log.Warn("removed a database password file an earlier, interrupted cairn left", "file", f)
	}
	cfg, err := config.Load(config.Find(a.configFlag))
	if err != nil {
		return err
	}
	if err := checkConfig(cfg); err != nil {
		return err
	}
	a.cfg = cfg
	return nil
}

// checkConfig checks what the config package cannot know by itself (the
// compressors, repository URLs and DSNs cairn takes), so that every
// mistake in the file is reported with its file, line and key, at start.
func checkConfig(cfg *config.Config) error {
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

// repoSettings works out the repository's location and password sources.
type repoSettings struct {
	opts      repo.Options
	isDefault bool // the per-user default local repository
}

func (a *app) repoSettings() (repoSettings, error) {
	var s repoSettings
	loc, isDefault, err := a.repoLocation()
	if err != nil {
		return s, err
	}
	s.isDefault = isDefault
	rc := a.cfg.Repository
	password, err := a.password()
	if err != nil {
		return s, err
	}
	cfgDir, err := configDir()
	if err != nil {
		return s, err
	}
	state, err := stateDir()
	if err != nil {
		return s, err
	}
	s.opts = repo.Options{
		Location:    loc,
		Password:    password,
		KeyFile:     filepath.Join(cfgDir, "keys", loc.ID()+".key"),
		StateDir:    filepath.Join(state, "repos", loc.ID()),
		Compression: rc.Compression, DumpCompression: rc.DumpCompression,
		LimitUpload: float64(a.limitUp) * 1024,
		Logger:      a.log,
	}
	return s, nil
}

// repoLocation works out where the repository is; isDefault says it is
// the per-user default local one.
func (a *app) repoLocation() (loc repo.Location, isDefault bool, err error) {
	if err := a.cfg.CheckRepository(); err != nil {
		return loc, false, err
	}
	rc := a.cfg.Repository
	raw := a.repoFlag
	if raw == "" {
		raw = os.Getenv("CAIRN_REPOSITORY")
	}
	if raw == "" {
		switch {
		case rc.URL != "" && rc.Path != "":
			return loc, false, fmt.Errorf("%s: repository: set url or path, not both", a.cfg.File)
		case rc.URL != "":
			raw = rc.URL
		case rc.Path != "":
			raw = a.cfg.RepositoryPath()
		}
	}
	if raw == "" {
		dir, err := dataDir()
		if err != nil {
			return loc, false, err
		}
		raw, isDefault = filepath.Join(dir, "repository"), true
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
func (a *app) password() (cairn.Secret, error) {
	if p := os.Getenv("CAIRN_PASSWORD"); p != "" {
		return cairn.Secret(p), nil
	}
	file, where := os.Getenv("CAIRN_PASSWORD_FILE"), "$CAIRN_PASSWORD_FILE"
	if file == "" {
		if a.cfg.Repository.Password != "" {
			return a.cfg.Repository.Password, nil
		}
		file, where = a.cfg.PasswordFilePath(), a.cfg.Where("repository.password_file")
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w: cannot read password file: %v. Try: fix repository.password_file or $CAIRN_PASSWORD_FILE", where, cairn.ErrNoPassword, err)
	}
	warnReadable(a.stderr, file)
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%s: %w: password file %s is empty", where, cairn.ErrNoPassword, file)
	}
	return cairn.Secret(p), nil
}

// warnReadable warns when a password or key file is open to other users.
func warnReadable(w io.Writer, file string) {
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(w, "warning: %s holds the repository password and other users can access it (mode %04o). Try: chmod 600 %s\n", file, fi.Mode().Perm(), file)
	}
}

// openRepo opens the repository; create makes the default local one on
// first use.
func (a *app) openRepo(ctx context.Context, create bool) (*repo.Repo, error) {
	return a.openRepoFor(ctx, create, false)
}

// openRepoFor opens the repository, tuned for a restore when restore is set.
func (a *app) openRepoFor(ctx context.Context, create, restore bool) (*repo.Repo, error) {
	s, err := a.repoSettings()
	if err != nil {
		return nil, err
	}
	s.opts.Restore = restore
	if create && s.isDefault {
		exists, err := repo.Exists(ctx, s.opts.Location)
		if err != nil {
			return nil, err
		}
		if !exists {
			if err := a.initRepo(ctx, s.opts); err != nil {
				return nil, err
			}
		}
	}
	if s.opts.Password == "" {
		warnReadable(a.stderr, s.opts.KeyFile)
	}
	unlock, err := a.lockRepository(s.opts.Location, targetlock.Read)
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, s.opts)
	if err != nil {
		unlock()
		return nil, err
	}
	r.OnClose(unlock)
	a.log.Info("repository open", "location", s.opts.Location.String(), "state", s.opts.StateDir, "for_restore", restore)
	a.warnDamagedIndexes(r)
	return r, nil
}

func (a *app) initRepo(ctx context.Context, opts repo.Options) error {
	res, err := repo.Init(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "created repository at %s\n", opts.Location)
	if res.GeneratedKey != "" {
		fmt.Fprintf(a.stderr, "generated its password into %s\n"+
			"KEEP THIS FILE SAFE and copy it somewhere other than this machine: without it the backups cannot be read.\n", res.GeneratedKey)
	}
	return nil
}

func (a *app) bar(label string) *progress.Bar {
	if a.board != nil {
		return a.board.Stage(label)
	}
	f, ok := a.stderr.(*os.File)
	return progress.New(a.stderr, label, ok && !a.noProgress && progress.IsTerminal(f))
}

// startBoard makes the bars that follow stages of one progress line, and
// output safe to print meanwhile, until the returned func is called.
func (a *app) startBoard(label string) func() {
	f, ok := a.stderr.(*os.File)
	b := progress.NewBoard(a.stderr, label, ok && !a.noProgress && progress.IsTerminal(f))
	stdout, stderr := a.stdout, a.stderr
	a.stdout, a.stderr, a.board = b.Writer(stdout), b.Writer(stderr), b
	return func() {
		b.Finish()
		a.stdout, a.stderr, a.board = stdout, stderr, nil
	}
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func xdgDir(env, fallback string) (string, error) {
	if d := os.Getenv(env); d != "" {
		return filepath.Join(d, "cairn"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory: %w. Try: set HOME or %s", err, env)
	}
	return filepath.Join(home, fallback, "cairn"), nil
}

func dataDir() (string, error)   { return xdgDir("XDG_DATA_HOME", ".local/share") }
func stateDir() (string, error)  { return xdgDir("XDG_STATE_HOME", ".local/state") }
func configDir() (string, error) { return xdgDir("XDG_CONFIG_HOME", ".config") }
