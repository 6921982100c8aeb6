package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/config"
	"github.com/cairn-backup/cairn/internal/runtool"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/settings"
	"github.com/cairn-backup/cairn/site"
	"github.com/cairn-backup/cairn/sshfs"
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
	// pool holds this run's connections to other hosts (see catalog).
	pool *sshfs.Pool
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
		a.checkCommand(), a.repairCommand(), a.doctorCommand())
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
	if err := settings.Check(cfg); err != nil {
		return err
	}
	a.cfg = cfg
	return nil
}

// repository is the repository this run uses (see package settings);
// its warnings are printed.
func (a *app) repository() (settings.Repository, error) {
	dirs, err := settings.FindDirs(nil)
	if err != nil {
		return settings.Repository{}, err
	}
	r, err := settings.Resolve(a.cfg, a.flags(), nil, dirs)
	if err != nil {
		return r, err
	}
	r.Options.Logger = a.log
	for _, w := range r.Warnings {
		fmt.Fprintln(a.stderr, "warning:", w)
	}
	return r, nil
}

func (a *app) flags() settings.Flags {
	return settings.Flags{Repo: a.repoFlag, LimitUpload: float64(a.limitUp) * 1024}
}

// openRepo opens the repository; create makes the default local one on
// first use.
func (a *app) openRepo(ctx context.Context, create bool) (*repo.Repo, error) {
	return a.openRepoFor(ctx, create, false)
}

// openRepoFor opens the repository, tuned for a restore when restore is set.
func (a *app) openRepoFor(ctx context.Context, create, restore bool) (*repo.Repo, error) {
	s, err := a.repository()
	if err != nil {
		return nil, err
	}
	s.Options.Restore = restore
	if create && s.IsDefault {
		exists, err := repo.Exists(ctx, s.Options.Location)
		if err != nil {
			return nil, err
		}
		if !exists {
			if err := a.initRepo(ctx, s.Options); err != nil {
				return nil, err
			}
		}
	}
	unlock, err := a.lockRepository(s.Options.Location, targetlock.Read)
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, s.Options)
	if err != nil {
		unlock()
		return nil, err
	}
	r.OnClose(unlock)
	a.log.Info("repository open", "location", s.Options.Location.String(), "state", s.Options.StateDir, "for_restore", restore)
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
