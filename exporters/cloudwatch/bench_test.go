package cloudwatch

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

// benchSamples is one flush interval of an agent: jobs (targets ×
// cdn/origin) probed perJob times each, 80% successful.
func benchSamples(start time.Time, jobs, perJob int) []*probe.Sample {
	rng := rand.New(rand.NewPCG(3, 5))
	var out []*probe.Sample
	for j := range jobs {
		target, role := fmt.Sprintf("site-%03d", j/2), []string{"cdn", "origin"}[j%2]
		for range perJob {
			if rng.IntN(5) == 0 {
				out = append(out, failSample(target, role, start))
				continue
			}
			out = append(out, okSample(target, role, start, msec(40+200*rng.Float64())))
		}
	}
	return out
}

// benchShapes are 1,000 samples in one flush interval, from many jobs
// probed twice (30s probes, 60s flush) or fewer jobs probed often.
var benchShapes = []struct {
	name         string
	jobs, perJob int
}{{"500jobs_x2", 500, 2}, {"100jobs_x10", 100, 10}}

// BenchmarkPack aggregates 1,000 samples, seals them into datums, packs
// them and builds the PutMetricData inputs: datums/s packed, calls and
// datums per 1,000 samples.
func BenchmarkPack(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			dummyAWS(b)
			e := newTestEnv()
			o := e.options(b)
			o.Logger = slog.New(slog.DiscardHandler)
			s := newSink(b, e, probe.CloudWatchConfig{Endpoint: "http://127.0.0.1:1"}, o)
			start := time.Now().Truncate(time.Minute)
			samples := benchSamples(start, shape.jobs, shape.perJob)
			b.ReportAllocs()
			datums, calls := 0, 0
			for b.Loop() {
				for _, smp := range samples {
					s.Write(context.Background(), smp)
				}
				ds := toDatums(s.seal(start.Add(time.Hour), true))
				for _, r := range pack(ds, s.overhead, MaxDatumsPerRequest, MaxRequestBytes) {
					_ = r.input(s.namespace, false)
					calls++
				}
				datums += len(ds)
			}
			b.ReportMetric(float64(datums)/b.Elapsed().Seconds(), "datums/s")
			b.ReportMetric(float64(calls)/float64(b.N), "calls/1000samples")
			b.ReportMetric(float64(datums)/float64(b.N), "datums/1000samples")
		})
	}
}

// BenchmarkSendToMoto writes 1,000 samples and flushes them to moto: datums
// per second packed and sent (gzip, AWS JSON 1.0, the emulator's own time
// included) and API calls per 1,000 samples.
func BenchmarkSendToMoto(b *testing.B) {
	m := testkit.StartMoto(b)
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			e := newTestEnv()
			o := e.options(b)
			o.Logger = slog.New(slog.DiscardHandler)
			s := newSink(b, e, probe.CloudWatchConfig{Namespace: "EdgeProbeBench", Endpoint: m.URL()}, o)
			start := time.Now().Truncate(time.Minute)
			samples := benchSamples(start, shape.jobs, shape.perJob)
			datums := 0
			for b.Loop() {
				b.StopTimer()
				resetMoto(b, m) // moto keeps every point in memory and slows down as it grows
				b.StartTimer()
				for _, smp := range samples {
					s.Write(context.Background(), smp)
				}
				datums += len(toDatumsPeek(s))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := s.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
			calls := e.value("edgeprobe_cloudwatch_api_calls_total", "operation", "PutMetricData", "result", "success")
			b.ReportMetric(float64(datums)/b.Elapsed().Seconds(), "datums/s")
			b.ReportMetric(calls/float64(b.N), "calls/1000samples")
		})
	}
}

// toDatumsPeek counts the datums the aggregates will seal into, without
// sealing them.
func toDatumsPeek(s *Sink) []struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, iv := range s.acc {
		for _, se := range iv {
			n += (len(se.bins) + MaxValuesPerDatum - 1) / MaxValuesPerDatum
		}
	}
	return make([]struct{}, n)
}
