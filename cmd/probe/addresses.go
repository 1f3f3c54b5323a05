package main

import (
	"context"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// maxAddressesPerFamily bounds the Address label's values ("ipv4-0" …
// "ipv4-3"): CloudFront answers with several addresses, and every label
// value is a series in the metrics downstream.
const maxAddressesPerFamily = 4

// expandAddresses replaces each group by one group per resolved address of
// the host it dials (the connect-to host for the origin way), pinned to
// that address. A name that does not resolve stays one group, so its probes
// report the DNS failure.
func expandAddresses(ctx context.Context, a *app, groups []group) []group {
	var out []group
	for _, g := range groups {
		addrs, err := httptrace.Addresses(ctx, g.url, g.opts, maxAddressesPerFamily)
		if err != nil {
			a.log.Warn("--all-addresses: cannot resolve; probing the name as it resolves", "url", g.url, "err", err)
			out = append(out, g)
			continue
		}
		for _, ad := range addrs {
			pinned := g
			pinned.address, pinned.opts.Pin = ad.Label, ad.IP
			out = append(out, pinned)
		}
	}
	return out
}
