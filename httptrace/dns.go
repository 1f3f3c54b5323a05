package httptrace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// maxUDPAnswer is the EDNS0 buffer size offered (the DNS flag day's 1232,
// as Go's resolver offers); a longer answer comes truncated and is asked
// again over TCP.
const maxUDPAnswer = 1232

// queryTimeout bounds one exchange when the context sets no deadline, as
// the resolvers' default of 5 s does.
const queryTimeout = 5 * time.Second

// lookupAt asks server, and only it, for host's A and/or AAAA records
// (network "ip4", "ip6" or "ip"), following CNAMEs within the answer. The
// probe's DNS phase is this one exchange: one socket, the queries of both
// families sent together (as glibc does), no hosts file and no search
// list, which belong to the system resolver and not to a named server.
func lookupAt(ctx context.Context, server, host, network string) ([]netip.Addr, error) {
	name, err := dnsmessage.NewName(fqdn(host))
	if err != nil {
		return nil, &net.DNSError{Err: "invalid name: " + err.Error(), Name: host, Server: server}
	}
	var types []dnsmessage.Type
	switch network {
	case "ip4":
		types = []dnsmessage.Type{dnsmessage.TypeA}
	case "ip6":
		types = []dnsmessage.Type{dnsmessage.TypeAAAA}
	default:
		types = []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, queryTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	answers, err := exchangeUDP(ctx, server, name, types, deadline)
	if err != nil {
		return nil, dnsError(ctx, err, host, server)
	}
	var ips []netip.Addr
	var lastErr error
	for i, t := range types {
		msg := answers[i]
		if msg.Header.Truncated {
			if msg, err = exchangeTCP(ctx, server, name, t, deadline); err != nil {
				return nil, dnsError(ctx, err, host, server)
			}
		}
		got, err := addressesOf(msg, name, host, server)
		if err != nil {
			lastErr = err
			continue
		}
		ips = append(ips, got...)
	}
	if len(ips) == 0 {
		if lastErr == nil {
			lastErr = &net.DNSError{Err: "no such host", Name: host, Server: server, IsNotFound: true}
		}
		return nil, lastErr
	}
	return ips, nil
}

func fqdn(host string) string {
	if host != "" && host[len(host)-1] == '.' {
		return host
	}
	return host + "."
}

// exchangeUDP sends one query per type on one socket and returns the
// answers in the order of types.
func exchangeUDP(ctx context.Context, server string, name dnsmessage.Name, types []dnsmessage.Type, deadline time.Time) ([]*dnsmessage.Message, error) {
	conn, done, err := dialDNS(ctx, "udp", server, deadline)
	if err != nil {
		return nil, err
	}
	defer done()

	ids := make([]uint16, len(types))
	for i, t := range types {
		ids[i] = uint16(rand.Uint32())
		q, err := query(ids[i], name, t, true)
		if err != nil {
			return nil, err
		}
		if _, err := conn.Write(q); err != nil {
			return nil, err
		}
	}
	answers := make([]*dnsmessage.Message, len(types))
	buf := make([]byte, maxUDPAnswer)
	for missing := len(types); missing > 0; {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		var msg dnsmessage.Message
		if err := msg.Unpack(buf[:n]); err != nil {
			continue // not a DNS answer: keep waiting for ours
		}
		for i, t := range types {
			if answers[i] == nil && answersQuery(&msg, ids[i], name, t) {
				answers[i] = &msg
				missing--
				break
			}
		}
	}
	return answers, nil
}

// dialDNS connects to server, bounded by deadline and by ctx (its
// cancellation unblocks any read or write); done closes the connection.
func dialDNS(ctx context.Context, network, server string, deadline time.Time) (net.Conn, func(), error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return conn, func() { stop(); conn.Close() }, nil
}

// exchangeTCP asks again over TCP, for an answer too long for UDP.
func exchangeTCP(ctx context.Context, server string, name dnsmessage.Name, t dnsmessage.Type, deadline time.Time) (*dnsmessage.Message, error) {
	conn, done, err := dialDNS(ctx, "tcp", server, deadline)
	if err != nil {
		return nil, err
	}
	defer done()
	id := uint16(rand.Uint32())
	q, err := query(id, name, t, false)
	if err != nil {
		return nil, err
	}
	framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(q)), uint16(len(q)))
	if _, err := conn.Write(append(framed, q...)); err != nil {
		return nil, err
	}
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	var msg dnsmessage.Message
	if err := msg.Unpack(buf); err != nil {
		return nil, fmt.Errorf("malformed DNS answer: %w", err)
	}
	if !answersQuery(&msg, id, name, t) {
		return nil, errors.New("DNS answer does not match the query")
	}
	return &msg, nil
}

// query packs a recursive query, with an EDNS0 record offering
// maxUDPAnswer bytes when it goes over UDP.
func query(id uint16, name dnsmessage.Name, t dnsmessage.Type, edns bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: name, Type: t, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	if edns {
		if err := b.StartAdditionals(); err != nil {
			return nil, err
		}
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(maxUDPAnswer, dnsmessage.RCodeSuccess, false); err != nil {
			return nil, err
		}
		if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

func answersQuery(msg *dnsmessage.Message, id uint16, name dnsmessage.Name, t dnsmessage.Type) bool {
	if !msg.Header.Response || msg.Header.ID != id || len(msg.Questions) != 1 {
		return false
	}
	q := msg.Questions[0]
	return q.Type == t && q.Class == dnsmessage.ClassINET && equalNames(q.Name, name)
}

// addressesOf reads the A and AAAA records of name from an answer,
// following the CNAME chain the server put in it.
func addressesOf(msg *dnsmessage.Message, name dnsmessage.Name, host, server string) ([]netip.Addr, error) {
	switch msg.Header.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: server, IsNotFound: true}
	case dnsmessage.RCodeServerFailure:
		return nil, &net.DNSError{Err: "server misbehaving (SERVFAIL)", Name: host, Server: server, IsTemporary: true}
	default:
		return nil, &net.DNSError{Err: "server misbehaving (" + msg.Header.RCode.String() + ")", Name: host, Server: server}
	}
	current := name
	var ips []netip.Addr
	// A chain longer than the answer cannot be followed: bound the passes.
	for range len(msg.Answers) + 1 {
		var next *dnsmessage.Name
		for _, rr := range msg.Answers {
			if !equalNames(rr.Header.Name, current) {
				continue
			}
			switch body := rr.Body.(type) {
			case *dnsmessage.AResource:
				ips = append(ips, netip.AddrFrom4(body.A))
			case *dnsmessage.AAAAResource:
				ips = append(ips, netip.AddrFrom16(body.AAAA).Unmap())
			case *dnsmessage.CNAMEResource:
				next = &body.CNAME
			}
		}
		if len(ips) > 0 || next == nil {
			break
		}
		current = *next
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: server, IsNotFound: true}
	}
	return ips, nil
}

// equalNames compares names as DNS does, ignoring ASCII case.
func equalNames(a, b dnsmessage.Name) bool {
	return asciiEqualFold(string(a.Data[:a.Length]), string(b.Data[:b.Length]))
}

// dnsError gives a failed exchange the shape the system resolver's
// errors have, so that classification treats both alike.
func dnsError(ctx context.Context, err error, host, server string) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		return err
	}
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		timeout = true
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return &net.DNSError{Err: err.Error(), Name: host, Server: server, IsTimeout: timeout, IsTemporary: true, UnwrapErr: err}
}
