package agent_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine (an agent's, a lab server's,
// a process waiter's) outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
