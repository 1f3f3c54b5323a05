package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// decomposeJitter splits the interval jitter the server saw into where it
// arises, from the agent's own samples (EDGEPROBE_BENCH_DECOMPOSE=1 adds
// the JSONL sink): when each probe started (the scheduler), when its
// connect began (after its DNS lookup), and the server's accept stamp.
func decomposeJitter(b *testing.B, samplesFile string, hellos []helloStamp, interval time.Duration, t0, t1 time.Time) string {
	b.Helper()
	f, err := os.Open(samplesFile)
	if err != nil {
		b.Errorf("decompose: %v", err)
		return ""
	}
	defer f.Close()
	var starts, connects []helloStamp // keyed by target, as jitterOf groups
	var dns []time.Duration
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var s struct {
			Time   time.Time `json:"time"`
			Target string    `json:"target"`
			DNS    float64   `json:"dns_seconds"`
		}
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			b.Errorf("decompose: %s: %v", samplesFile, err)
			return ""
		}
		if s.Time.Before(t0.Add(-time.Second)) || !s.Time.Before(t1) {
			continue
		}
		d := time.Duration(s.DNS * float64(time.Second))
		starts = append(starts, helloStamp{SNI: s.Target, Accept: s.Time.UnixNano()})
		connects = append(connects, helloStamp{SNI: s.Target, Accept: s.Time.Add(d).UnixNano()})
		dns = append(dns, d)
	}
	if err := sc.Err(); err != nil {
		b.Errorf("decompose: %v", err)
	}
	for i := range hellos { // the server's names are the targets' under benchName
		hellos[i].SNI, _, _ = strings.Cut(hellos[i].SNI, ".")
	}
	at := func(h helloStamp) int64 { return h.Accept }
	line := func(what string, j jitterStats) string {
		return fmt.Sprintf("| %s | %d | %.3f | %.3f | %.1f |\n", what, j.n, msf(j.p50), msf(j.p99), msf(j.max))
	}
	slices.Sort(dns)
	var sb strings.Builder
	sb.WriteString("Where the jitter arises (the agent's JSONL samples against the server's stamps):\n\n")
	sb.WriteString("| interval jitter of | pairs | p50 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: |\n")
	sb.WriteString(line("probe start (the scheduler, client clock)", jitterOf(starts, interval, at)))
	sb.WriteString(line("connect start (after the DNS lookup, client clock)", jitterOf(connects, interval, at)))
	sb.WriteString(line("accept (server)", jitterOf(hellos, interval, at)))
	if len(dns) > 0 {
		fmt.Fprintf(&sb, "\nDNS lookups on the way: p50 %.3f ms, p99 %.3f ms, max %.1f ms (%d lookups).\n",
			msf(percentile(dns, 0.5)), msf(percentile(dns, 0.99)), msf(dns[len(dns)-1]), len(dns))
	}
	return sb.String()
}
