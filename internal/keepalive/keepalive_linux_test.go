package keepalive_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/interlock-dev/interlock/internal/keepalive"
)

// TestBothEndsNoticeAVanishedPeerWithinThirtySeconds reads the kernel's
// keepalive settings off a real accepted and a real dialed socket: both
// probe, and give up on a silent peer within 30 s (Go's defaults: 150 s).
func TestBothEndsNoticeAVanishedPeerWithinThirtySeconds(t *testing.T) {
	ln, err := keepalive.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	dialed, err := keepalive.Dialer().Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer server.Close()

	for name, c := range map[string]net.Conn{"accepted (server side)": server, "dialed (agent side)": dialed} {
		on, idle, intvl, cnt := sockopts(t, c.(*net.TCPConn))
		if on == 0 {
			t.Errorf("%s: SO_KEEPALIVE is off", name)
			continue
		}
		within := time.Duration(idle+intvl*cnt) * time.Second
		if within > 30*time.Second || within != keepalive.NoticedWithin() {
			t.Errorf("%s: a vanished peer is noticed after %s (idle %d s, %d probes %d s apart), want %s ≤ 30s",
				name, within, idle, cnt, intvl, keepalive.NoticedWithin())
		}
	}
}

func sockopts(t *testing.T, c *net.TCPConn) (on, idle, intvl, cnt int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	if err := raw.Control(func(fd uintptr) {
		get := func(level, opt int) int {
			v, err := unix.GetsockoptInt(int(fd), level, opt)
			if err != nil {
				errs = append(errs, err)
			}
			return v
		}
		on = get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle = get(syscall.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		intvl = get(syscall.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		cnt = get(syscall.IPPROTO_TCP, unix.TCP_KEEPCNT)
	}); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return on, idle, intvl, cnt
}
