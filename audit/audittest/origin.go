// Package audittest holds what the audit's tests (and the CLI's) run the
// audit against: a dynamic-app origin, nginx as a real caching edge in front
// of it, and the CloudFront policy API the emulator lacks. It is for tests
// only.
package audittest

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Origin is a dynamic web app as the article describes its backend: pages
// rendered with some think time, carrying Last-Modified and ETag, and a
// cheap 304 when the edge revalidates. Paths:
//
//	/echo   the request as JSON (method, path, raw query, cookies), never cached
//	/safe   accepts any method (200 "ok METHOD", OPTIONS 204), never cached
//	other   the dynamic page: GET/HEAD with validators, OPTIONS 204, other methods 405
type Origin struct {
	// NoValidators leaves Last-Modified and ETag out of pages.
	NoValidators bool
	// NoNotModified ignores conditional requests (always a full 200).
	NoNotModified bool
	// Think is how long a full page takes to render (default 80ms); a 304
	// takes none of it.
	Think time.Duration

	lastModified time.Time
	full, notMod atomic.Int64
}

// NewOrigin returns an origin whose pages last changed an hour ago.
func NewOrigin() *Origin {
	return &Origin{lastModified: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
}

// Full counts full page answers (200).
func (o *Origin) Full() int { return int(o.full.Load()) }

// NotModified counts 304 answers.
func (o *Origin) NotModified() int { return int(o.notMod.Load()) }

const etag = `"page-v1"`

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	h := w.Header()
	switch r.URL.Path {
	case "/echo":
		h.Set("Cache-Control", "private, no-store")
		h.Set("Content-Type", "application/json")
		var cookies []string
		for _, c := range r.Cookies() {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		sort.Strings(cookies)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "cookies": cookies,
		})
		return
	case "/safe":
		h.Set("Cache-Control", "private, no-store")
		if r.Method == http.MethodOptions {
			h.Set("Allow", "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, "ok "+r.Method+"\n")
		return
	}

	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed here", http.StatusMethodNotAllowed)
		return
	}
	// An absolute expiry in the past: a caching nginx in front stores the
	// page already stale, so it revalidates every request — CloudFront's
	// TTL 0 (nginx cannot store anything with a validity of 0).
	h.Set("X-Accel-Expires", "@1")
	if !o.NoValidators {
		h.Set("Last-Modified", o.lastModified.Format(http.TimeFormat))
		h.Set("ETag", etag)
		if !o.NoNotModified && o.fresh(r) {
			o.notMod.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	think := o.Think
	if think == 0 {
		think = 80 * time.Millisecond
	}
	t := time.NewTimer(think)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
		return
	}
	o.full.Add(1)
	h.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "<!doctype html><title>dynamic</title><p>rendered for you</p>\n")
}

// fresh: If-None-Match decides alone when present (RFC 9110 13.2.2).
func (o *Origin) fresh(r *http.Request) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			if t = strings.TrimSpace(t); t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
		return false
	}
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	return err == nil && !ims.Before(o.lastModified)
}
