package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// grafanaBoard is a committed Grafana dashboard, parsed.
type grafanaBoard struct {
	file string
	json map[string]any
}

// committedGrafana reads grafana/*.json as committed (what users import).
func committedGrafana(t *testing.T) []grafanaBoard {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("grafana", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 4 {
		t.Fatalf("grafana/: %d dashboards, want 4", len(paths))
	}
	var out []grafanaBoard
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, grafanaBoard{file: filepath.Base(p), json: m})
	}
	return out
}

// panels lists a dashboard's panels, rows and the panels inside rows
// included.
func panels(d map[string]any) []map[string]any {
	var out []map[string]any
	var walk func(list []any)
	walk = func(list []any) {
		for _, p := range list {
			pm, ok := p.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, pm)
			if inner, ok := pm["panels"].([]any); ok {
				walk(inner)
			}
		}
	}
	list, _ := d["panels"].([]any)
	walk(list)
	return out
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

func list(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	l, _ := m[key].([]any)
	for _, e := range l {
		if o, ok := e.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

// promExpr is one PromQL expression of a dashboard and where it is.
type promExpr struct {
	board, where string
	expr         string
	instant      bool
	labelValues  string // for a label_values variable: the label
}

// promExprs lists every PromQL expression of a Prometheus dashboard: each
// panel's queries, the annotations' and the variables' (label_values(sel,
// label) becomes group by (label) (sel)).
func promExprs(t *testing.T, b grafanaBoard) []promExpr {
	t.Helper()
	var out []promExpr
	for _, p := range panels(b.json) {
		for _, q := range list(p, "targets") {
			if str(obj(q, "datasource"), "type") != "prometheus" {
				t.Fatalf("%s: panel %q: query of data source %v", b.file, str(p, "title"), q["datasource"])
			}
			inst, _ := q["instant"].(bool)
			out = append(out, promExpr{board: b.file, where: "panel " + str(p, "title") + " " + str(q, "refId"), expr: str(q, "expr"), instant: inst})
		}
	}
	for _, a := range list(obj(b.json, "annotations"), "list") {
		if e := str(a, "expr"); e != "" {
			out = append(out, promExpr{board: b.file, where: "annotation " + str(a, "name"), expr: e})
		}
	}
	for _, v := range list(obj(b.json, "templating"), "list") {
		if str(v, "type") != "query" {
			continue
		}
		q := str(v, "query")
		inner, ok := strings.CutPrefix(q, "label_values(")
		if !ok {
			t.Fatalf("%s: variable %s: query %q is not label_values(...)", b.file, str(v, "name"), q)
		}
		inner = strings.TrimSuffix(inner, ")")
		i := strings.LastIndex(inner, ",")
		selector, label := strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:])
		out = append(out, promExpr{
			board: b.file, where: "variable " + str(v, "name"),
			expr: "group by (" + label + ") (" + selector + ")", instant: true, labelValues: label,
		})
	}
	return out
}

// dataSourceOf is the plugin a dashboard's __inputs asks for.
func dataSourceOf(b grafanaBoard) string {
	in := list(b.json, "__inputs")
	if len(in) == 0 {
		return ""
	}
	return str(in[0], "pluginId")
}
