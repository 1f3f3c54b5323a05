package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/lab"
)

// Cookie and methods of the origin app.
const (
	sessionCookie = "session"
	allowMethods  = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
	maxEchoBody   = 64 << 10
)

// echoedHeaders are the request headers /echo reports: what a client sent
// and what the edge added on the way.
var echoedHeaders = []string{
	"Host", "User-Agent", "Content-Type", "Pragma",
	"If-Modified-Since", "If-None-Match",
	"Via", "X-Amz-Cf-Id", "X-Forwarded-For", "X-Forwarded-Proto", "Cloudfront-Forwarded-Proto",
}

// echoReply is the JSON /echo answers.
type echoReply struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query"` // raw, in the order sent
	Params  map[string][]string `json:"params"`
	Cookies map[string]string   `json:"cookies"`
	Headers map[string]string   `json:"headers"`
	Body    string              `json:"body"`
}

// originApp is the dynamic app behind the ALB.
type originApp struct {
	mux      *http.ServeMux
	page     *lab.RevalidatingHandler
	requests atomic.Int64
}

func newOriginApp(think time.Duration) *originApp {
	body := []byte("<!doctype html>\n<html><head><title>shop</title></head><body>\n" +
		"<h1>shop.edgeprobe.demo</h1>\n" +
		"<p>A dynamic page from the origin app behind the demo ALB. Through the edge it is\n" +
		"revalidated on every request (TTL 0) and served from the edge's cache on a 304.</p>\n" +
		"</body></html>\n")
	sum := sha256.Sum256(body)
	a := &originApp{
		mux: http.NewServeMux(),
		// Last-Modified is the start; the page does not change while the
		// demo runs, so every revalidation can be a 304.
		page: lab.Revalidating(time.Now(), hex.EncodeToString(sum[:8]), think, body),
	}
	page := pageHandler(a.page)
	a.mux.Handle("/{$}", page)
	a.mux.Handle("/health", page)
	a.mux.HandleFunc("/echo", echo)
	return a
}

func (a *originApp) counts() OriginCounts {
	return OriginCounts{
		Requests:    int(a.requests.Load()),
		Full:        a.page.Full(),
		NotModified: a.page.NotModified(),
	}
}

// ServeHTTP hands out a session cookie to visitors without one, on every
// answer (304s included: the check is cheap), as a Rails or PHP app does.
func (a *originApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	if _, err := r.Cookie(sessionCookie); err != nil {
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: randomHex(16), Path: "/",
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		})
	}
	a.mux.ServeHTTP(w, r)
}

// pageHandler answers OPTIONS itself (a preflight needs no page) and leaves
// every other method to the page, which serves them all.
func pageHandler(page http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", allowMethods)
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		page.ServeHTTP(w, r)
	})
}

// echo reports the request as the origin saw it, never cached, so a test can
// tell what the edge forwarded.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("read body: %v", err), http.StatusRequestEntityTooLarge)
		return
	}
	rep := echoReply{
		Method:  r.Method,
		Path:    r.URL.Path,
		Query:   r.URL.RawQuery,
		Params:  r.URL.Query(),
		Cookies: map[string]string{},
		Headers: map[string]string{},
		Body:    string(body),
	}
	for _, c := range r.Cookies() {
		rep.Cookies[c.Name] = c.Value
	}
	for _, h := range echoedHeaders {
		if v := r.Header.Get(h); v != "" {
			rep.Headers[h] = v
		}
	}
	rep.Headers["Host"] = r.Host // net/http moves Host out of the header map
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // show "a=1&b=2" as sent, not as \u0026
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = w.Write(out.Bytes())
}
