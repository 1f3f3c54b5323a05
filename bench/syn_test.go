package bench

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// synCapture stamps, with the kernel's receive time, every TCP SYN that
// arrives on the loopback interface for one port: when a connection
// reached the server's host. The application's accept stamp comes later
// by however long the server process took to be scheduled, which is the
// server's noise, not the prober's; both are reported.
type synCapture struct {
	port uint16
	fd   int

	mu    sync.Mutex
	bySrc map[uint16][]int64 // source port → SYN times (Unix ns), in order
	done  chan struct{}
}

// captureSYNs needs CAP_NET_RAW (the agent benchmark runs as root).
func captureSYNs(port uint16) (*synCapture, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: lo.Index})
	}
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}
	if err == nil { // wake up now and then to see whether to stop
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000})
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	c := &synCapture{port: port, fd: fd, bySrc: map[uint16][]int64{}, done: make(chan struct{})}
	go c.run()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *synCapture) run() {
	buf := make([]byte, 128) // the IPv4 and TCP headers are enough
	oob := make([]byte, 128)
	for {
		select {
		case <-c.done:
			unix.Close(c.fd)
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_TRUNC)
		if err != nil {
			continue // EAGAIN at the receive timeout, EINTR
		}
		// On lo every packet is seen leaving and arriving: keep arrivals.
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype != unix.PACKET_HOST {
			continue
		}
		pkt := buf[:min(n, len(buf))]
		if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_TCP {
			continue
		}
		tcp := pkt[int(pkt[0]&0x0f)*4:]
		if len(tcp) < 14 || binary.BigEndian.Uint16(tcp[2:4]) != c.port || tcp[13]&0x12 != 0x02 { // SYN, not SYN-ACK
			continue
		}
		at, ok := rxTime(oob[:oobn])
		if !ok {
			continue
		}
		src := binary.BigEndian.Uint16(tcp[0:2])
		c.mu.Lock()
		c.bySrc[src] = append(c.bySrc[src], at)
		c.mu.Unlock()
	}
}

// rxTime reads the SCM_TIMESTAMPNS control message.
func rxTime(oob []byte) (int64, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return ts.Nano(), true
		}
	}
	return 0, false
}

// synBefore is when the SYN of the connection from src that the server
// accepted at accept arrived: the latest one from that port not after it.
func (c *synCapture) synBefore(src uint16, accept int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.bySrc[src]
	i, _ := slices.BinarySearch(ts, accept+1)
	if i == 0 || accept-ts[i-1] > int64(time.Second) {
		return 0, false
	}
	return ts[i-1], true
}

func (c *synCapture) close() { close(c.done) }
