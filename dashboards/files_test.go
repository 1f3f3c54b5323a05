package dashboards

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the committed dashboards from the generator")

// TestGeneratedFilesCommitted fails when the committed files under
// dashboards/ differ from what the generator makes; -update rewrites them.
func TestGeneratedFilesCommitted(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if _, err := Write("."); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.FromSlash(f.Path))
		if err != nil {
			t.Errorf("%s: %v (run go test ./dashboards -run TestGeneratedFilesCommitted -update)", f.Path, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from the generator: run go test ./dashboards -run TestGeneratedFilesCommitted -update and commit it", f.Path)
		}
	}
	// Nothing stale: every committed file is one the generator makes.
	want := map[string]bool{}
	for _, f := range files {
		want[f.Path] = true
	}
	for _, dir := range []string{"grafana", "cloudwatch", "provisioning"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if p := dir + "/" + e.Name(); !want[p] {
				t.Errorf("%s is committed but no longer generated: remove it", p)
			}
		}
	}
}

// TestGenerationDeterministic builds everything twice: the same bytes.
func TestGenerationDeterministic(t *testing.T) {
	a, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Path != b[i].Path || !bytes.Equal(a[i].Data, b[i].Data) {
			t.Errorf("%s: not the same twice", a[i].Path)
		}
	}
}
