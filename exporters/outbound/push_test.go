package outbound

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestBackoffDoublesWithinJitterUpToTheCap(t *testing.T) {
	const lo, hi = time.Second, 10 * time.Second
	for failures, d := range map[int]time.Duration{1: lo, 2: 2 * lo, 3: 4 * lo, 4: 8 * lo, 5: hi, 50: hi} {
		for range 200 {
			if got := Backoff(lo, hi, failures); got < d/2 || got > d {
				t.Fatalf("after %d failures: %v, want within [%v, %v]", failures, got, d/2, d)
			}
		}
	}
}

func TestRedactURLKeepsNoSecret(t *testing.T) {
	u, err := url.Parse("https://user:s3cret@aps-workspaces.example/api/v1/remote_write?token=t0k#frag")
	if err != nil {
		t.Fatal(err)
	}
	got := RedactURL(u)
	for _, secret := range []string{"user", "s3cret", "t0k", "frag"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q keeps %q", got, secret)
		}
	}
	if want := "https://aps-workspaces.example/api/v1/remote_write?REDACTED"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if u.User == nil {
		t.Error("the URL passed in was changed")
	}
}
