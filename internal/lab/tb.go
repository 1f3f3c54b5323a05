package lab

// TB is the part of testing.TB that NetNS, DelayNet, Relay and RequireRoot
// use; a *testing.T or *testing.B satisfies it. lab does not import testing
// because the demo, and so the probe binary, links this package; helpers
// that need the whole of testing.TB live in internal/testkit.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(f func())
}
