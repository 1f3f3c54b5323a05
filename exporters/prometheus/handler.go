package promexp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Limits of /metrics, as promhttp's options had them.
const (
	maxScrapesInFlight = 4
	scrapeTimeout      = 30 * time.Second
)

// gzipLevel: the page is very repetitive. Level 1 makes it 29× smaller at
// about 0.7 GB/s here; levels 2–4 reach 30–32× at 0.4–0.6 GB/s, 6 (the
// level promhttp used, in compress/gzip) 40× at 0.23 GB/s
// (BenchmarkGzipLevels). 5,000 targets are 100 MB of text: compressing
// it is most of a scrape's cost.
const gzipLevel = gzip.BestSpeed

// metricsHandler serves /metrics. In the two text formats it writes the
// Exporter's families with the text encoder (text.go) and the registry's
// other metrics with expfmt, merged into one page in the order of names,
// as the registry would, and streams it out in chunks. Everything else
// (protobuf, which Prometheus asks for to get native histograms) goes
// through promhttp as before.
type metricsHandler struct {
	reg      *prometheus.Registry // the gatherer, if it is a registry (nil: never the fast path)
	c        *collector           // the Exporter's (nil: never the fast path)
	promhttp http.Handler
	inFlight chan struct{}
	timeout  time.Duration
	errorLog promhttp.Logger
	gzip     sync.Pool // of *gzip.Writer
}

func newMetricsHandler(gatherer prometheus.Gatherer, e *Exporter, errorLog promhttp.Logger) *metricsHandler {
	h := &metricsHandler{
		promhttp: promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			// OpenMetrics carries exemplars; Prometheus asks for protobuf
			// when it ingests native histograms, which the handler also
			// serves. Its in-flight limit still counts a gathering that
			// runs on after its timeout; the handler's own one does not.
			EnableOpenMetrics:   true,
			ErrorLog:            errorLog,
			ErrorHandling:       promhttp.ContinueOnError,
			MaxRequestsInFlight: maxScrapesInFlight,
			Timeout:             scrapeTimeout,
		}),
		inFlight: make(chan struct{}, maxScrapesInFlight),
		timeout:  scrapeTimeout,
		errorLog: errorLog,
	}
	h.gzip.New = func() any {
		w, err := gzip.NewWriterLevel(nil, gzipLevel)
		if err != nil {
			panic(fmt.Errorf("gzip level %d: %w", gzipLevel, err)) // a constant: a bug
		}
		return w
	}
	if reg, ok := gatherer.(*prometheus.Registry); ok && e != nil && e.c.textOK() {
		h.reg, h.c = reg, e.c
	}
	return h
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", cap(h.inFlight)),
			http.StatusServiceUnavailable)
		return
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	om, text := textFormat(format)
	if !text || h.c == nil {
		h.promhttp.ServeHTTP(w, r)
		return
	}
	h.serveText(w, r, format, om)
}

// textFormat says whether f is one the text encoder writes (text 0.0.4 or
// 1.0.0, OpenMetrics 0.0.1 or 1.0.0, all written alike by expfmt) and
// whether it is OpenMetrics.
func textFormat(f expfmt.Format) (om, ok bool) {
	switch f.FormatType() {
	case expfmt.TypeTextPlain:
		return false, true
	case expfmt.TypeOpenMetrics:
		_, params, err := mime.ParseMediaType(string(f))
		v := params["version"]
		return true, err == nil && (v == expfmt.OpenMetricsVersion_1_0_0 || v == expfmt.OpenMetricsVersion_0_0_1)
	}
	return false, false
}

func (h *metricsHandler) serveText(w http.ResponseWriter, r *http.Request, format expfmt.Format, om bool) {
	// Instead of promhttp's http.TimeoutHandler, which holds the whole page
	// in memory until it is done: a deadline checked between chunks, and
	// one on writing, so a stalled client cannot hold a scrape slot.
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	rc := http.NewResponseController(w)
	if rc.SetWriteDeadline(deadline) == nil {
		// The connection may serve the next scrape.
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}

	mfs, ours, err := h.gatherOthers()
	if err != nil {
		h.errorLog.Println("error gathering metrics:", err)
		if len(mfs) == 0 && !ours {
			httpError(w, err)
			return
		}
	}
	var filter map[string]bool // promhttp's name[] parameter
	if r.URL != nil {
		for _, n := range r.URL.Query()["name[]"] {
			if filter == nil {
				filter = map[string]bool{}
			}
			filter[n] = true
		}
	}

	header := w.Header()
	header.Add("Vary", "Accept")
	header.Add("Vary", "Accept-Encoding")
	header.Set("Content-Type", string(format))
	var out io.Writer = w
	if negotiateGzip(r) {
		gz := h.gzip.Get().(*gzip.Writer)
		gz.Reset(w)
		defer h.gzip.Put(gz)
		out = gz
		header.Set("Content-Encoding", "gzip")
	}

	pw := newPageWriter(ctx, out)
	defer pw.finish() // after a panic too: the sender must be done with w
	enc := expfmt.NewEncoder(pw, format)
	var t *textScrape
	if ours {
		t = h.c.newTextScrape(pw, om)
	}
	h.writePage(pw, enc, t, mfs, filter)
	if pw.err == nil {
		if closer, ok := enc.(expfmt.Closer); ok {
			pw.err = closer.Close() // OpenMetrics' # EOF
		}
	}
	wrote, err := pw.finish()
	if gz, ok := out.(*gzip.Writer); ok && err == nil {
		err = gz.Close()
	}
	if err == nil {
		return
	}
	switch {
	case r.Context().Err() != nil:
		// The client went away; nothing to tell it.
	case !wrote && errors.Is(err, context.DeadlineExceeded):
		// What http.TimeoutHandler would have said.
		for _, k := range []string{"Content-Type", "Content-Encoding", "Vary"} {
			header.Del(k)
		}
		header.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "Exceeded configured timeout of %v.\n", h.timeout)
		return
	default:
		h.errorLog.Println("error encoding and sending metric family:", err)
	}
	if wrote {
		// Cut the connection: the client must not take a partial page
		// for a whole one (text 0.0.4 has no end marker).
		panic(http.ErrAbortHandler)
	}
}

// writePage writes the gathered families and, if t is not nil, the
// Exporter's, all in the order of their names; a family the filter (if
// any) does not name is left out.
func (h *metricsHandler) writePage(pw *pageWriter, enc expfmt.Encoder, t *textScrape, mfs []*dto.MetricFamily, filter map[string]bool) {
	var ours []int
	if t != nil {
		ours = h.c.order[:]
	}
	for pw.err == nil && (len(mfs) > 0 || len(ours) > 0) {
		if len(ours) == 0 || len(mfs) > 0 && mfs[0].GetName() < h.c.text[ours[0]].name {
			if filter == nil || filter[mfs[0].GetName()] {
				if err := enc.Encode(mfs[0]); err != nil && pw.err == nil {
					pw.err = err
				}
			}
			mfs = mfs[1:]
			continue
		}
		if filter == nil || filter[h.c.text[ours[0]].name] {
			t.family(ours[0])
		}
		ours = ours[1:]
	}
}

// gatherOthers gathers the registry without the Exporter's families, and
// says whether they belong in the page (the registry has the collector).
// A registry of its own gathers the registry as a collector through a
// channel the Exporter's collector is told to skip: the metrics are
// processed (checked, sorted into families) as the registry's own Gather
// would, while other gatherers (push, remote write) keep getting all.
func (h *metricsHandler) gatherOthers() ([]*dto.MetricFamily, bool, error) {
	oc := &othersCollector{src: h.reg, c: h.c}
	reg := prometheus.NewRegistry()
	if err := reg.Register(oc); err != nil {
		return nil, false, fmt.Errorf("metrics handler: %w", err)
	}
	mfs, err := reg.Gather()
	return mfs, oc.ours, err
}

// othersCollector collects src, less c. An unchecked collector: it
// describes nothing, src's collectors were checked when registered there.
type othersCollector struct {
	src  prometheus.Collector
	c    *collector
	ours bool // c was collected (and skipped)
}

func (o *othersCollector) Describe(chan<- *prometheus.Desc) {}

func (o *othersCollector) Collect(ch chan<- prometheus.Metric) {
	o.c.skipFor(ch)
	defer func() { o.ours = o.c.unskip(ch) }()
	o.src.Collect(ch)
}

// httpError is promhttp's: no content encoding, the error in plain text.
func httpError(w http.ResponseWriter, err error) {
	w.Header().Del("Content-Encoding")
	http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
}

// negotiateGzip picks gzip or identity from Accept-Encoding as promhttp's
// negotiation does with those two offered: the highest q wins, identity on
// a tie (it is offered first), and identity when nothing is acceptable.
func negotiateGzip(r *http.Request) bool {
	best, bestQ := "identity", -1.0
	for _, offer := range [...]string{"identity", "gzip"} {
		for _, spec := range parseAcceptEncoding(r.Header.Values("Accept-Encoding")) {
			if spec.q > bestQ && (spec.value == "*" || spec.value == offer) {
				best, bestQ = offer, spec.q
			}
		}
	}
	return best == "gzip" && bestQ > 0
}

type acceptSpec struct {
	value string
	q     float64
}

// parseAcceptEncoding parses the header as promhttp's copy of gddo's
// header.ParseAccept does: a malformed element ends its header line.
func parseAcceptEncoding(lines []string) []acceptSpec {
	var specs []acceptSpec
	for _, s := range lines {
		for {
			var spec acceptSpec
			spec.value, s = token(s)
			if spec.value == "" {
				break
			}
			spec.q = 1
			s = strings.TrimLeft(s, " \t\r\n")
			if strings.HasPrefix(s, ";") {
				s = strings.TrimLeft(s[1:], " \t\r\n")
				if !strings.HasPrefix(s, "q=") {
					break
				}
				spec.q, s = quality(s[2:])
				if spec.q < 0 {
					break
				}
			}
			specs = append(specs, spec)
			s = strings.TrimLeft(s, " \t\r\n")
			if !strings.HasPrefix(s, ",") {
				break
			}
			s = strings.TrimLeft(s[1:], " \t\r\n")
		}
	}
	return specs
}

// token splits off an HTTP token (or a media range's slash).
func token(s string) (string, string) {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c != '/' && (c <= ' ' || c >= 127 || strings.IndexByte("\"(),/:;<=>?@[]\\{}", c) >= 0) {
			break
		}
	}
	return s[:i], s[i:]
}

// quality parses a q value: 0 or 1, then optional decimals; -1 if none.
func quality(s string) (float64, string) {
	if s == "" || s[0] != '0' && s[0] != '1' {
		return -1, ""
	}
	q := float64(s[0] - '0')
	s = s[1:]
	if !strings.HasPrefix(s, ".") {
		return q, s
	}
	s = s[1:]
	n, d, i := 0, 1, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n, d = n*10+int(s[i]-'0'), d*10
	}
	return q + float64(n)/float64(d), s[i:]
}
