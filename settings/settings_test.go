package settings

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/config"
)

func env(vars map[string]string) Env {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	dirs, err := FindDirs(env(map[string]string{"HOME": home, "XDG_STATE_HOME": "/state"}))
	if err != nil || dirs.Data != filepath.Join(home, ".local/share/cairn") || dirs.State != "/state/cairn" || dirs.Config != filepath.Join(home, ".config/cairn") {
		t.Fatalf("dirs = %+v, %v", dirs, err)
	}
	empty, _ := config.Parse("", nil, env(nil))
	// Nothing said: the per-user default, its key file.
	r, err := Resolve(empty, Flags{}, env(nil), dirs)
	if err != nil || !r.IsDefault || r.Options.Location.Path != filepath.Join(dirs.Data, "repository") || r.Options.Password != "" ||
		!strings.HasPrefix(r.Options.KeyFile, filepath.Join(dirs.Config, "keys")) || !strings.HasPrefix(r.Options.StateDir, "/state/cairn/repos/") {
		t.Errorf("default = %+v, %v", r, err)
	}
	// The flag beats the environment, which beats the config.
	cfg, err := config.Parse(filepath.Join(home, "cairn.yaml"), []byte("repository: {path: repo, password_file: pw}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, "pw"), []byte("from the file\n"), 0o644)
	r, err = Resolve(cfg, Flags{}, env(nil), dirs)
	if err != nil || r.IsDefault || r.Options.Location.Path != filepath.Join(home, "repo") || r.Options.Password.Reveal() != "from the file" || len(r.Warnings) != 1 {
		t.Errorf("from the config = %+v, %v", r, err)
	}
	r, _ = Resolve(cfg, Flags{}, env(map[string]string{"CAIRN_REPOSITORY": "/env/repo", "CAIRN_PASSWORD": "pw"}), dirs)
	if r.Options.Location.Path != "/env/repo" || r.Options.Password.Reveal() != "pw" {
		t.Errorf("from the environment = %+v", r)
	}
	r, _ = Resolve(cfg, Flags{Repo: "/flag/repo"}, env(map[string]string{"CAIRN_REPOSITORY": "/env/repo"}), dirs)
	if r.Options.Location.Path != "/flag/repo" {
		t.Errorf("from the flag = %+v", r)
	}
	// A password file that cannot be read is a missing password.
	if _, err := Resolve(cfg, Flags{}, env(map[string]string{"CAIRN_PASSWORD_FILE": filepath.Join(home, "nope")}), dirs); !errors.Is(err, cairn.ErrNoPassword) {
		t.Errorf("unreadable password file: %v", err)
	}
	// cairn's own files: every repository it knows of, its keys, state,
	// password file and config.
	own, err := Own(cfg, Flags{Repo: "/flag/repo"}, env(nil), dirs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/flag/repo", filepath.Join(home, "repo"), filepath.Join(dirs.Data, "repository"), filepath.Join(dirs.Config, "keys"), "/state/cairn", filepath.Join(home, "pw"), filepath.Join(home, "cairn.yaml")} {
		if r, _ := filepath.EvalSymlinks(filepath.Dir(p)); r != "" {
			p = filepath.Join(r, filepath.Base(p))
		}
		if !slices.Contains(own, p) {
			t.Errorf("own %v lacks %s", own, p)
		}
	}
}
