package main

import (
	"context"

	"github.com/spf13/cobra"
)

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the repository named in the config (or the default local one)",
		Long: `Create an empty, encrypted repository. Its password comes from
$CAIRN_PASSWORD, $CAIRN_PASSWORD_FILE or repository.password[_file] in the
config; when none is given, a random one is generated into a key file under
your config directory (keep a copy of it somewhere safe).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runInit(cmd.Context()) },
	}
}

func (a *app) runInit(ctx context.Context) error {
	s, err := a.repository()
	if err != nil {
		return err
	}
	if err := a.initRepo(ctx, s.Options); err != nil {
		return err
	}
	return nil
}
