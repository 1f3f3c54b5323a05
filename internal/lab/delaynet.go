package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// DelayNet is a small IPv4 network of hosts, each a network namespace of
// its own, joined by a user-space delay line (the kernel here has no netem,
// and no qdisc is needed): every host has one TUN device holding its
// address, with a route to the whole prefix through it. DelayNet reads every
// packet a host sends into its TUN device, holds it for the one-way delay
// of its (source, destination) pair and then writes it into the destination
// host's TUN device, where the destination's kernel receives it.
//
// Because whole IP packets are delayed, everything is: the TCP handshake
// (connect), TLS round trips, requests and responses, DNS over UDP, ACKs.
// Packets of one pair keep their order (one FIFO per pair, one delay per
// pair); a pair with no Link drops its packets; a full queue (4,096
// packets) drops too, as a router would. Bandwidth is not limited: only
// latency is injected. Holds are recorded per pair, as really held (a timer
// fires late by its slack), the ground truth of accuracy tests.
//
// Addresses live only inside the namespaces DelayNet made; the host's own
// namespace has no route to them, so nothing here can reach another
// network.
type DelayNet struct {
	tb     TB
	prefix netip.Prefix
	run    string // unique per DelayNet: part of every device name
	hosts  []*Host
	byAddr map[netip.Addr]*Host
	pairs  map[[2]int]*pair // by (source, destination) host index

	started atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
	readers sync.WaitGroup
	writers sync.WaitGroup
	once    sync.Once

	dropped  atomic.Int64 // no link, queue full, not IPv4 to a host
	forwards atomic.Int64
}

// Host is one namespace on a DelayNet.
type Host struct {
	Name string
	Addr netip.Addr
	NS   *NetNS
	Dev  string // the TUN device's name inside NS
	idx  int
	tun  *os.File
}

// pair is the delay line from one host to another.
type pair struct {
	oneWay time.Duration
	q      chan packet
	dst    *Host
	held   sleepLog
}

type packet struct {
	read time.Time // when the packet left the source's TUN device
	b    []byte
}

// Queue and packet bounds.
const (
	pairQueue = 4096
	maxPacket = 65535
)

// NewDelayNet makes an empty network on prefix (e.g. 10.213.0.0/24, which
// exists only in the namespaces it makes). Cleanup stops the delay line and
// closes every TUN device and namespace; the test fails when not root.
func NewDelayNet(tb TB, prefix netip.Prefix) *DelayNet {
	tb.Helper()
	RequireRoot(tb, "DelayNet's namespaces and TUN devices")
	if !prefix.Addr().Is4() {
		tb.Fatalf("lab: DelayNet is IPv4 only: %v", prefix)
	}
	var id [3]byte
	_, _ = rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	d := &DelayNet{
		tb: tb, prefix: prefix.Masked(), run: hex.EncodeToString(id[:]),
		byAddr: map[netip.Addr]*Host{}, pairs: map[[2]int]*pair{},
		ctx: ctx, cancel: cancel,
	}
	tb.Cleanup(d.Close)
	return d
}

// AddHost makes a namespace named name with a TUN device holding addr (in
// the prefix), up, routed to the whole prefix. Add hosts before Start.
func (d *DelayNet) AddHost(name string, addr netip.Addr) *Host {
	d.tb.Helper()
	if d.started.Load() {
		d.tb.Fatal("lab: AddHost after Start")
	}
	if !d.prefix.Contains(addr) || d.byAddr[addr] != nil {
		d.tb.Fatalf("lab: host %s: address %v not in %v or taken", name, addr, d.prefix)
	}
	h := &Host{Name: name, Addr: addr, NS: NewNetNS(d.tb, name), idx: len(d.hosts)}
	// IFNAMSIZ is 16 with the NUL: "ep" + 6 hex + "-" + up to 6 more.
	h.Dev = "ep" + d.run + "-" + strconv.Itoa(h.idx)
	var fd int
	err := h.NS.Do(func() error {
		var err error
		fd, err = openTUN(h.Dev)
		return err
	})
	if err != nil {
		d.tb.Fatalf("lab: host %s: %v", name, err)
	}
	// Non-blocking, so os.NewFile puts it on the runtime's poller and Close
	// wakes a pending Read.
	h.tun = os.NewFile(uintptr(fd), "/dev/net/tun:"+h.Dev)
	d.tb.Cleanup(func() { h.tun.Close() }) // before the namespace's Close (LIFO)
	ctx := context.Background()
	for _, args := range [][]string{
		{"link", "set", "dev", h.Dev, "mtu", "1500", "up"},
		{"addr", "add", netip.PrefixFrom(addr, d.prefix.Bits()).String(), "dev", h.Dev},
	} {
		if err := h.NS.Run(ctx, "ip", args...); err != nil {
			d.tb.Fatalf("lab: host %s: %v", name, err)
		}
	}
	d.hosts = append(d.hosts, h)
	d.byAddr[addr] = h
	return h
}

// Link lets a and b talk, with oneWay delay in each direction (a round
// trip costs 2×oneWay). Link before Start.
func (d *DelayNet) Link(a, b *Host, oneWay time.Duration) {
	d.tb.Helper()
	if d.started.Load() {
		d.tb.Fatal("lab: Link after Start")
	}
	for _, p := range [][2]*Host{{a, b}, {b, a}} {
		d.pairs[[2]int{p[0].idx, p[1].idx}] = &pair{oneWay: oneWay, q: make(chan packet, pairQueue), dst: p[1]}
	}
}

// Start runs the delay line until Close (or the test's end).
func (d *DelayNet) Start() {
	if d.started.Swap(true) {
		return
	}
	for _, p := range d.pairs {
		d.writers.Add(1)
		go func() { defer d.writers.Done(); d.deliver(p) }()
	}
	for _, h := range d.hosts {
		d.readers.Add(1)
		go func() { defer d.readers.Done(); d.read(h) }()
	}
}

// OneWay returns the configured delay from src to dst (0, false without a
// link).
func (d *DelayNet) OneWay(src, dst *Host) (time.Duration, bool) {
	p := d.pairs[[2]int{src.idx, dst.idx}]
	if p == nil {
		return 0, false
	}
	return p.oneWay, true
}

// Held returns how long packets from src to dst were really held, in order
// (the last 10,000).
func (d *DelayNet) Held(src, dst *Host) []time.Duration {
	p := d.pairs[[2]int{src.idx, dst.idx}]
	if p == nil {
		return nil
	}
	return p.held.all()
}

// Forwarded and Dropped count packets so far.
func (d *DelayNet) Forwarded() int64 { return d.forwards.Load() }

// Dropped counts packets not forwarded: to no host, between hosts with no
// link, a full queue, or not IPv4 (IPv6 router solicitations, say).
func (d *DelayNet) Dropped() int64 { return d.dropped.Load() }

// Close stops the delay line: packets in flight are dropped, every TUN
// device is closed (the device goes with it). Namespaces close with the
// test's cleanup. Safe to call twice.
func (d *DelayNet) Close() {
	d.once.Do(func() {
		d.cancel()
		for _, h := range d.hosts {
			h.tun.Close() // wakes the reader
		}
		d.readers.Wait()
		if d.started.Load() {
			for _, p := range d.pairs {
				close(p.q)
			}
		}
		d.writers.Wait()
	})
}

// read forwards what h sends until its device is closed.
func (d *DelayNet) read(h *Host) {
	buf := make([]byte, maxPacket)
	for {
		n, err := h.tun.Read(buf)
		now := time.Now()
		if err != nil {
			return
		}
		b := buf[:n]
		if n < 20 || b[0]>>4 != 4 {
			d.dropped.Add(1)
			continue
		}
		dst, _ := netip.AddrFromSlice(b[16:20])
		to := d.byAddr[dst]
		var p *pair
		if to != nil {
			p = d.pairs[[2]int{h.idx, to.idx}]
		}
		if p == nil {
			d.dropped.Add(1)
			continue
		}
		select {
		case p.q <- packet{read: now, b: append([]byte(nil), b...)}:
		default:
			d.dropped.Add(1)
		}
	}
}

// deliver writes p's packets to their destination, each oneWay after it
// was read. Delays do not add up: each packet waits for its own deadline.
func (d *DelayNet) deliver(p *pair) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for pk := range p.q {
		if wait := time.Until(pk.read.Add(p.oneWay)); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-d.ctx.Done():
				continue // drain: Close is under way
			}
		}
		if d.ctx.Err() != nil {
			continue
		}
		if _, err := p.dst.tun.Write(pk.b); err != nil {
			d.dropped.Add(1)
			continue
		}
		p.held.add(time.Since(pk.read))
		d.forwards.Add(1)
	}
}

// openTUN creates a TUN device (IP packets, no packet-info header, no
// offloads: every packet read is complete, checksums included) in the
// calling thread's namespace.
func openTUN(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("device name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return fd, nil
}
