// Package testkit holds processes and helpers for tests: real servers
// (Prometheus, the Pushgateway, anything StartProc runs) started and
// stopped by PID, the AWS emulator (moto), Prometheus queries and exposition parsing, the peers
// (curl, the blackbox exporter) the accuracy benchmarks compare against,
// free ports and test loggers.
//
// It imports testing, so product code must not import it; the servers with
// injected delays that the demo shares with the tests live in internal/lab,
// which does not.
package testkit
