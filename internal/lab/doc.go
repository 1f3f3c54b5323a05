// Package lab starts real servers on loopback with known, injected delays and
// hostile behaviours. The accuracy tests, hostile-target tests, benchmarks and
// the demo measure edgeprobe against them: every delay here is applied on the
// server side (or in a user-space delay line), so a test can hold a measured
// phase against the delay it injected.
//
// Nothing here is a mock: each server binds a real socket on 127.0.0.1 (port
// 0 unless told otherwise), and each Close stops every goroutine the server
// started, so tests can run under go.uber.org/goleak.
package lab
