// Package keepalive is how Interlock's long-held connections (an agent's
// one connection to a server) notice a peer that vanished: a host
// powered off, a network cut, a server that froze with its sockets open.
//
// The kernel's TCP keepalives do it, not messages of our own: they are
// sent and answered by the kernel, so ten thousand idle agent connections
// cost the server no CPU to watch, where an HTTP/2 PING every 10 s on
// each was a thousand TLS writes a second, most of an idle server's CPU.
// Go's defaults (15 s idle, then 9 probes 15 s apart) take 150 s to give
// up; these take about 30 s.
package keepalive

import (
	"context"
	"net"
	"time"
)

// Config starts probing a connection after 15 s without traffic and
// gives up after 3 unanswered probes 5 s apart: a vanished peer is
// noticed 30 s after its last packet.
var Config = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// NoticedWithin is how long after a peer's last packet a connection
// watched by Config is closed.
func NoticedWithin() time.Duration {
	return Config.Idle + time.Duration(Config.Count)*Config.Interval
}

// Listen listens on a TCP address; the connections it accepts use Config.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: Config}
	return lc.Listen(ctx, "tcp", addr)
}

// Dialer dials connections that use Config.
func Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAliveConfig: Config}
}
