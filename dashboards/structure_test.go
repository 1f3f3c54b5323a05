package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	cwexp "github.com/edgeprobe/edgeprobe/exporters/cloudwatch"
)

// Grafana's own variables a query may use besides the dashboard's.
var builtinVars = []string{"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s"}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// TestGrafanaDashboardsStructure checks every committed Grafana dashboard:
// it parses (also as the SDK's model), asks for its data source in
// __inputs, has unique panel ids, and every panel has a title, a unit
// (fieldConfig.defaults.unit) and reads the data source variable, as do
// its queries, variables and annotations; every variable a query uses is
// defined.
func TestGrafanaDashboardsStructure(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	uids := map[string]string{}
	for _, b := range committedGrafana(t) {
		t.Run(b.file, func(t *testing.T) {
			raw, err := os.ReadFile("grafana/" + b.file)
			if err != nil {
				t.Fatal(err)
			}
			var model dashboard.Dashboard
			if err := json.Unmarshal(raw, &model); err != nil {
				t.Fatalf("the SDK cannot read it back: %v", err)
			}
			ds := dataSourceOf(b)
			if ds != "prometheus" && ds != "cloudwatch" {
				t.Fatalf("__inputs: data source plugin %q", ds)
			}
			in := list(b.json, "__inputs")[0]
			input := str(in, "name")
			if str(in, "type") != "datasource" || !strings.HasPrefix(input, "DS_") {
				t.Errorf("__inputs[0] = %v", in)
			}
			if !slices.ContainsFunc(list(b.json, "__requires"), func(r map[string]any) bool { return str(r, "id") == ds }) {
				t.Errorf("__requires does not name %s", ds)
			}
			uid := str(b.json, "uid")
			if uid == "" || uids[uid] != "" {
				t.Errorf("uid %q empty or also in %s", uid, uids[uid])
			}
			uids[uid] = b.file
			if str(b.json, "title") == "" {
				t.Error("no title")
			}

			// Variables: the data source one first, its current value the
			// import placeholder; the others read it.
			vars := list(obj(b.json, "templating"), "list")
			defined := append([]string(nil), builtinVars...)
			for i, v := range vars {
				name := str(v, "name")
				defined = append(defined, name)
				if i == 0 {
					cur := str(obj(v, "current"), "value")
					if str(v, "type") != "datasource" || name != varDatasource || str(v, "query") != ds || cur != "${"+input+"}" {
						t.Errorf("first variable %v: want the %s data source variable %q with current ${%s}", v, ds, varDatasource, input)
					}
					continue
				}
				if str(v, "type") == "query" {
					checkDS(t, "variable "+name, obj(v, "datasource"), ds)
				}
			}
			for _, a := range list(obj(b.json, "annotations"), "list") {
				checkDS(t, "annotation "+str(a, "name"), obj(a, "datasource"), ds)
			}

			ids := map[float64]string{}
			for _, p := range panels(b.json) {
				title := str(p, "title")
				id, ok := p["id"].(float64)
				if !ok || id <= 0 {
					t.Errorf("panel %q: id %v", title, p["id"])
				} else if ids[id] != "" {
					t.Errorf("panel %q: id %v also %q's", title, id, ids[id])
				}
				ids[id] = title
				if title == "" {
					t.Errorf("panel %v has no title", p["id"])
				}
				gp := obj(p, "gridPos")
				if x, w := gp["x"].(float64), gp["w"].(float64); w <= 0 || x+w > 24 {
					t.Errorf("panel %q: gridPos %v outside the 24 columns", title, gp)
				}
				if str(p, "type") == "row" {
					continue
				}
				if unit := str(obj(obj(p, "fieldConfig"), "defaults"), "unit"); unit == "" {
					t.Errorf("panel %q: no unit", title)
				}
				checkDS(t, "panel "+title, obj(p, "datasource"), ds)
				targets := list(p, "targets")
				if len(targets) == 0 {
					t.Errorf("panel %q: no queries", title)
				}
				refs := map[string]bool{}
				for _, q := range targets {
					ref := str(q, "refId")
					if ref == "" || refs[ref] {
						t.Errorf("panel %q: refId %q empty or repeated", title, ref)
					}
					refs[ref] = true
					checkDS(t, "panel "+title+" query "+ref, obj(q, "datasource"), ds)
					text, _ := json.Marshal(q)
					for _, m := range varRef.FindAllStringSubmatch(string(text), -1) {
						if !slices.Contains(defined, m[1]) && !strings.HasPrefix(m[0], "${PROP") {
							t.Errorf("panel %q query %s: variable $%s is not defined", title, ref, m[1])
						}
					}
				}
				if r := str(p, "repeat"); r != "" && !slices.Contains(defined, r) {
					t.Errorf("panel %q repeats over undefined variable %q", title, r)
				}
			}
		})
	}
}

func checkDS(t *testing.T, where string, ref map[string]any, plugin string) {
	t.Helper()
	if str(ref, "uid") != dsVariableValue || str(ref, "type") != plugin {
		t.Errorf("%s: data source %v, want {type: %s, uid: %s}", where, ref, plugin, dsVariableValue)
	}
}

// TestProvisioningFiles parses the provisioning examples.
func TestProvisioningFiles(t *testing.T) {
	for _, name := range []string{"provisioning/dashboards.yml", "provisioning/datasources.yml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			APIVersion int `yaml:"apiVersion"`
			Providers  []struct {
				Name, Type string
				Options    struct{ Path string }
			} `yaml:"providers"`
			Datasources []struct{ Name, Type string } `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc.APIVersion != 1 || len(doc.Providers)+len(doc.Datasources) == 0 {
			t.Errorf("%s: %+v", name, doc)
		}
		for _, p := range doc.Providers {
			if p.Type != "file" || p.Options.Path == "" {
				t.Errorf("%s: provider %+v", name, p)
			}
		}
		var types []string
		for _, d := range doc.Datasources {
			types = append(types, d.Type)
		}
		if len(doc.Datasources) > 0 && (!slices.Contains(types, "prometheus") || !slices.Contains(types, "cloudwatch")) {
			t.Errorf("%s: data sources %v, want prometheus and cloudwatch", name, types)
		}
	}
}

var (
	exprID     = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)
	statRE     = regexp.MustCompile(`^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?|IQM|tm\d+|wm\d+|tc\d+|ts\d+)$`)
	searchRE   = regexp.MustCompile(`SEARCH\('\{([^}]*)\} MetricName="([^"]+)"[^']*', '([^']+)', (\d+)\)`)
	regionRE   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	widgetType = []string{"metric", "text", "alarm", "log", "explorer"}
)

// validateCWBody checks a CloudWatch dashboard body against the documented
// structure (Dashboard Body Structure and Syntax): the emulator only
// checks that it is JSON. Returns the problems found.
func validateCWBody(body []byte, namespace string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	var d map[string]any
	if err := json.Unmarshal(body, &d); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	widgets, ok := d["widgets"].([]any)
	if !ok || len(widgets) == 0 || len(widgets) > 500 {
		return []string{"widgets: want 1 to 500"}
	}
	if po := str(d, "periodOverride"); po != "" && po != "auto" && po != "inherit" {
		bad("periodOverride %q", po)
	}
	type cell struct{ x, y int }
	taken := map[cell]int{}
	known := cwexp.MetricNames()
	for i, w := range widgets {
		wm, _ := w.(map[string]any)
		typ := str(wm, "type")
		if !slices.Contains(widgetType, typ) {
			bad("widget %d: type %q", i, typ)
		}
		x, y, width, height := num(wm, "x"), num(wm, "y"), num(wm, "width"), num(wm, "height")
		if x < 0 || width < 1 || x+width > 24 || y < 0 || height < 1 || height > 1000 {
			bad("widget %d: x %d y %d width %d height %d off the grid", i, x, y, width, height)
		}
		for cx := x; cx < x+width; cx++ {
			for cy := y; cy < y+height; cy++ {
				if j, ok := taken[cell{cx, cy}]; ok {
					bad("widget %d overlaps widget %d at %d,%d", i, j, cx, cy)
				}
				taken[cell{cx, cy}] = i
			}
		}
		props := obj(wm, "properties")
		if typ == "text" {
			if str(props, "markdown") == "" {
				bad("widget %d: text without markdown", i)
			}
			continue
		}
		title := str(props, "title")
		if title == "" {
			bad("widget %d: no title", i)
		}
		if !regionRE.MatchString(str(props, "region")) {
			bad("widget %q: region %q", title, str(props, "region"))
		}
		if p := num(props, "period"); p < 60 || p%60 != 0 {
			bad("widget %q: period %d not a multiple of 60", title, p)
		}
		if s := str(props, "stat"); !statRE.MatchString(s) {
			bad("widget %q: stat %q", title, s)
		}
		if v := str(props, "view"); !slices.Contains([]string{"timeSeries", "singleValue", "gauge", "bar", "pie", "table"}, v) {
			bad("widget %q: view %q", title, v)
		}
		metrics, _ := props["metrics"].([]any)
		if len(metrics) == 0 || len(metrics) > 100 {
			bad("widget %q: %d metrics, want 1 to 100", title, len(metrics))
		}
		ids := map[string]bool{}
		for j, m := range metrics {
			row, _ := m.([]any)
			if len(row) != 1 {
				bad("widget %q metric %d: want one expression object, got %v", title, j, m)
				continue
			}
			e, _ := row[0].(map[string]any)
			id, expr := str(e, "id"), str(e, "expression")
			if !exprID.MatchString(id) || ids[id] {
				bad("widget %q metric %d: id %q not lowercase-first or repeated", title, j, id)
			}
			ids[id] = true
			if r := str(e, "region"); r != "" && !regionRE.MatchString(r) {
				bad("widget %q metric %s: region %q", title, id, r)
			}
			if strings.Count(expr, "(") != strings.Count(expr, ")") {
				bad("widget %q metric %s: unbalanced parentheses: %s", title, id, expr)
			}
			searches := searchRE.FindAllStringSubmatch(expr, -1)
			if len(searches) == 0 || len(searches) != strings.Count(expr, "SEARCH(") {
				bad("widget %q metric %s: expression %q: not the SEARCH form written", title, id, expr)
			}
			for _, s := range searches {
				schema := strings.Split(s[1], ",")
				switch schema[0] {
				case namespace:
					if !slices.Contains(known, s[2]) {
						bad("widget %q: %s is not a metric of the CloudWatch exporter (%v)", title, s[2], known)
					}
				case route53Namespace:
					if !slices.Contains([]string{cwexp.MetricConnectionTime, cwexp.MetricSSLHandshakeTime, cwexp.MetricTimeToFirstByte}, s[2]) {
						bad("widget %q: %s is not a Route 53 latency metric", title, s[2])
					}
					if r := str(e, "region"); r != route53Region && str(props, "region") != route53Region {
						bad("widget %q: Route 53 metrics read outside %s", title, route53Region)
					}
				default:
					bad("widget %q: namespace %q", title, schema[0])
				}
				if !statRE.MatchString(s[3]) || s[4] != "300" {
					bad("widget %q: search statistic %q period %s", title, s[3], s[4])
				}
			}
		}
	}
	return errs
}

func num(m map[string]any, key string) int {
	f, _ := m[key].(float64)
	return int(f)
}

// TestCloudWatchBodyStructure validates the committed CloudWatch body and
// one for another namespace and region.
func TestCloudWatchBodyStructure(t *testing.T) {
	committed, err := os.ReadFile("cloudwatch/overview.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range validateCWBody(committed, cwexp.DefaultNamespace) {
		t.Error("cloudwatch/overview.json: " + e)
	}
	d, err := CloudWatchBody("Probes/Edge", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range validateCWBody(b, "Probes/Edge") {
		t.Error("namespace Probes/Edge: " + e)
	}
	if !strings.Contains(string(b), `"region": "eu-west-1"`) || !strings.Contains(string(b), `"region": "us-east-1"`) {
		t.Error("widgets not in eu-west-1 with Route 53 read from us-east-1")
	}
	// Every phase of the contract has its widget.
	for _, p := range comparedPhases {
		if !strings.Contains(string(committed), `MetricName=\"`+cwexp.PhaseMetric(p)+`\"`) {
			t.Errorf("no widget reads %s (phase %s)", cwexp.PhaseMetric(p), p)
		}
	}
	if _, err := CloudWatchBody("", "us-east-1"); err == nil {
		t.Error("no namespace accepted")
	}
}
