package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// NetNS is a network namespace a test made for itself (root only). It is
// anonymous: no /run/netns entry, no bind mount, nothing in the host's view.
// The namespace lives as long as this handle (an open descriptor of the
// test process), a socket created in it or a process running in it does;
// Close drops the handle, and when the test process dies for any reason the
// kernel drops it too, so nothing outlives the test, not even a crash.
//
// Sockets a test creates inside it (Listen, ListenPacket, DialContext, or
// anything under Do) belong to the namespace for their whole life, whatever
// thread later uses them; child processes join it through nsenter (Command).
type NetNS struct {
	name string
	fd   int
	once sync.Once
}

// nsCmdTimeout bounds each configuration command (ip, sysctl) run inside.
const nsCmdTimeout = 10 * time.Second

// NewNetNS makes a namespace with its loopback up; name is for messages
// and logs only. Cleanup closes it. The test fails when not root.
func NewNetNS(tb TB, name string) *NetNS {
	tb.Helper()
	RequireRoot(tb, "network namespaces")
	n := &NetNS{name: name, fd: -1}
	err := onNewThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open the new namespace: %w", err)
		}
		n.fd = fd
		return nil
	})
	if err != nil {
		tb.Fatalf("lab: netns %s: %v", name, err)
	}
	tb.Cleanup(n.Close)
	if err := n.Run(context.Background(), "ip", "link", "set", "dev", "lo", "up"); err != nil {
		tb.Fatalf("lab: netns %s: %v", name, err)
	}
	return n
}

// RequireRoot fails (not skips) the test when the process is not root:
// CI runs as root, and a lab test that quietly skipped would prove nothing.
func RequireRoot(tb TB, what string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatalf("%s need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); run the test as root, as CI does", what)
	}
}

// Name is the name given at creation.
func (n *NetNS) Name() string { return n.name }

// Path is a file naming the namespace for other processes
// ("/proc/PID/fd/FD"), valid while the handle is open: nsenter --net=PATH.
func (n *NetNS) Path() string {
	return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(n.fd)
}

// Close drops the handle. The namespace goes once nothing else holds it
// (close its servers and stop its processes first). Safe to call twice.
func (n *NetNS) Close() {
	n.once.Do(func() {
		if n.fd >= 0 {
			_ = unix.Close(n.fd)
		}
	})
}

// Do runs f on an OS thread inside the namespace: every socket f creates
// belongs to it. f must not start goroutines that create sockets (they run
// on other threads, outside).
func (n *NetNS) Do(f func() error) error {
	var ferr error
	err := onNewThread(func() error {
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns %s: %w", n.name, err)
		}
		ferr = f()
		return nil
	})
	return errors.Join(err, ferr)
}

// Listen is net.Listen inside the namespace.
func (n *NetNS) Listen(network, addr string) (ln net.Listener, err error) {
	err = n.Do(func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket inside the namespace.
func (n *NetNS) ListenPacket(network, addr string) (pc net.PacketConn, err error) {
	err = n.Do(func() error {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// DialContext dials from inside the namespace (an http.Transport's
// DialContext, for example).
func (n *NetNS) DialContext(ctx context.Context, network, addr string) (c net.Conn, err error) {
	err = n.Do(func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Command returns a command that runs name inside the namespace, through
// nsenter; the process keeps the PID the returned Cmd starts.
func (n *NetNS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.Path(), "--", name}, args...)...)
}

// Args returns the argv prefix that runs a program inside the namespace,
// for helpers that take a binary and its arguments (testkit.StartProc).
func (n *NetNS) Args() []string { return []string{"nsenter", "--net=" + n.Path(), "--"} }

// Run runs a configuration command inside the namespace, bounded in time.
func (n *NetNS) Run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, nsCmdTimeout)
	defer cancel()
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("in %s: %s %s: %w: %s", n.name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// onNewThread runs f on a goroutine locked to its OS thread and, if f left
// the thread in another namespace, moves it back before unlocking. If that
// fails the goroutine exits still locked, and the runtime ends the thread
// rather than reuse it in the wrong namespace.
func onNewThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open this thread's namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("back to the original namespace: %w", err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Relay is a plain TCP relay (no delay) from a 127.0.0.1 port of the test's
// own namespace to an address inside a NetNS: how Prometheus, a readiness
// wait or a test's HTTP client reach a server in a namespace (an agent's
// /metrics on its 127.0.0.1:9470, say) without any route into it.
type Relay struct {
	ns     *NetNS
	target string
	loop   acceptLoop
	ctx    context.Context
	cancel context.CancelFunc
}

// NewRelay listens on 127.0.0.1 (a free port, outside every namespace the
// test made) and relays each connection to target dialled inside ns.
// Cleanup closes it.
func NewRelay(tb TB, ns *NetNS, target string) *Relay {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("lab: relay listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{ns: ns, target: target, ctx: ctx, cancel: cancel}
	r.loop.start(ln, r.serve)
	tb.Cleanup(r.Close)
	return r
}

// Addr is the relay's "127.0.0.1:PORT".
func (r *Relay) Addr() string { return r.loop.ln.Addr().String() }

// Close stops accepting and cuts every relayed connection. Safe to call
// twice.
func (r *Relay) Close() {
	r.cancel()
	r.loop.close()
}

func (r *Relay) serve(c net.Conn) {
	dctx, cancel := context.WithTimeout(r.ctx, proxyDialTimeout)
	s, err := r.ns.DialContext(dctx, "tcp", r.target)
	cancel()
	if err != nil {
		resetConn(c)
		return
	}
	if !r.loop.conns.add(s) {
		return
	}
	defer r.loop.conns.remove(s)
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(s, c)
	go cp(c, s)
	<-done
	<-done
	s.Close()
	c.Close()
}
