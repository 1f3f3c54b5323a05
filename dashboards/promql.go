package dashboards

import (
	"fmt"
	"strconv"
	"strings"
)

// Grafana's variables as the Prometheus dashboards use them. Target is
// single-valued; location and role are multi-valued with "All" (.*), so they
// are matched with =~ (Grafana writes a multi-value selection as (a|b)).
const (
	varDatasource   = "datasource"
	varTarget       = "target"
	varLocation     = "location"
	varRole         = "role"
	varPhase        = "phase"
	rateInterval    = "$__rate_interval"
	rangeInterval   = "$__range"
	dsVariableValue = "${" + varDatasource + "}"
)

// matcher is one label matcher of a selector.
type matcher struct{ name, op, value string }

func eq(name, value string) matcher { return matcher{name, "=", value} }
func ne(name, value string) matcher { return matcher{name, "!=", value} }
func re(name, value string) matcher { return matcher{name, "=~", value} }

// oneOf matches any of values (a regex alternation).
func oneOf(name string, values ...string) matcher {
	return matcher{name, "=~", strings.Join(values, "|")}
}

// jobVars selects the dashboard's target, locations and roles.
func jobVars(extra ...matcher) []matcher {
	ms := []matcher{eq(LabelTarget, "$"+varTarget), re(LabelLocation, "$"+varLocation), re(LabelRole, "$"+varRole)}
	return append(ms, extra...)
}

// withRole replaces the role matcher of ms (the variable) with role=value.
func withRole(ms []matcher, value string) []matcher {
	out := make([]matcher, 0, len(ms))
	for _, m := range ms {
		if m.name != LabelRole {
			out = append(out, m)
		}
	}
	return append(out, eq(LabelRole, value))
}

// sel writes metric{matchers}.
func sel(metric string, ms ...matcher) string {
	var b strings.Builder
	b.WriteString(metric)
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.name)
		b.WriteString(m.op)
		b.WriteString(strconv.Quote(m.value))
	}
	b.WriteByte('}')
	return b.String()
}

// sumBy writes sum by (labels) (expr), or sum(expr) without labels.
func sumBy(by []string, expr string) string {
	if len(by) == 0 {
		return "sum(" + expr + ")"
	}
	return "sum by (" + strings.Join(by, ", ") + ") (" + expr + ")"
}

// rate writes rate(sel[window]).
func rate(selector, window string) string { return "rate(" + selector + "[" + window + "])" }

// increase writes increase(sel[window]).
func increase(selector, window string) string { return "increase(" + selector + "[" + window + "])" }

// histogramRate is the rate of a histogram family summed by the given
// labels: its classic buckets (by labels and le) where the classic series
// exist, and its native histogram for the groups that have none. Prometheus
// 2.42 with native histograms enabled stores only the native form, a
// Prometheus without the feature only the classic one, and later versions
// with scrape_classic_histograms both: the classic form wins then (or on),
// so a group is never counted twice.
func histogramRate(family string, by []string, window string, ms ...matcher) string {
	classic := sumBy(append(append([]string(nil), by...), "le"), rate(sel(family+"_bucket", ms...), window))
	native := sumBy(by, rate(sel(family, ms...), window))
	return classic + " or on (" + strings.Join(by, ", ") + ") " + native
}

// quantile is the q-quantile of a histogram family over window, per the by
// labels (histogram_quantile of histogramRate).
func quantile(q float64, family string, by []string, window string, ms ...matcher) string {
	return fmt.Sprintf("histogram_quantile(%s, %s)", strconv.FormatFloat(q, 'f', -1, 64), histogramRate(family, by, window, ms...))
}

// ratio writes (num) / (den).
func ratio(num, den string) string { return "(" + num + ") / (" + den + ")" }

// quantileName is "p50" for 0.5.
func quantileName(q float64) string {
	return "p" + strconv.FormatFloat(q*100, 'f', -1, 64)
}
