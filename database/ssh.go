package database

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
)

// splitSSH takes the ssh= option out of a DSN: the rest is the engine's
// DSN, via the host it names (nil when none). The password is never
// parsed as part of a URL: the option is cut from the end of the DSN,
// where its query is.
func splitSSH(dsn string) (string, *cairn.Location, error) {
	d, err := cairn.SplitDSN(dsn)
	if err != nil {
		return dsn, nil, nil // the engine's parser says what is wrong
	}
	_, query, ok := strings.Cut(d.Rest, "?")
	if !ok || !strings.HasSuffix(dsn, "?"+query) {
		return dsn, nil, nil
	}
	values, err := url.ParseQuery(query)
	if err != nil || !values.Has("ssh") {
		return dsn, nil, nil
	}
	host := values.Get("ssh")
	values.Del("ssh")
	l, err := cairn.ParseLocation("ssh://"+host+"/", "")
	if err != nil || host == "" || strings.ContainsAny(host, "/?#") {
		return "", nil, fmt.Errorf("%w: %s: ssh=%q is not [user@]host[:port]", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), host)
	}
	rest := strings.TrimSuffix(dsn, "?"+query)
	if q := values.Encode(); q != "" {
		rest += "?" + q
	}
	return rest, &l, nil
}

// withSSH names a database reached through the SSH host via: its DSN as
// that host sees it, with the ssh= option.
func withSSH(dsn string, via *cairn.Location) string {
	if via == nil {
		return dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	host := via.Host
	if via.User != "" {
		host = via.User + "@" + host
	}
	if via.Port != 0 {
		host += fmt.Sprintf(":%d", via.Port)
	}
	return dsn + sep + "ssh=" + host
}

// reach is where this machine reaches the server at host:port as the SSH
// host via sees it (nil via: there): a tunnel's local end.
func reach(ctx context.Context, o Options, via *cairn.Location, host string, port int) (string, int, error) {
	if via == nil {
		return host, port, nil
	}
	addr, err := forward(ctx, o, via, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return host, port, err
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return host, port, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

// forward is the local address that leads to addr through via.
func forward(ctx context.Context, o Options, via *cairn.Location, addr string) (string, error) {
	if o.Tunnels == nil {
		return "", fmt.Errorf("%w: the database at %s is behind the SSH host %s, and this run reaches no other host", cairn.ErrInvalidArgument, addr, via.Host)
	}
	local, err := o.Tunnels.Forward(ctx, *via, addr)
	if err != nil {
		return "", fmt.Errorf("database at %s through %s: %w", addr, via.Host, err)
	}
	return local, nil
}

// tunnelled says, of a failure through a tunnel, where the local address
// its message names leads, and what to do.
func tunnelled(err error, via *cairn.Location, host string, port int, remoteHost string, remotePort int) error {
	if err == nil || via == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w (%s here is this run's SSH tunnel through %s to %s there). Try: check the connection to %s and the server, then run the same command again",
		err, net.JoinHostPort(host, strconv.Itoa(port)), via.Host, net.JoinHostPort(remoteHost, strconv.Itoa(remotePort)), via.Host)
}
