package route53

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// PriceBasis names the prices WritePlan uses (docs/route53.md has the
// source).
const PriceBasis = "Route 53 list prices per health check per month: basic $0.50 (AWS endpoint) / $0.75 (other); " +
	"each of HTTPS, string matching, 10 s interval, latency measurement +$1.00 / +$2.00; regions do not change the price"

// PlanJSON is the document `create --dry-run --format json` prints.
type PlanJSON struct {
	Checks []PlannedJSON `json:"checks"`
	// MonthlyUSD prices load balancer names as AWS endpoints and the rest
	// as non-AWS; IfAllAWSUSD prices all as AWS endpoints of this account.
	MonthlyUSD  float64 `json:"monthly_usd"`
	IfAllAWSUSD float64 `json:"monthly_usd_if_all_aws_endpoints"`
	PriceBasis  string  `json:"price_basis"`
}

// PlannedJSON is a check with its price.
type PlannedJSON struct {
	Check
	Price Price `json:"price"`
}

// NewPlanJSON prices the plan.
func NewPlanJSON(checks []Check) PlanJSON {
	doc := PlanJSON{Checks: []PlannedJSON{}, PriceBasis: PriceBasis}
	for _, c := range checks {
		doc.Checks = append(doc.Checks, PlannedJSON{Check: c, Price: c.MonthlyPrice()})
	}
	doc.MonthlyUSD, doc.IfAllAWSUSD = TotalPrice(checks)
	return doc
}

// WritePlan prints the planned checks, their monthly price and warnings.
func WritePlan(w io.Writer, checks []Check) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET/ROLE\tTYPE\tENDPOINT\tPATH\tREGIONS\tINTERVAL\tLATENCY\tUSD/MONTH")
	for i := range checks {
		c := &checks[i]
		p := c.MonthlyPrice()
		kind := "non-AWS"
		if c.AWSEndpoint {
			kind = "AWS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%ds\t%s\t%.2f (%s: %s)\n",
			c.Key(), c.Type, endpoint(&c.Settings, c.ResolveHost), c.ResourcePath, strings.Join(c.Regions, ","),
			c.RequestInterval, onOff(c.MeasureLatency), p.Monthly, kind, priceItems(p))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	total, allAWS := TotalPrice(checks)
	fmt.Fprintf(w, "\n%d health checks: $%.2f a month", len(checks), total)
	if allAWS != total {
		fmt.Fprintf(w, " ($%.2f if every endpoint counts as an AWS endpoint of this account)", allAWS)
	}
	fmt.Fprintf(w, ".\n%s.\n", PriceBasis)
	return writeWarnings(w, checks)
}

func writeWarnings(w io.Writer, checks []Check) error {
	var err error
	for i := range checks {
		for _, msg := range checks[i].Warnings {
			_, err = fmt.Fprintf(w, "warning: %s: %s\n", checks[i].Key(), msg)
		}
	}
	return err
}

// WriteWarnings prints each check's warnings, one a line.
func WriteWarnings(w io.Writer, checks []Check) error { return writeWarnings(w, checks) }

func priceItems(p Price) string {
	parts := []string{fmt.Sprintf("basic %.2f", p.Basic)}
	for _, f := range p.Features {
		parts = append(parts, fmt.Sprintf("%s %.2f", f, p.Feature))
	}
	return strings.Join(parts, " + ")
}

// endpoint is how the check reaches its endpoint: "host:port", with "via
// IP" when an address is set for a name, and the name it came from.
func endpoint(s *Settings, resolveHost string) string {
	host := s.FQDN
	if host == "" {
		host = s.IPAddress
	}
	out := host + ":" + strconv.Itoa(int(s.Port))
	switch {
	case s.FQDN != "" && s.IPAddress != "" && resolveHost != "":
		out += " via " + s.IPAddress + " (" + resolveHost + ")"
	case s.FQDN != "" && s.IPAddress != "":
		out += " via " + s.IPAddress
	case resolveHost != "":
		out += " via " + resolveHost + " (resolved at create)"
	}
	return out
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// WriteResults prints what Create did.
func WriteResults(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET/ROLE\tACTION\tID\tCHANGES")
	for _, r := range results {
		id := r.ID
		if r.OldID != "" && r.OldID != r.ID {
			id = r.OldID + " → " + r.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Key(), r.Action, dash(id), dash(strings.Join(r.Changes, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "note: %s: %s\n", r.Key(), n)
		}
	}
	return nil
}

// WriteList prints edgeprobe's checks; drift (by ID, may be nil) says how
// each differs from the config.
func WriteList(w io.Writer, checks []Existing, drift map[string]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "ID\tTARGET/ROLE\tTYPE\tENDPOINT\tPATH\tREGIONS\tINTERVAL\tLATENCY\tSTATUS"
	if drift != nil {
		header += "\tCONFIG"
	}
	fmt.Fprintln(tw, header)
	for i := range checks {
		e := &checks[i]
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%ds\t%s\t%s", e.ID, e.Key(), e.Type, endpoint(&e.Settings, ""),
			e.ResourcePath, dash(strings.Join(e.Regions, ",")), e.RequestInterval, onOff(e.MeasureLatency), dash(e.Status))
		if drift != nil {
			line += "\t" + drift[e.ID]
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d health checks of edgeprobe's\n", len(checks))
	return err
}

// WriteComparison prints Compare's rows grouped by check.
func WriteComparison(w io.Writer, c *Comparison) error {
	fmt.Fprintf(w, "%s – %s UTC (one %d s period); agent namespace %s, Route 53 from %s in us-east-1\n",
		c.Start.Format("2006-01-02 15:04"), c.End.Format("2006-01-02 15:04"), c.PeriodSeconds, c.Namespace, Route53Namespace)
	var tw *tabwriter.Writer
	key := ""
	for _, r := range c.Rows {
		if k := r.Target + "/" + r.Role; k != key {
			if tw != nil {
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			key = k
			fmt.Fprintf(w, "\n%s (health check %s)\n", k, r.HealthCheckID)
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PHASE\tWHERE\tSOURCE\tMETRIC\tAVG ms\tP50 ms\tSAMPLES")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Phase, r.Where, r.Source, metricLabel(r),
			fmtMS(r.AverageMS), fmtMS(r.P50MS), strconv.FormatFloat(r.Samples, 'f', -1, 64))
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(c.Rows) == 0 {
		fmt.Fprintln(w, "\nno metrics in the window")
	}
	for _, n := range c.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	_, err := fmt.Fprintln(w, "TimeToFirstByte of the agent is its ttfb (request written → first byte); FirstByteTime is first_byte (start → first byte): see which one matches Route 53's.")
	return err
}

func metricLabel(r Row) string {
	if r.Source != SourceAgent {
		return r.Metric
	}
	switch r.Metric {
	case "TimeToFirstByte":
		return r.Metric + " (ttfb)"
	case "FirstByteTime":
		return r.Metric + " (first_byte)"
	}
	return r.Metric
}

func fmtMS(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// WriteJSON writes v indented.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
