package cloudwatch

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/probe"
)

// fakeCloudWatch answers PutMetricData like CloudWatch's AWS JSON 1.0
// endpoint: 200 {} or the error answer(n) gives for the n-th call.
type fakeCloudWatch struct {
	srv      *httptest.Server
	calls    atomic.Int32
	inFlight atomic.Int32
	maxIn    atomic.Int32
	delay    time.Duration
	answer   func(n int) (status int, code string)
}

func newFake(t testing.TB, answer func(n int) (int, string)) *fakeCloudWatch {
	dummyAWS(t)
	f := &fakeCloudWatch{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n := int(f.calls.Add(1)) - 1
		in := f.inFlight.Add(1)
		defer f.inFlight.Add(-1)
		for {
			m := f.maxIn.Load()
			if in <= m || f.maxIn.CompareAndSwap(m, in) {
				break
			}
		}
		if f.delay > 0 {
			time.Sleep(f.delay)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		status, code := http.StatusOK, ""
		if f.answer != nil {
			status, code = f.answer(n)
		}
		if status == http.StatusOK {
			_, _ = io.WriteString(w, "{}")
			return
		}
		w.Header().Set("X-Amzn-Query-Error", code+";Sender")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.cloudwatch#%s","message":"%s from the fake"}`, code, code)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestPackBytes: with datums of 150 values the 1 MB limit binds before the
// 1,000-datum one; every body is within it, gzipped when the SDK compresses
// (≥ 10 KiB), and the packer's size estimate is never below the real body.
func TestPackBytes(t *testing.T) {
	f := newFake(t, nil)
	e := newTestEnv()
	o := e.options(t)
	o.Concurrency = 1 // requests arrive in packing order
	s := newSink(t, e, probe.CloudWatchConfig{Namespace: "EdgeProbe", Endpoint: f.srv.URL}, o)
	// The datums Write makes of 150 successful probes per target whose
	// ttfb, total and first byte fall in 150 different bins (Success: one
	// value), built directly: quicker than 90,000 writes.
	now := time.Now()
	var ds []*datum
	for i := range 600 {
		for _, m := range []metricID{mSuccess, mTTFB, mTotal, mFirstByte} {
			se := &series{info: newSeriesInfo(seriesKey{m, fmt.Sprintf("target-%03d", i), "cdn", "test-loc", ""}, false), bins: map[int32]float64{}}
			for k := range MaxValuesPerDatum {
				if se.info.ratio {
					se.add(1)
				} else {
					se.add(1000 * math.Pow(1.0101, float64(k)))
				}
			}
			ds = append(ds, se.datums(now.Truncate(s.interval), MaxValuesPerDatum)...)
		}
	}
	reqs := pack(ds, s.overhead, MaxDatumsPerRequest, MaxRequestBytes)
	_ = s.sem.Acquire(context.Background(), 1)
	s.enqueue(ds, now)
	err := s.send(context.Background())
	s.sem.Release(1)
	if err != nil {
		t.Fatal(err)
	}
	recs := e.rec.records()
	if len(recs) != len(reqs) {
		t.Fatalf("%d requests sent, %d packed", len(recs), len(reqs))
	}
	byCount := (len(ds) + MaxDatumsPerRequest - 1) / MaxDatumsPerRequest
	if len(recs) <= byCount {
		t.Errorf("%d datums in %d requests: the byte limit did not bind", len(ds), len(recs))
	}
	total := 0
	for i, rec := range recs {
		total += rec.datums
		if rec.datums > MaxDatumsPerRequest || rec.jsonBytes > MaxRequestBytes || rec.maxValues > MaxValuesPerDatum {
			t.Errorf("request %d over the limits: %+v", i, rec)
		}
		if rec.jsonBytes > reqs[i].size || reqs[i].size-rec.jsonBytes > rec.datums*64 {
			t.Errorf("request %d: %d JSON bytes, estimated %d", i, rec.jsonBytes, reqs[i].size)
		}
		if !rec.gzipped {
			t.Errorf("request %d (%d bytes) not gzipped", i, rec.jsonBytes)
		}
		t.Logf("request %d: %d datums, %d JSON bytes (estimated %d), %d gzipped", i, rec.datums, rec.jsonBytes, reqs[i].size, rec.wireBytes)
	}
	if total != len(ds) || len(ds) != 600*4 {
		t.Errorf("%d datums sent of %d (want 2400)", total, len(ds))
	}
}

// TestConcurrencyBound: calls in flight never exceed Options.Concurrency.
func TestConcurrencyBound(t *testing.T) {
	f := newFake(t, nil)
	f.delay = 50 * time.Millisecond
	e := newTestEnv()
	o := e.options(t)
	o.Concurrency = 3
	s := newSink(t, e, probe.CloudWatchConfig{Endpoint: f.srv.URL}, o)
	now := time.Now()
	for i := range 10_000 { // 10,000 series: 10 requests
		s.Write(context.Background(), failSample(fmt.Sprintf("t%05d", i), "cdn", now))
	}
	flush(t, s)
	if n := f.calls.Load(); n != 10 {
		t.Errorf("%d calls, want 10", n)
	}
	if m := f.maxIn.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d calls in flight, want 3 (bound) and more than 1", m)
	}
}

// TestErrorClasses: throttling and 5xx keep the datums for a retry (with
// their timestamps); a 4xx about the request drops them, counted.
func TestErrorClasses(t *testing.T) {
	for _, c := range []struct {
		status   int
		code     string
		keep     bool
		apiCalls string // result label
	}{
		{400, "Throttling", true, resultThrottled},
		{500, "InternalServiceError", true, resultError},
		{503, "ServiceUnavailable", true, resultError},
		{403, "AccessDenied", true, resultError},
		{400, "ExpiredToken", true, resultError},
		{400, "InvalidParameterValue", false, resultError},
		{400, "InvalidParameterCombination", false, resultError},
	} {
		t.Run(fmt.Sprint(c.status, c.code), func(t *testing.T) {
			var mu sync.Mutex
			failing := true
			f := newFake(t, func(int) (int, string) {
				mu.Lock()
				defer mu.Unlock()
				if failing {
					return c.status, c.code
				}
				return http.StatusOK, ""
			})
			e := newTestEnv()
			o := e.options(t)
			o.MaxAttempts = 1
			s := newSink(t, e, probe.CloudWatchConfig{Endpoint: f.srv.URL}, o)
			old := time.Now().Add(-10 * time.Minute)
			s.Write(context.Background(), okSample("shop", "cdn", old, msec(50))) // 9 datums
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			err := s.Flush(ctx)
			cancel()
			if (err != nil) != c.keep {
				t.Errorf("flush: %v", err)
			}
			if got := e.value("edgeprobe_cloudwatch_api_calls_total", "operation", "PutMetricData", "result", c.apiCalls); got < 1 {
				t.Errorf("api_calls_total{result=%s} = %v", c.apiCalls, got)
			}
			if c.keep {
				if len(s.queue) != 9 || e.dropped() != 0 {
					t.Fatalf("queue %d datums, dropped %v; want 9 kept", len(s.queue), e.dropped())
				}
				mu.Lock()
				failing = false
				mu.Unlock()
				flush(t, s)
				if len(s.queue) != 0 || e.dropped() != 0 {
					t.Errorf("after recovery: queue %d, dropped %v", len(s.queue), e.dropped())
				}
				recs := e.rec.records()
				want := float64(old.Truncate(s.interval).UnixMilli()) / 1000
				for _, ts := range recs[len(recs)-1].timestamps {
					if ts != want {
						t.Errorf("a retried datum has timestamp %v, want its interval's start %v", ts, want)
					}
				}
			} else if len(s.queue) != 0 || e.dropped() != 9 {
				t.Errorf("queue %d datums, dropped %v; want 9 dropped", len(s.queue), e.dropped())
			}
		})
	}
}

// TestHighResolution: high_resolution sends StorageResolution 1 and
// timestamps on the (sub-minute) interval's start; without it the field is
// absent (CloudWatch's default, 60).
func TestHighResolution(t *testing.T) {
	f := newFake(t, nil)
	for _, hr := range []bool{true, false} {
		e := newTestEnv()
		o := e.options(t)
		o.FlushInterval = 10 * time.Second
		s := newSink(t, e, probe.CloudWatchConfig{Endpoint: f.srv.URL, HighResolution: hr}, o)
		at := time.Now().Add(-time.Minute).Truncate(time.Minute).Add(37 * time.Second)
		s.Write(context.Background(), okSample("shop", "cdn", at, msec(50)))
		flush(t, s)
		recs := e.rec.records()
		if len(recs) != 1 || len(recs[0].resolutions) != 9 {
			t.Fatalf("high_resolution %v: %+v", hr, recs)
		}
		want := 0
		if hr {
			want = 1
		}
		for i, r := range recs[0].resolutions {
			if r != want || recs[0].timestamps[i] != float64(at.Truncate(10*time.Second).Unix()) {
				t.Errorf("high_resolution %v: datum %d has StorageResolution %d, timestamp %v", hr, i, r, recs[0].timestamps[i])
			}
		}
	}
}
