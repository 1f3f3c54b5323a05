package audittest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// PolicyAPI is the CloudFront cache / origin request / response headers
// policy API (Create*Policy and Get*Policy, REST-XML as CloudFront speaks
// it) in front of the emulator, which does not implement it (moto 5.2.1
// answers 404 to every policy operation): everything else is proxied to
// the emulator unchanged. The policy documents are stored as the SDK sent
// them and returned as CloudFront returns them. Managed policy IDs are not
// known here (as they are not to the emulator), so the audit falls back to
// its built-in table for them.
type PolicyAPI struct {
	URL string // the endpoint to give the CloudFront client

	mu       sync.Mutex
	policies map[string]storedPolicy // kind/id -> document
	gets     map[string]int          // kind/id -> Get calls
}

type storedPolicy struct {
	config []byte // the <...PolicyConfig> element as sent
	etag   string
}

// policyKinds maps the API's path segment to the response's root element.
var policyKinds = map[string]string{
	"cache-policy":            "CachePolicy",
	"origin-request-policy":   "OriginRequestPolicy",
	"response-headers-policy": "ResponseHeadersPolicy",
}

// StartPolicyAPI serves the policy API and proxies the rest to the
// emulator at motoURL, until the test ends.
func StartPolicyAPI(tb testing.TB, motoURL string) *PolicyAPI {
	tb.Helper()
	target, err := url.Parse(motoURL)
	if err != nil {
		tb.Fatal(err)
	}
	p := &PolicyAPI{policies: map[string]storedPolicy{}, gets: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{DisableKeepAlives: true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/2020-05-31/")
		kind, id, _ := strings.Cut(rest, "/")
		if _, isPolicy := policyKinds[kind]; !ok || !isPolicy {
			proxy.ServeHTTP(w, r)
			return
		}
		p.serve(w, r, kind, id)
	}))
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Gets returns how many times the policy of this kind ("cache-policy",
// "origin-request-policy", "response-headers-policy") and ID was read.
func (p *PolicyAPI) Gets(kind, id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets[kind+"/"+id]
}

func (p *PolicyAPI) serve(w http.ResponseWriter, r *http.Request, kind, id string) {
	root := policyKinds[kind]
	switch {
	case r.Method == http.MethodPost && id == "":
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if i := bytes.Index(body, []byte("?>")); bytes.HasPrefix(body, []byte("<?xml")) && i > 0 {
			body = body[i+2:]
		}
		if !bytes.Contains(body, []byte("<"+root+"Config")) {
			awsError(w, http.StatusBadRequest, "MalformedInput", "expected a "+root+"Config document")
			return
		}
		newID, etag := randomID(), "E"+strings.ToUpper(randomID()[:13])
		p.mu.Lock()
		p.policies[kind+"/"+newID] = storedPolicy{config: body, etag: etag}
		p.mu.Unlock()
		w.Header().Set("ETag", etag)
		w.Header().Set("Location", "https://cloudfront.amazonaws.com/2020-05-31/"+kind+"/"+newID)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusCreated)
		writePolicy(w, root, newID, body)
	case r.Method == http.MethodGet && id != "" && !strings.Contains(id, "/"):
		p.mu.Lock()
		sp, found := p.policies[kind+"/"+id]
		p.gets[kind+"/"+id]++
		p.mu.Unlock()
		if !found {
			awsError(w, http.StatusNotFound, "NoSuch"+root, "The "+root+" "+id+" does not exist.")
			return
		}
		w.Header().Set("ETag", sp.etag)
		w.Header().Set("Content-Type", "text/xml")
		writePolicy(w, root, id, sp.config)
	default:
		awsError(w, http.StatusNotImplemented, "NotImplemented", r.Method+" "+r.URL.Path+" is not served by the test policy API")
	}
}

func writePolicy(w io.Writer, root, id string, config []byte) {
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%s xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>%s</Id><LastModifiedTime>%s</LastModifiedTime>%s</%s>`,
		root, html.EscapeString(id), time.Now().UTC().Format(time.RFC3339), config, root)
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>audittest</RequestId></ErrorResponse>`,
		code, html.EscapeString(msg))
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
