package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

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
		addrs, err := resolveAll(ctx, g)
		if err != nil {
			a.log.Warn("--all-addresses: cannot resolve; probing the name as it resolves", "url", g.url, "err", err)
			out = append(out, g)
			continue
		}
		for _, ad := range addrs {
			pinned := g
			pinned.address, pinned.opts.Pin = ad.label, ad.ip
			out = append(out, pinned)
		}
	}
	return out
}

type labelledAddr struct {
	label string
	ip    netip.Addr
}

// resolveAll resolves the group's dial host once, the way httptrace does
// (same DNS server and IP version policy), sorted within each family so the
// labels are stable, the preferred family first.
func resolveAll(ctx context.Context, g group) ([]labelledAddr, error) {
	u, err := url.Parse(g.url)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", g.url, err)
	}
	host := u.Hostname()
	if g.opts.ConnectTo != "" {
		host = g.opts.ConnectTo
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		network := "ip"
		switch g.opts.IPVersion {
		case httptrace.IPv4Only:
			network = "ip4"
		case httptrace.IPv6Only:
			network = "ip6"
		}
		timeout := cmp.Or(g.opts.Timeout, httptrace.DefaultTimeout)
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if ips, err = resolver(g.opts.DNSServer).LookupNetIP(ctx, network, host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	var v4, v6 []netip.Addr
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	label := func(family string, ips []netip.Addr) []labelledAddr {
		slices.SortFunc(ips, netip.Addr.Compare)
		ips = slices.Compact(ips)
		out := make([]labelledAddr, 0, min(len(ips), maxAddressesPerFamily))
		for i, ip := range ips[:min(len(ips), maxAddressesPerFamily)] {
			out = append(out, labelledAddr{label: family + "-" + strconv.Itoa(i), ip: ip})
		}
		return out
	}
	four, six := label("ipv4", v4), label("ipv6", v6)
	if g.opts.IPVersion == httptrace.IPPrefer6 {
		return append(six, four...), nil
	}
	return append(four, six...), nil
}

// resolver asks server ("ip:port") when given, the system's resolver
// otherwise: the same choice httptrace makes for its DNS phase.
func resolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}
