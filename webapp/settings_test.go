package webapp

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn/files"
)

func TestSet(t *testing.T) {
	dir := tree(t, map[string]string{
		"config.php":     "<?php\ndefine('SITE_MODE', 'live');\n$cache_host = \"redis1\";\n",
		".env.local":     "MODE=live\nexport QUEUE=redis\n",
		"app/app.ini":    "[main]\nmode=live\n",
		"conf/site.yaml": "mode: live\nname: shop\n",
		"data.json":      "{}",
	})
	settings := []Setting{
		{"config.php", "SITE_MODE", "staging"}, {"config.php", "cache_host", "127.0.0.1"},
		{".env.local", "MODE", "staging"}, {".env.local", "QUEUE", "sync"}, {".env.local", "NEW_KEY", "a b"},
		{"app/app.ini", "mode", "staging"}, {"conf/site.yaml", "mode", "staging: yes"},
	}
	never := func(string) bool { return false }
	changes, err := Set(context.Background(), local(t, dir), settings, never, false)
	if err != nil || len(changes) != 7 {
		t.Fatalf("Set = %+v, %v", changes, err)
	}
	want := map[string]string{
		"config.php":     "<?php\ndefine('SITE_MODE', 'staging');\n$cache_host = '127.0.0.1';\n",
		".env.local":     "MODE=staging\nQUEUE=sync\nNEW_KEY=\"a b\"\n",
		"app/app.ini":    "[main]\nmode = staging\n",
		"conf/site.yaml": "mode: \"staging: yes\"\nname: shop\n",
	}
	for f, w := range want {
		if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != w {
			t.Errorf("%s:\n%q\nwant\n%q", f, b, w)
		}
	}
	if again, err := Set(context.Background(), local(t, dir), settings, never, false); err != nil || len(again) != 0 {
		t.Errorf("second Set = %+v, %v", again, err)
	}
	for _, bad := range []Setting{{"data.json", "k", "v"}, {"config.php", "MISSING", "x"}, {"../outside.env", "K", "v"}, {"nope.env", "K", "v"}} {
		if _, err := Set(context.Background(), local(t, dir), []Setting{bad}, never, false); err == nil {
			t.Errorf("Set(%+v) succeeded", bad)
		}
	}
	if ch, _ := Set(context.Background(), local(t, dir), []Setting{{"config.php", "SITE_MODE", "x"}}, func(f string) bool { return f == "config.php" }, false); len(ch) != 0 {
		t.Errorf("a kept file changed: %+v", ch)
	}
}

// local is the tree at dir, as a restore's target.
func local(t *testing.T, dir string) files.Target {
	t.Helper()
	l, err := files.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
