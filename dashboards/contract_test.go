package dashboards

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// family is one metric family of the exporter's catalogue.
type family struct {
	typ    string
	labels []string
}

// readCatalogue reads exporters/prometheus/testdata/metrics.golden, the
// metric contract the exporter's TestMetricCatalogue pins.
func readCatalogue(t *testing.T) map[string]family {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "exporters", "prometheus", "testdata", "metrics.golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]family{}
	last := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "edgeprobe_") {
			fields := strings.Fields(line)
			last = fields[0]
			out[last] = family{typ: fields[1]}
			continue
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "labels: {"); ok && last != "" {
			fam := out[last]
			for _, l := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
				fam.labels = append(fam.labels, strings.TrimSpace(l))
			}
			out[last] = fam
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("metrics.golden: only %d families", len(out))
	}
	return out
}

// selfMetrics are the agent's own families the dashboards use, outside the
// per-target catalogue; TestPromQLAgainstPrometheus holds them to a real
// agent.
var selfMetrics = map[string]family{MetricConfigReloads: {typ: "counter", labels: []string{LabelResult}}}

var selectorRE = regexp.MustCompile(`(edgeprobe_[a-z_]+)(\{[^}]*\})?`)
var matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)

// TestMetricContract holds the metric constants and every selector of every
// committed Prometheus dashboard to the exporter's catalogue: a family
// renamed there (and in its golden file) or a label the family does not
// have fails here.
func TestMetricContract(t *testing.T) {
	cat := readCatalogue(t)
	for _, name := range []string{
		MetricPhaseDuration, MetricProbes, MetricProbeSuccess, MetricHTTPStatus, MetricProbeInfo, MetricCacheResults,
		MetricCertNotAfter, MetricRevalidationDuration, MetricRevalidations, MetricKeepaliveDuration, MetricUpstreamDuration,
	} {
		if _, ok := cat[name]; !ok {
			t.Errorf("%s is not in the exporter's metric catalogue", name)
		}
	}
	for _, l := range []string{LabelTarget, LabelRole, LabelLocation} {
		if !slices.Contains(cat[MetricProbes].labels, l) {
			t.Errorf("%s has no label %s", MetricProbes, l)
		}
	}
	for _, l := range []string{LabelHTTPVersion, LabelTLSVersion, LabelIPFamily, LabelCDN} {
		if !slices.Contains(cat[MetricProbeInfo].labels, l) {
			t.Errorf("%s has no label %s", MetricProbeInfo, l)
		}
	}
	if !slices.Contains(cat[MetricCacheResults].labels, LabelPOP) || !slices.Contains(cat[MetricCacheResults].labels, LabelCache) {
		t.Errorf("%s: labels %v", MetricCacheResults, cat[MetricCacheResults].labels)
	}

	n := 0
	for _, b := range committedGrafana(t) {
		if dataSourceOf(b) != "prometheus" {
			continue
		}
		for _, e := range promExprs(t, b) {
			for _, m := range selectorRE.FindAllStringSubmatch(e.expr, -1) {
				n++
				name := m[1]
				fam, ok := cat[name]
				if !ok {
					fam, ok = selfMetrics[name]
				}
				if !ok {
					for _, suffix := range []string{"_bucket", "_count", "_sum"} {
						base, cut := strings.CutSuffix(name, suffix)
						if f, found := cat[base]; cut && found && strings.HasPrefix(f.typ, "histogram") {
							fam, ok = f, true
							if suffix == "_bucket" {
								fam.labels = append(slices.Clone(f.labels), "le")
							}
						}
					}
				}
				if !ok {
					t.Errorf("%s %s: %s is not a metric of the contract", e.board, e.where, name)
					continue
				}
				for _, lm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
					if !slices.Contains(fam.labels, lm[1]) {
						t.Errorf("%s %s: %s has no label %q (it has %v)", e.board, e.where, name, lm[1], fam.labels)
					}
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d selectors found in the dashboards", n)
	}
}
