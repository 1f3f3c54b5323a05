package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/edgeprobe/edgeprobe/httptrace"
)

// Values the file may leave out (DESIGN.md "Config").
const (
	defaultProbeInterval    = 30 * time.Second
	defaultProbeTimeout     = 10 * time.Second
	defaultProbeConcurrency = 256
	defaultPromListen       = ":9470"
	defaultCWNamespace      = "EdgeProbe"
	defaultCWFlush          = 60 * time.Second
	defaultPushJob          = "edgeprobe"
	defaultPushInterval     = 15 * time.Second
	defaultRWInterval       = 15 * time.Second
	defaultSigV4Service     = "aps"
)

// ConfigError is one problem in a config file, located so a person can fix
// it: where (File:Line:Col), which key (Path, e.g. "targets[1].interval")
// and what to write instead (Msg). Parse returns several joined with
// errors.Join; errors.As finds them. The CLI maps it to exit code 2.
type ConfigError struct {
	File string
	Line int    // 1-based; 0 when the problem is the file as a whole
	Col  int    // 1-based; 0 when unknown
	Path string // key path; empty for the file or the document as a whole
	Msg  string // never contains a value that came from the environment
	Err  error  // the underlying cause, if any
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Load reads and checks the config file at path (see Parse).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		reason := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			reason = pe.Err
		}
		return nil, &ConfigError{File: path, Msg: fmt.Sprintf("cannot read the config file (%v); check the path given to --config", reason), Err: err}
	}
	return Parse(path, data)
}

// Parse reads a config from data; path names it in messages and anchors
// relative file names (ca_file, web_config, jsonl path), which come back
// absolute. Unknown keys, values of the wrong type, ${ENV} references to
// unset variables and values that cannot work are all errors; as many as
// can be found are returned together. Omitted values get their defaults.
func Parse(path string, data []byte) (*Config, error) {
	return parseConfig(path, data, os.LookupEnv)
}

func parseConfig(path string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	l := &loader{
		file: path, dir: filepath.Dir(path), lookup: lookup,
		pos: map[string]token.Position{}, keyPos: map[string]token.Position{}, vars: map[string][]string{},
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, l.syntaxError(err)
	}
	var body ast.Node
	if len(f.Docs) > 0 {
		body = f.Docs[0].Body
	}
	if len(f.Docs) > 1 && f.Docs[1].Body != nil {
		l.errorAt(nodePos(f.Docs[1].Body), "", "a second YAML document (after ---); keep one document per file")
	}
	if body == nil || body.Type() == ast.NullType || body.Type() == ast.CommentType {
		l.errorAt(token.Position{Line: 1, Column: 1}, "", "the file has no settings; write at least targets: with one entry (name: and url:)")
		return nil, l.result()
	}
	l.walk(body, reflect.TypeFor[Config](), "")
	if len(l.errs) > 0 {
		return nil, l.result()
	}
	cfg := &Config{}
	// The walk above found what it knows how to explain; Strict stays on
	// so that anything it missed is still refused rather than ignored.
	// Duplicate keys were refused by the parser; allowing them here only
	// lets a key override one merged in with "<<: *anchor", as YAML means.
	if err := yaml.NodeToValue(body, cfg, yaml.Strict(), yaml.AllowDuplicateMapKey()); err != nil {
		return nil, l.syntaxError(err)
	}
	cfg.Path = path
	l.validate(cfg)
	if len(l.errs) > 0 {
		return nil, l.result()
	}
	return cfg, nil
}

// loader carries one file's positions and errors through the walk (shape
// and types), the decode, and the validation (meaning).
type loader struct {
	file   string
	dir    string
	lookup func(string) (string, bool)
	pos    map[string]token.Position // where each value starts, by key path
	keyPos map[string]token.Position // where each key is written
	// vars holds, for values that ${...} expanded, the variable names: such
	// values are never quoted in messages, as they may be secrets.
	vars map[string][]string
	errs []*ConfigError
}

func (l *loader) errorAt(p token.Position, path, format string, args ...any) {
	l.errs = append(l.errs, &ConfigError{File: l.file, Line: p.Line, Col: p.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// errorf reports a problem with the value at path (or, when the key is
// absent, with the nearest enclosing value that is present).
func (l *loader) errorf(path, format string, args ...any) {
	l.errorAt(l.at(path), path, format, args...)
}

// keyErrorf reports a problem with a key itself (a role name, a label name).
func (l *loader) keyErrorf(path, format string, args ...any) {
	p, ok := l.keyPos[path]
	if !ok {
		p = l.at(path)
	}
	l.errorAt(p, path, format, args...)
}

func (l *loader) at(path string) token.Position {
	for {
		if p, ok := l.pos[path]; ok {
			return p
		}
		if path == "" {
			return token.Position{Line: 1, Column: 1}
		}
		path = parentPath(path)
	}
}

func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		return path[:strings.LastIndexByte(path, '[')]
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func childPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// result joins the errors in file order.
func (l *loader) result() error {
	slices.SortStableFunc(l.errs, func(a, b *ConfigError) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

var dupKeyMessage = regexp.MustCompile(`^mapping key "(.*)" already defined at \[(\d+):\d+\]`)

// syntaxError turns go-yaml's error (which carries a token) into a
// ConfigError with a hint for the usual mistakes.
func (l *loader) syntaxError(err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return &ConfigError{File: l.file, Msg: "not valid YAML; check the indentation and quoting", Err: err}
	}
	p := *ye.GetToken().Position
	msg := ye.GetMessage()
	switch m := dupKeyMessage.FindStringSubmatch(msg); {
	case m != nil:
		msg = fmt.Sprintf("key %q is given twice (first at line %s); keep one", m[1], m[2])
	case strings.Contains(msg, "'\t'"):
		msg = "a tab character; indent with spaces, not tabs"
	case strings.Contains(msg, "mapping value is not allowed"), strings.Contains(msg, "value is not allowed in this context"):
		msg += "; check the indentation, and quote values that contain \": \" (e.g. \"a: b\")"
	case strings.Contains(msg, "not found"), strings.Contains(msg, "could not find end"):
		msg += "; close the quote or bracket"
	default:
		var se *yaml.SyntaxError
		if errors.As(err, &se) {
			msg += "; check the indentation and quoting"
		}
	}
	return &ConfigError{File: l.file, Line: p.Line, Col: p.Column, Msg: msg, Err: err}
}

// nodePos is where a value starts: for a block mapping, its first key
// (go-yaml puts a mapping's own token on the first colon).
func nodePos(n ast.Node) token.Position {
	switch m := n.(type) {
	case *ast.MappingNode:
		if !m.IsFlowStyle && len(m.Values) > 0 {
			return *m.Values[0].Key.GetToken().Position
		}
	case *ast.MappingValueNode:
		return *m.Key.GetToken().Position
	}
	return *n.GetToken().Position
}

var (
	durationType = reflect.TypeFor[Duration]()
	timeType     = reflect.TypeFor[time.Time]()
)

// walk checks the shape of the document against the Go type it will be
// decoded into, recording positions, and expands ${ENV} in string values in
// place (so the decoder sees expanded values and the positions stay).
// Unlike the decoder it does not stop at the first problem.
func (l *loader) walk(n ast.Node, t reflect.Type, path string) {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
			continue
		case *ast.TagNode:
			n = v.Value
			continue
		}
		break
	}
	if n == nil {
		return
	}
	if _, ok := n.(*ast.AliasNode); ok {
		return // checked where its anchor is defined
	}
	l.pos[path] = nodePos(n)
	if n.Type() == ast.NullType {
		return // an empty value keeps the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		l.checkDurationNode(n, path)
		return
	case timeType:
		l.checkTimeNode(n, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		l.walkStruct(n, t, path)
	case reflect.Map:
		l.walkMap(n, t, path)
	case reflect.Slice:
		l.walkList(n, t, path)
	case reflect.String:
		l.walkString(n, path)
	case reflect.Bool:
		if n.Type() != ast.BoolType {
			l.errorf(path, "%s is not true or false; write true or false", describe(n))
		}
	case reflect.Int, reflect.Int64:
		if n.Type() != ast.IntegerType {
			l.errorf(path, "%s is not a whole number; write e.g. %s", describe(n), intExample(path))
		}
	}
}

func intExample(path string) string {
	switch {
	case strings.HasSuffix(path, "body_limit"):
		return "1048576 (bytes)"
	case strings.Contains(path, "status"):
		return "200"
	}
	return "5"
}

// describe names a node for a message without its content when it is a
// collection.
func describe(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping (key: value)"
	case ast.SequenceType:
		return "a list"
	}
	return strconv.Quote(n.GetToken().Value)
}

func (l *loader) checkDurationNode(n ast.Node, path string) {
	s, ok := n.(*ast.StringNode)
	if !ok {
		l.errorf(path, "%s is not a duration; write e.g. 30s or 1m", describe(n))
		return
	}
	if _, err := parseDuration(s.Value); err != nil {
		l.errorf(path, "%s", err)
	}
}

func (l *loader) checkTimeNode(n ast.Node, path string) {
	s, ok := n.(*ast.StringNode)
	if ok {
		if _, err := time.Parse(time.RFC3339, s.Value); err == nil {
			return
		}
	}
	l.errorf(path, "%s is not an RFC 3339 time; write e.g. 2025-06-01T22:00:00Z or 2025-06-01T22:00:00+02:00", describe(n))
}

// yamlKeys lists a struct's keys in declaration order, with their fields.
func yamlKeys(t reflect.Type) ([]string, map[string]reflect.StructField) {
	var names []string
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		names = append(names, name)
		fields[name] = f
	}
	return names, fields
}

func (l *loader) walkStruct(n ast.Node, t reflect.Type, path string) {
	mn, ok := n.(ast.MapNode)
	if !ok {
		l.errorf(path, "%s where keys are expected; write key: value lines (e.g. %s)", describe(n), structExample(t))
		return
	}
	names, fields := yamlKeys(t)
	it := mn.MapRange()
	for it.Next() {
		k := it.Key()
		if k.Type() == ast.MergeKeyType {
			continue
		}
		name := k.GetToken().Value
		kp := childPath(path, name)
		f, known := fields[name]
		if !known {
			l.errorAt(*k.GetToken().Position, path, "unknown key %q; %s", name, unknownKeyHint(t, name, names))
			continue
		}
		l.keyPos[kp] = *k.GetToken().Position
		l.walk(it.Value(), f.Type, kp)
	}
}

func structExample(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Target]():
		return "name: shop, url: https://www.example.com/health"
	case reflect.TypeFor[Role]():
		return "connect_to: my-alb-123.eu-west-1.elb.amazonaws.com"
	case reflect.TypeFor[Window]():
		return "from: 2025-06-01T22:00:00Z, to: 2025-06-01T23:00:00Z"
	}
	names, _ := yamlKeys(t)
	return names[0] + ": …"
}

func (l *loader) walkMap(n ast.Node, t reflect.Type, path string) {
	mn, ok := n.(ast.MapNode)
	if !ok {
		l.errorf(path, "%s where a mapping is expected; write name: value lines", describe(n))
		return
	}
	it := mn.MapRange()
	for it.Next() {
		k := it.Key()
		if k.Type() == ast.MergeKeyType {
			continue
		}
		kp := childPath(path, k.GetToken().Value)
		l.keyPos[kp] = *k.GetToken().Position
		l.walk(it.Value(), t.Elem(), kp)
	}
}

func (l *loader) walkList(n ast.Node, t reflect.Type, path string) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		hint := "write one item per line starting with \"- \""
		if k := t.Elem().Kind(); k != reflect.Struct && n.Type() != ast.MappingType {
			hint = fmt.Sprintf("write [%s]", n.GetToken().Value)
		}
		l.errorf(path, "%s is not a list; %s", describe(n), hint)
		return
	}
	for i, item := range seq.Values {
		l.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
	}
}

func (l *loader) walkString(n ast.Node, path string) {
	var s *ast.StringNode
	switch v := n.(type) {
	case *ast.StringNode:
		s = v
	case *ast.LiteralNode: // block scalar (| or >), e.g. a request body
		s = v.Value
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		l.errorf(path, "%s where a single value is expected; quote it if it contains \": \" or starts with [ or {", describe(n))
		return
	default:
		return // numbers and booleans read as their text
	}
	out, vars, err := expandEnv(s.Value, l.lookup)
	if err != nil {
		l.errorf(path, "%s", err)
		return
	}
	s.Value = out
	if len(vars) > 0 {
		l.vars[path] = vars
	}
}

// expandEnv replaces ${NAME} and ${NAME:-default} (default when NAME is
// unset or empty); $${ is a literal ${. Other $ signs are left alone, so
// URLs and regexes need no escaping. Errors never contain a variable's
// value.
func expandEnv(s string, lookup func(string) (string, bool)) (string, []string, error) {
	if !strings.Contains(s, "${") {
		return s, nil, nil
	}
	var b strings.Builder
	var vars []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", nil, errors.New(`"${" without a closing "}"; write ${NAME}, or $${ for a literal ${`)
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !envName.MatchString(name) {
			return "", nil, fmt.Errorf("${%s} is not a variable reference; write ${NAME} or ${NAME:-default} (letters, digits, _)", ref)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", nil, fmt.Errorf("${%s} is not set; export %s, or write ${%s:-default}", name, name, name)
		}
		b.WriteString(v)
		if !slices.Contains(vars, name) {
			vars = append(vars, name)
		}
		s = s[i+end+1:]
	}
	return b.String(), vars, nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// show quotes a value for a message, unless it came from the environment:
// then it names the variables instead, since the value may be a secret.
func (l *loader) show(path, v string) string {
	if _, secret := l.vars[path]; !secret {
		return strconv.Quote(v)
	}
	return "the value from " + l.refs(path)
}

// refs lists the variables a value came from: "${A}, ${B}".
func (l *loader) refs(path string) string {
	refs := make([]string, len(l.vars[path]))
	for i, name := range l.vars[path] {
		refs[i] = "${" + name + "}"
	}
	return strings.Join(refs, ", ")
}

// unknownKeyHint says what the user probably meant: a key that belongs
// elsewhere, a near spelling, or the keys there are.
func unknownKeyHint(t reflect.Type, key string, known []string) string {
	if h := misplacedKeyHint(t, key); h != "" {
		return h
	}
	if s := nearestKey(key, known); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "known keys here: " + strings.Join(known, ", ")
}

func misplacedKeyHint(t reflect.Type, key string) string {
	_, targetKeys := yamlKeys(reflect.TypeFor[Target]())
	_, defaultKeys := yamlKeys(reflect.TypeFor[Defaults]())
	_, exporterKeys := yamlKeys(reflect.TypeFor[Exporters]())
	_, expectKeys := yamlKeys(reflect.TypeFor[Expect]())
	switch t {
	case reflect.TypeFor[Config]():
		switch _, isDefault := defaultKeys[key]; {
		case isDefault:
			return fmt.Sprintf("%s goes under defaults: (or on a target)", key)
		case exporterKeys[key].Name != "":
			return fmt.Sprintf("%s goes under exporters:", key)
		case targetKeys[key].Name != "":
			return fmt.Sprintf("%s belongs to a target: write it in an entry under targets:", key)
		case key == "connect_to" || key == "host":
			return fmt.Sprintf("%s belongs to a role of a target: targets: [{name: shop, url: …, roles: {origin: {%s: …}}}]", key, key)
		}
	case reflect.TypeFor[Target]():
		switch {
		case key == "connect_to" || key == "host":
			return fmt.Sprintf("%s is set per role; write roles: {origin: {%s: …}}", key, key)
		case expectKeys[key].Name != "":
			return fmt.Sprintf("%s goes under expect:, e.g. expect: {%s: …}", key, key)
		case key == "location" || key == "labels":
			return fmt.Sprintf("%s is set once, at the top of the file", key)
		}
	case reflect.TypeFor[Role]():
		if targetKeys[key].Name != "" {
			return fmt.Sprintf("%s is set per target, not per role; a role takes url, connect_to, host and headers", key)
		}
	case reflect.TypeFor[Defaults]():
		if targetKeys[key].Name != "" {
			return fmt.Sprintf("%s is set per target; defaults take interval, timeout, ip_version, dns_server, headers and user_agent", key)
		}
	}
	return ""
}

// nearestKey is the known key closest to key by edit distance, if it is
// close enough to be a typo ("intreval" → "interval").
func nearestKey(key string, known []string) string {
	norm := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	best, bestD := "", 1<<30
	for _, k := range known {
		d := editDistance(norm, k)
		if len(norm) >= 4 && strings.HasPrefix(k, norm) {
			d = min(d, 2)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= 2 && bestD*2 <= len(norm) {
		return best
	}
	return ""
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// resolve anchors a relative file name at the config file's directory.
func (l *loader) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	joined := filepath.Join(l.dir, p)
	if abs, err := filepath.Abs(joined); err == nil {
		return abs
	}
	return joined
}

var (
	labelSafe     = regexp.MustCompile(`^[a-zA-Z0-9_.:-]+$`)
	labelName     = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	labelUnsafeCh = regexp.MustCompile(`[^a-zA-Z0-9_.:-]+`)
	// Label names the agent's own series use: a constant label of the same
	// name would collide with them.
	reservedLabels = []string{"target", "role", "location", "address", "phase", "result", "cache", "pop", "http_version", "tls_version", "ip_family", "cdn", "version", "revision", "goversion", "le", "quantile", "job", "instance"}
)

// validate checks what the values mean, and fills in defaults.
func (l *loader) validate(c *Config) {
	if c.Location != "" && !labelSafe.MatchString(c.Location) {
		l.errorf("location", "%s is not usable as a label value; use letters, digits and _ . : - (e.g. eu-west-1), or leave it out to detect it", l.show("location", c.Location))
	}
	for _, k := range sortedKeys(c.Labels) {
		switch {
		case !labelName.MatchString(k) || strings.HasPrefix(k, "__"):
			l.keyErrorf(childPath("labels", k), "%q is not a label name; use letters, digits and _, not starting with a digit or __ (e.g. env)", k)
		case slices.Contains(reservedLabels, k):
			l.keyErrorf(childPath("labels", k), "%q is a label the agent sets itself; choose another name (e.g. site_%s)", k, k)
		}
	}
	switch {
	case c.Concurrency < 0:
		l.errorf("concurrency", "%d is negative; write a positive number of probes in flight, e.g. %d", c.Concurrency, defaultProbeConcurrency)
	case c.Concurrency == 0:
		c.Concurrency = defaultProbeConcurrency
	}

	d := &c.Defaults
	l.checkIPVersion("defaults.ip_version", d.IPVersion)
	l.checkDNSServer("defaults.dns_server", d.DNSServer)
	l.checkHeaders("defaults.headers", d.Headers)
	explicitTimeout := d.Timeout != 0
	if d.Interval == 0 {
		d.Interval = Duration(defaultProbeInterval)
	}
	if !explicitTimeout {
		d.Timeout = Duration(min(defaultProbeTimeout, d.Interval.D()))
	} else if d.Timeout > d.Interval {
		l.errorf("defaults.timeout", "%s is longer than the interval %s; a probe must end before the next one starts: write %s or less, or raise defaults.interval", d.Timeout, d.Interval, d.Interval)
	}

	if len(c.Targets) == 0 {
		l.errorf("targets", "no targets; write targets: with at least one entry, e.g. - {name: shop, url: https://www.example.com/health}")
	}
	names := map[string]int{}
	cas := map[string]error{}
	for i := range c.Targets {
		l.validateTarget(c, i, explicitTimeout, names, cas)
	}
	l.validateExporters(c)
}

func (l *loader) validateTarget(c *Config, i int, explicitTimeout bool, names map[string]int, cas map[string]error) {
	t := &c.Targets[i]
	p := fmt.Sprintf("targets[%d]", i)
	t.Line = l.at(p).Line
	np := p + ".name"
	switch first, dup := names[t.Name]; {
	case t.Name == "":
		l.errorf(p, "name is required; write name: shop (letters, digits and _ . : -), used as the target label")
	case !labelSafe.MatchString(t.Name):
		l.errorf(np, "%s is not usable as a label value; use letters, digits and _ . : - (e.g. %q)", l.show(np, t.Name), strings.Trim(labelUnsafeCh.ReplaceAllString(t.Name, "-"), "-"))
	case dup:
		l.errorf(np, "%s is used twice (first at line %d); names must be unique", l.show(np, t.Name), first)
	default:
		names[t.Name] = l.at(np).Line
	}

	if t.URL != "" {
		l.checkURL(p+".url", t.URL, "https://www.example.com/health")
	} else if len(t.Roles) == 0 {
		l.errorf(p, "url is required; write url: https://www.example.com/health (or give each role its own url)")
	}
	for _, name := range sortedKeys(t.Roles) {
		r := t.Roles[name]
		rp := p + ".roles." + name
		if !labelSafe.MatchString(name) {
			l.keyErrorf(rp, "role name %q is not usable as a label value; use letters, digits and _ . : - (e.g. origin, cdn)", name)
		}
		if r.URL != "" {
			l.checkURL(rp+".url", r.URL, "https://www.example.com/health")
		} else if t.URL == "" {
			l.keyErrorf(rp, "no url for this role; write url: on the role or on the target")
		}
		l.checkConnectTo(rp+".connect_to", r.ConnectTo)
		l.checkHost(rp+".host", r.Host)
		l.checkHeaders(rp+".headers", r.Headers)
	}

	if m := t.Method; m != "" {
		if !isToken(m) {
			l.errorf(p+".method", "%s is not an HTTP method; write e.g. GET, HEAD or POST", l.show(p+".method", m))
		} else if up := strings.ToUpper(m); up != m {
			hint := up
			if _, secret := l.vars[p+".method"]; secret {
				hint = "it in capitals"
			}
			l.errorf(p+".method", "%s: methods are case-sensitive; write %s", l.show(p+".method", m), hint)
		}
	}
	l.checkHeaders(p+".headers", t.Headers)

	interval := t.Interval
	if interval == 0 {
		interval = c.Defaults.Interval
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = c.Defaults.Timeout
		if !explicitTimeout {
			timeout = Duration(min(defaultProbeTimeout, interval.D()))
		}
	}
	if timeout > interval {
		switch {
		case t.Timeout != 0:
			l.errorf(p+".timeout", "%s is longer than the interval %s; a probe must end before the next one starts: write %s or less, or raise interval", timeout, interval, interval)
		case t.Interval != 0:
			l.errorf(p+".interval", "%s is shorter than the timeout %s (from defaults); write timeout: %s or less on this target, or a longer interval", interval, timeout, interval)
		}
	}
	t.Interval, t.Timeout = interval, timeout

	l.checkIPVersion(p+".ip_version", t.IPVersion)
	l.checkDNSServer(p+".dns_server", t.DNSServer)
	if t.CAFile != "" {
		t.CAFile = l.checkCAFile(p+".ca_file", t.CAFile, cas)
	}
	if t.MaxRedirects < 0 {
		l.errorf(p+".max_redirects", "%d is negative; write a number of redirects to follow (default %d), or follow_redirects: false", t.MaxRedirects, httptrace.DefaultMaxRedirects)
	}
	if t.BodyLimit < 0 {
		l.errorf(p+".body_limit", "%d is negative; write a size in bytes (default %d)", t.BodyLimit, httptrace.DefaultBodyLimit)
	}

	ep := p + ".expect"
	for j, code := range t.Expect.Status {
		if code < 100 || code > 599 {
			l.errorf(fmt.Sprintf("%s.status[%d]", ep, j), "%d is not an HTTP status code; write codes from 100 to 599, e.g. [200, 304]", code)
		}
	}
	l.checkRegex(ep+".body_regex", t.Expect.BodyRegex)
	l.checkRegex(ep+".body_not_regex", t.Expect.BodyNotRegex)
	for j, h := range t.Expect.Headers {
		if !isToken(h) {
			hp := fmt.Sprintf("%s.headers[%d]", ep, j)
			l.errorf(hp, "%s is not a header name; write a name such as X-Cache", l.show(hp, h))
		}
	}

	for j, w := range t.Paused {
		wp := fmt.Sprintf("%s.paused[%d]", p, j)
		switch {
		case w.From.IsZero() || w.To.IsZero():
			l.errorf(wp, "a pause needs both from: and to:, e.g. {from: 2025-06-01T22:00:00Z, to: 2025-06-01T23:00:00Z}")
		case !w.From.Before(w.To):
			l.errorf(wp+".to", "%s is not after from (%s); a pause runs from from: to to:, so write a later to:", w.To.Format(time.RFC3339), w.From.Format(time.RFC3339))
		}
	}
}

func (l *loader) validateExporters(c *Config) {
	e := &c.Exporters
	// A bare "prometheus:" means "on, with defaults", as it reads.
	present := func(name string) bool { _, ok := l.pos["exporters."+name]; return ok }
	if e.Prometheus == nil && present("prometheus") {
		e.Prometheus = &PrometheusConfig{}
	}
	if e.CloudWatch == nil && present("cloudwatch") {
		e.CloudWatch = &CloudWatchConfig{}
	}
	if e.RemoteWrite == nil && present("remote_write") {
		e.RemoteWrite = &RemoteWriteConfig{}
	}
	if e.Pushgateway == nil && present("pushgateway") {
		e.Pushgateway = &PushgatewayConfig{}
	}
	if e.JSONL == nil && present("jsonl") {
		e.JSONL = &JSONLConfig{}
	}

	if pr := e.Prometheus; pr != nil {
		if pr.Listen == "" {
			pr.Listen = defaultPromListen
		} else if _, port, err := net.SplitHostPort(pr.Listen); err != nil || (!validPort(port) && port != "0") {
			l.errorf("exporters.prometheus.listen", "%s is not host:port; write e.g. \":9470\" or 127.0.0.1:9470", l.show("exporters.prometheus.listen", pr.Listen))
		}
		if pr.WebConfig != "" {
			pr.WebConfig = l.checkFile("exporters.prometheus.web_config", pr.WebConfig, "an exporter-toolkit web config file")
		}
	}
	if cw := e.CloudWatch; cw != nil {
		if cw.Namespace == "" {
			cw.Namespace = defaultCWNamespace
		} else if strings.HasPrefix(cw.Namespace, "AWS/") {
			l.errorf("exporters.cloudwatch.namespace", "%s: namespaces starting with AWS/ are reserved for AWS; write e.g. %s", l.show("exporters.cloudwatch.namespace", cw.Namespace), defaultCWNamespace)
		}
		if cw.FlushInterval == 0 {
			cw.FlushInterval = Duration(defaultCWFlush)
		}
		if cw.Endpoint != "" {
			l.checkURL("exporters.cloudwatch.endpoint", cw.Endpoint, "http://127.0.0.1:5000")
		}
	}
	if rw := e.RemoteWrite; rw != nil {
		l.requireURL("exporters.remote_write.url", rw.URL, "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-…/api/v1/remote_write")
		if rw.Interval == 0 {
			rw.Interval = Duration(defaultRWInterval)
		}
		l.checkHeaders("exporters.remote_write.headers", rw.Headers)
		if rw.SigV4 == nil && present("remote_write.sigv4") {
			rw.SigV4 = &SigV4Config{}
		}
		if rw.SigV4 != nil && rw.SigV4.Service == "" {
			rw.SigV4.Service = defaultSigV4Service
		}
	}
	if pg := e.Pushgateway; pg != nil {
		l.requireURL("exporters.pushgateway.url", pg.URL, "http://127.0.0.1:9091")
		if pg.Job == "" {
			pg.Job = defaultPushJob
		} else if strings.Contains(pg.Job, "/") {
			l.errorf("exporters.pushgateway.job", "%s contains /; write a plain name such as %s", l.show("exporters.pushgateway.job", pg.Job), defaultPushJob)
		}
		if pg.Interval == 0 {
			pg.Interval = Duration(defaultPushInterval)
		}
	}
	if j := e.JSONL; j != nil {
		const jp = "exporters.jsonl.path"
		if j.Path == "" {
			l.keyErrorf("exporters.jsonl", "path is required; write path: samples.jsonl (relative to this file's directory)")
		} else {
			abs := l.resolve(j.Path)
			if st, err := os.Stat(filepath.Dir(abs)); err != nil || !st.IsDir() {
				l.errorf(jp, "the directory of %s does not exist%s; create it, or write a path in an existing directory", l.show(jp, j.Path), l.lookedAt(jp, filepath.Dir(abs)))
			}
			j.Path = abs
		}
	}
}

// lookedAt says where a relative name led, unless the name came from the
// environment.
func (l *loader) lookedAt(path, abs string) string {
	if _, secret := l.vars[path]; secret {
		return ""
	}
	return " (looked for " + abs + ")"
}

func (l *loader) requireURL(path, u, example string) {
	if u == "" {
		l.keyErrorf(parentPath(path), "url is required; write url: %s", example)
		return
	}
	l.checkURL(path, u, example)
}

// checkURL requires an absolute http(s) URL with a host.
func (l *loader) checkURL(path, u, example string) {
	shown := l.show(path, redactURL(u))
	_, secret := l.vars[path]
	if !strings.Contains(u, "://") {
		if !secret && !strings.HasPrefix(u, "/") {
			example = "https://" + u
		}
		l.errorf(path, "%s is not an absolute URL; write it with the scheme, e.g. %s", shown, example)
		return
	}
	p, err := url.Parse(u)
	switch {
	case err != nil:
		l.errorf(path, "%s is not a valid URL; write e.g. %s", shown, example)
	case p.Scheme != "http" && p.Scheme != "https":
		l.errorf(path, "%s: scheme %q is not supported; write an http:// or https:// URL, e.g. %s", shown, p.Scheme, example)
	case p.Host == "" || p.Hostname() == "":
		l.errorf(path, "%s has no host; write e.g. %s", shown, example)
	case p.Port() != "" && !validPort(p.Port()):
		l.errorf(path, "%s: port %s is not a port number (1-65535); write e.g. %s", shown, p.Port(), example)
	}
}

// redactURL hides a password in a URL (user:password@) for messages.
func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil {
		return p.Redacted()
	}
	return u
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// checkConnectTo accepts host or host:port (a name or an IP, IPv6 in [ ]
// when with a port), which httptrace dials instead of the URL's host.
func (l *loader) checkConnectTo(path, v string) {
	if v == "" {
		return
	}
	const hint = "write a host or host:port without scheme or path, e.g. my-alb-123.eu-west-1.elb.amazonaws.com or 10.0.0.5:443"
	shown := l.show(path, v)
	if strings.Contains(v, "/") {
		l.errorf(path, "%s is not a host or host:port; %s", shown, hint)
		return
	}
	host := v
	if h, port, err := net.SplitHostPort(v); err == nil {
		if !validPort(port) {
			l.errorf(path, "%s: port %q is not a port number (1-65535); %s", shown, port, hint)
			return
		}
		host = h
	}
	if !validHost(host) {
		l.errorf(path, "%s is not a host or host:port; %s", shown, hint)
	}
}

// checkHost accepts the name sent as Host and SNI.
func (l *loader) checkHost(path, v string) {
	if v == "" {
		return
	}
	if strings.Contains(v, "/") || !validHost(v) {
		l.errorf(path, "%s is not a host name; write the site's name without scheme, port or path, e.g. www.example.com", l.show(path, v))
	}
}

func validHost(h string) bool {
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return true
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

func (l *loader) checkIPVersion(path, v string) {
	switch v {
	case httptrace.IPAny, httptrace.IPv4Only, httptrace.IPv6Only, httptrace.IPPrefer4, httptrace.IPPrefer6:
		return
	}
	known := []string{httptrace.IPv4Only, httptrace.IPv6Only, httptrace.IPPrefer4, httptrace.IPPrefer6}
	hint := "write one of ip4, ip6, prefer4, prefer6, or leave it out for both in the resolver's order"
	if s := nearestKey(strings.NewReplacer("ipv", "ip", "v", "").Replace(strings.ToLower(v)), known); s != "" {
		hint = fmt.Sprintf("did you mean %q? (one of ip4, ip6, prefer4, prefer6)", s)
	}
	l.errorf(path, "%s is not an IP version; %s", l.show(path, v), hint)
}

func (l *loader) checkDNSServer(path, v string) {
	if v == "" {
		return
	}
	if _, err := netip.ParseAddrPort(v); err == nil {
		return
	}
	hint := "127.0.0.1:53 or [2001:db8::53]:53"
	if ip, err := netip.ParseAddr(v); err == nil {
		if _, secret := l.vars[path]; !secret {
			hint = netip.AddrPortFrom(ip, 53).String()
		}
	}
	l.errorf(path, "%s is not ip:port; write e.g. %s (an IP address, not a name: the resolver's own name would need resolving)", l.show(path, v), hint)
}

func (l *loader) checkHeaders(path string, h map[string]string) {
	for _, name := range sortedKeys(h) {
		hp := childPath(path, name)
		switch {
		case !isToken(name):
			l.keyErrorf(hp, "%q is not a header name; use letters, digits and - (e.g. X-Api-Key)", name)
		case strings.EqualFold(name, "Host"):
			l.keyErrorf(hp, "Host is set with host: on a role (it also sets the TLS server name), e.g. roles: {origin: {host: www.example.com}}")
		case strings.ContainsAny(h[name], "\r\n\x00"):
			// Never the value itself: headers carry tokens.
			what := "value of header " + name
			if _, fromEnv := l.vars[hp]; fromEnv {
				what += " (from " + l.refs(hp) + ")"
			}
			l.errorf(hp, "%s contains a line break or NUL; remove it (a variable read from a file often ends in a newline)", what)
		}
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func (l *loader) checkRegex(path, re string) {
	if re == "" {
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		var reason string
		var se *syntax.Error
		if errors.As(err, &se) {
			reason = " (" + string(se.Code) + ")"
		}
		l.errorf(path, "%s is not a valid regular expression%s; write RE2 syntax (e.g. ok|healthy), and in double quotes write \\ as \\\\", l.show(path, re), reason)
	}
}

// checkCAFile loads a CA bundle once per distinct file and returns its
// absolute path.
func (l *loader) checkCAFile(path, file string, cache map[string]error) string {
	abs := l.resolve(file)
	err, seen := cache[abs]
	if !seen {
		_, err = httptrace.LoadCAFile(abs)
		cache[abs] = err
	}
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		l.errorf(path, "%s does not exist%s; write the path of a PEM file, relative to this file's directory", l.show(path, file), l.lookedAt(path, abs))
	default:
		l.errorf(path, "%s is not a PEM certificate file%s; write the path of a file with -----BEGIN CERTIFICATE----- blocks", l.show(path, file), l.lookedAt(path, abs))
	}
	return abs
}

// checkFile requires a readable file and returns its absolute path.
func (l *loader) checkFile(path, file, what string) string {
	abs := l.resolve(file)
	if st, err := os.Stat(abs); err != nil || st.IsDir() {
		l.errorf(path, "%s does not exist or is not a file%s; write the path of %s, relative to this file's directory", l.show(path, file), l.lookedAt(path, abs), what)
	}
	return abs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
