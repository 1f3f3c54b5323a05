package httptrace

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// maxVerified bounds a VerifiedChains: past it the memory is dropped whole
// (rare: one entry per certificate chain a set of targets presents).
const maxVerified = 4096

// VerifiedChains remembers certificate chains that verified against one
// root pool, so that probing the same chain again costs the handshake's
// own signature check but not path building and the CA's signature
// (together about a tenth of a probe's CPU). Browsers keep such a cache
// too. What it skips is a pure function of the chain's bytes, the pool and
// the time, and the time is checked on every use: it changes no verdict.
// The host name is checked on every connection. Share one per root pool;
// the zero value is ready.
type VerifiedChains struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]validity
}

// validity is when every certificate of a verified chain is within its
// dates.
type validity struct{ from, until time.Time }

func (v *VerifiedChains) lookup(key [sha256.Size]byte, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	w, ok := v.m[key]
	return ok && !now.Before(w.from) && !now.After(w.until)
}

func (v *VerifiedChains) add(key [sha256.Size]byte, chain []*x509.Certificate) {
	w := validity{until: chain[0].NotAfter}
	for _, c := range chain {
		if c.NotBefore.After(w.from) {
			w.from = c.NotBefore
		}
		if c.NotAfter.Before(w.until) {
			w.until = c.NotAfter
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[[sha256.Size]byte]validity)
	}
	v.m[key] = w
}

// chainKey identifies the chain as the server sent it.
func chainKey(certs []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// verifyPeer checks the server's chain as crypto/tls would (roots, dates,
// server-auth usage, host name), asking v first. Its errors are the ones
// crypto/tls returns, so failures classify the same way.
func verifyPeer(cs tls.ConnectionState, serverName string, roots *x509.CertPool, v *VerifiedChains) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("tls: server sent no certificate")
	}
	now := time.Now()
	var key [sha256.Size]byte
	if v != nil {
		key = chainKey(certs)
		if v.lookup(key, now) {
			if err := certs[0].VerifyHostname(serverName); err != nil {
				return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
			}
			return nil
		}
	}
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, DNSName: serverName, Intermediates: x509.NewCertPool()}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	if v != nil {
		v.add(key, chains[0])
	}
	return nil
}
