// Package labtest holds the multi-location lab (docs/accuracy-lab.md): an
// origin, a nearby caching edge (nginx), a DNS server and three client
// locations, each a network namespace, joined by lab.DelayNet's user-space
// delay line so each location has its own round-trip time to the origin and
// to the edge; three `probe run` agents, one per location, and one
// Prometheus scraping all three. Its test holds edgeprobe's phases, and curl's
// and the blackbox exporter's, against the delays the line really held.
// It needs root, as CI has.
package labtest
