package sshfs_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/sshfs"
)

// The database client reaches MariaDB through the tunnel; forwarding to
// a port nothing listens on fails at once, with advice.
func TestForward(t *testing.T) {
	srv := testenv.NewSSHD(t)
	db := testenv.NewMariaDB(t)
	ctx := context.Background()
	c, err := pool(t, srv, sshfs.Options{}).Dial(ctx, host(srv))
	if err != nil {
		t.Fatal(err)
	}
	tun, err := c.Forward(ctx, "127.0.0.1:3306")
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	h, p, _ := strings.Cut(tun.Addr(), ":")
	for range 3 { // each a connection of its own through the tunnel
		out, err := exec.Command("mariadb", "-uroot", "-h", h, "-P", p, "--protocol=tcp", "-N", "-e", "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '"+db.Database+"'").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Fatalf("through the tunnel: %v: %s", err, out)
		}
	}
	if err := tun.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Forward(ctx, "127.0.0.1:"+itoa(testenv.FreePort()))
	if err == nil || !strings.Contains(err.Error(), "AllowTcpForwarding") {
		t.Fatalf("forward to nothing: %v", err)
	}
}
