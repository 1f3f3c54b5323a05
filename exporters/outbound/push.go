// Package outbound holds what the exporters that send (Pushgateway, remote
// write, CloudWatch) share: when to try again, and how to name a URL in
// logs and errors.
package outbound

import (
	"math/rand/v2"
	"net/url"
	"time"
)

// Backoff is the wait before the next attempt after failures consecutive
// failures: minWait doubling with each one up to maxWait, drawn from
// [d/2, d] so that many agents recovering together do not arrive in step.
func Backoff(minWait, maxWait time.Duration, failures int) time.Duration {
	d := minWait
	for i := 1; i < failures && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	return d/2 + rand.N(d/2+1)
}

// RedactURL gives u fit for logs: no user info, no query (which may carry
// a token), no fragment.
func RedactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = "REDACTED"
	}
	c.Fragment = ""
	return c.String()
}
