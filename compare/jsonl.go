package compare

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/edgeprobe/edgeprobe/probe"
)

// JSONL is a source of raw samples: a file of probe.Sample lines as
// `probe check --save` and the agent's JSONL sink write them. It reads the
// file once; Load filters in memory.
type JSONL struct {
	name    string
	records []record
	lines   int
	bad     []string // "file:line: why", the first few
	nBad    int
}

// maxBadShown is how many malformed lines a warning names.
const maxBadShown = 3

// ReadJSONLFile reads a JSONL file of samples ("-" is standard input; a
// name ending in .gz is gunzipped). Malformed lines are skipped and
// counted; Load reports them as a warning.
func ReadJSONLFile(path string) (*JSONL, error) {
	if path == "-" {
		return ReadJSONL("stdin", os.Stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read samples: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("read samples %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	return ReadJSONL(path, r)
}

// ReadJSONL reads samples from r; name is used in messages (file:line).
func ReadJSONL(name string, r io.Reader) (*JSONL, error) {
	j := &JSONL{name: name}
	intern := map[string]string{} // labels repeat on every line
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		intern[s] = s
		return s
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		// ReadBytes has no line length limit, unlike bufio.Scanner.
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			j.lines++
			j.parse(j.lines, line, in)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read samples %s: %w", name, err)
		}
	}
	return j, nil
}

func (j *JSONL) parse(n int, line []byte, in func(string) string) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	var s probe.Sample
	err := json.Unmarshal(line, &s)
	if err == nil && s.Start.IsZero() {
		err = errors.New(`no "time"`)
	}
	if err != nil {
		j.nBad++
		if len(j.bad) < maxBadShown {
			j.bad = append(j.bad, fmt.Sprintf("%s:%d: %v", j.name, n, err))
		}
		return
	}
	r := record{time: s.Start, target: in(s.Target), role: in(s.Role), location: in(s.Location)}
	if s.Err != nil {
		r.errPhase = in(s.Err.Phase)
	} else {
		r.timings = s.Timings
	}
	j.records = append(j.records, r)
}

// Load returns the samples in the query's window that match its selector.
func (j *JSONL) Load(ctx context.Context, q Query) (*Side, error) {
	side := NewSide()
	for i := range j.records {
		r := &j.records[i]
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("load %s: %w", j.name, ctx.Err())
		}
		if q.Window.Contains(r.time) && q.Match.Matches(r.target, r.role, r.location) {
			side.add(r)
		}
	}
	if j.nBad > 0 {
		side.Warnings = append(side.Warnings, Warning{
			Code: WarnMalformed,
			Message: fmt.Sprintf("%s: skipped %d malformed of %d lines (%s)",
				j.name, j.nBad, j.lines, strings.Join(j.bad, "; ")),
		})
	}
	return side, nil
}

// Name is the file name the samples came from.
func (j *JSONL) Name() string { return j.name }

// Len is the number of well-formed samples read.
func (j *JSONL) Len() int { return len(j.records) }

// Describe says what the file holds, for a query that matched nothing.
func (j *JSONL) Describe() string {
	if len(j.records) == 0 {
		return fmt.Sprintf("%s holds no samples (%d lines)", j.name, j.lines)
	}
	first, last := j.records[0].time, j.records[0].time
	labels := [3]map[string]bool{{}, {}, {}}
	for _, r := range j.records {
		first, last = minTime(first, r.time), maxTime(last, r.time)
		labels[0][r.target], labels[1][r.role], labels[2][r.location] = true, true, true
	}
	list := func(m map[string]bool) string {
		keys := slices.Sorted(maps.Keys(m))
		for i, k := range keys {
			if k == "" {
				keys[i] = `""`
			}
		}
		return strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%s holds %d samples from %s to %s; targets %s; roles %s; locations %s",
		j.name, len(j.records), fmtTime(first, ""), fmtTime(last, ""), list(labels[0]), list(labels[1]), list(labels[2]))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
