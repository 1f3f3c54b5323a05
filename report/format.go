package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ms formats a duration as milliseconds with two decimals: loopback and
// nearby edges live in the sub-millisecond range.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

func fmtDuration(d time.Duration) string { return ms(d) + " ms" }

// signedMS formats a difference with an explicit sign.
func signedMS(d time.Duration) string {
	return fmt.Sprintf("%+.2f", float64(d)/float64(time.Millisecond))
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// countsString renders counts most frequent first: "hit ×3, miss ×2".
func countsString[K cmp.Ordered](m map[K]int) string {
	keys := sortedKeys(m)
	slices.SortStableFunc(keys, func(a, b K) int { return m[b] - m[a] })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%v ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
