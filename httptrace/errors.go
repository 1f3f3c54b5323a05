package httptrace

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// phase tells where the hop stopped, from the marks it stamped.
func (m *marks) phase() string {
	switch {
	case m.dnsErr != nil || (!m.dnsStart.IsZero() && m.dnsDone.IsZero()):
		return ErrDNS
	case m.connDone.IsZero() && (m.connErr != nil || !m.connStart.IsZero()):
		return ErrConnect
	case m.tlsErr != nil || (!m.tlsStart.IsZero() && m.tlsDone.IsZero()):
		return ErrTLS
	}
	return ErrHTTP
}

// doing names what the hop was doing when it stopped, for messages.
func (m *marks) doing() string {
	switch m.phase() {
	case ErrDNS:
		return "the DNS lookup"
	case ErrConnect:
		return "the TCP connect"
	case ErrTLS:
		return "the TLS handshake"
	}
	switch {
	case m.wrote.IsZero():
		return "sending the request"
	case m.firstByte.IsZero() || !m.gotHeaders:
		// A byte may have come as the request failed (a server answering
		// the client's close): without whole headers it is still ttfb.
		return "waiting for the first byte (ttfb)"
	}
	return "reading the body (transfer)"
}

// classify turns an error into a failure a person can act on.
func (h *hop) classify(ctx context.Context, err error, detail string) *Error {
	m := h.marks()
	if isTimeout(ctx, err) {
		return &Error{Phase: ErrTimeout, Message: fmt.Sprintf("no answer within %s: timed out during %s%s", h.p.opts.Timeout, m.doing(), detail), err: err}
	}
	switch m.phase() {
	case ErrDNS:
		if m.dnsErr != nil {
			err = m.dnsErr
		}
		return &Error{Phase: ErrDNS, Message: dnsMessage(err, h.p.opts.DNSServer), err: err}
	case ErrConnect:
		if m.connErr != nil {
			err = m.connErr
		}
		return &Error{Phase: ErrConnect, Message: connectMessage(err), err: err}
	case ErrTLS:
		if m.tlsErr != nil {
			err = m.tlsErr
		}
		return &Error{Phase: ErrTLS, Message: h.tlsMessage(err), err: err}
	}
	return &Error{Phase: ErrHTTP, Message: httpMessage(err, m.doing(), detail), err: err}
}

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func dnsMessage(err error, server string) string {
	if server == "" {
		server = "the system resolver"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return fmt.Sprintf("%s: no such host (NXDOMAIN from %s): check the name", de.Name, server)
		case de.IsTemporary:
			return fmt.Sprintf("%s: lookup failed temporarily at %s: %s", de.Name, server, de.Err)
		}
		return fmt.Sprintf("%s: lookup at %s failed: %s", de.Name, server, de.Err)
	}
	return err.Error()
}

func connectMessage(err error) string {
	var oe *net.OpError
	addr := ""
	if errors.As(err, &oe) && oe.Addr != nil {
		addr = oe.Addr.String()
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused by %s: nothing listens on that port (wrong port, or the service is down)", addr)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("connection reset by %s during connect", addr)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("no route to %s: check the address family (ip_version) and routing", addr)
	}
	return err.Error()
}

func (h *hop) tlsMessage(err error) string {
	opts := h.p.opts
	var he x509.HostnameError
	if errors.As(err, &he) && he.Certificate != nil {
		names := he.Certificate.DNSNames
		if len(names) == 0 {
			names = []string{he.Certificate.Subject.CommonName}
		}
		msg := fmt.Sprintf("certificate is valid for %s, not %s", strings.Join(names, ", "), he.Host)
		if opts.ConnectTo == "" && opts.Host == "" {
			msg += ": to reach a load balancer, probe the site's URL with connect_to set to the balancer (SNI and Host keep the site's name)"
		} else {
			msg += ": set host (SNI) to a name the certificate covers"
		}
		return msg
	}
	var ue x509.UnknownAuthorityError
	if errors.As(err, &ue) {
		issuer := ""
		if ue.Cert != nil {
			issuer = ue.Cert.Issuer.String()
		}
		return fmt.Sprintf("certificate signed by an unknown authority (issuer %q): add the CA with ca_file, or set insecure_skip_verify to measure anyway", issuer)
	}
	var ce x509.CertificateInvalidError
	if errors.As(err, &ce) {
		if ce.Reason == x509.Expired && ce.Cert != nil {
			now := time.Now()
			if now.After(ce.Cert.NotAfter) {
				return fmt.Sprintf("certificate expired at %s (%s ago): renew it", ce.Cert.NotAfter.UTC().Format(time.RFC3339), now.Sub(ce.Cert.NotAfter).Round(time.Second))
			}
			return fmt.Sprintf("certificate not valid before %s: check the clock", ce.Cert.NotBefore.UTC().Format(time.RFC3339))
		}
		return "certificate invalid: " + ce.Error()
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "the server does not speak TLS on this port (plain HTTP? then use http://)"
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return fmt.Sprintf("the server refused the handshake (%v) for server name %q: check SNI (host) and TLS versions", err, h.tlsServerName())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Sprintf("connection closed during the TLS handshake for server name %q: the server may not serve that name", h.tlsServerName())
	}
	return err.Error()
}

func (h *hop) tlsServerName() string {
	if h.tr != nil && h.tr.TLSClientConfig.ServerName != "" {
		return h.tr.TLSClientConfig.ServerName
	}
	return h.p.siteHost
}

func httpMessage(err error, doing, detail string) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("connection reset by the server while %s%s", doing, detail)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Sprintf("connection closed by the server while %s%s", doing, detail)
	case strings.Contains(err.Error(), "malformed HTTP"):
		return "the server answered something that is not HTTP: " + err.Error()
	}
	return fmt.Sprintf("%s while %s%s", err, doing, detail)
}
