package httptrace

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Address is one resolved address of a probe's dial host, with a label
// that stays stable across lookups ("ipv4-0", "ipv6-1") and so keeps metric
// cardinality bounded: a CDN's rotating answers reuse the same labels.
type Address struct {
	Label string
	IP    netip.Addr
}

// Addresses resolves the host that a probe of rawURL with opts would dial
// (ConnectTo's when set) and returns at most perFamily addresses of each
// family, sorted within it, the preferred family first. Probe each with
// Options.Pin.
func Addresses(ctx context.Context, rawURL string, opts Options, perFamily int) ([]Address, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", rawURL, err)
	}
	host := u.Hostname()
	if opts.ConnectTo != "" {
		host, _ = splitConnectTo(opts.ConnectTo, "")
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else {
		ctx, cancel := context.WithTimeout(ctx, cmp.Or(opts.Timeout, DefaultTimeout))
		defer cancel()
		if ips, err = LookupAddrs(ctx, host, opts); err != nil {
			return nil, err
		}
	}
	var v4, v6 []netip.Addr
	for _, ip := range ips {
		if ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	label := func(family string, ips []netip.Addr) []Address {
		slices.SortFunc(ips, netip.Addr.Compare)
		ips = slices.Compact(ips)
		ips = ips[:min(len(ips), perFamily)]
		out := make([]Address, 0, len(ips))
		for i, ip := range ips {
			out = append(out, Address{Label: family + "-" + strconv.Itoa(i), IP: ip})
		}
		return out
	}
	four, six := label("ipv4", v4), label("ipv6", v6)
	if opts.IPVersion == IPPrefer6 {
		return append(six, four...), nil
	}
	return append(four, six...), nil
}
