package compare

import (
	"fmt"
	"strings"
	"time"
)

// ParseSelector reads "key=value[,key=value…]" with the keys target, role
// and location ("role=origin", "target=shop,location=eu-west-1").
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	if strings.TrimSpace(s) == "" {
		return sel, fmt.Errorf("empty selector: want key=value with key target, role or location")
	}
	for part := range strings.SplitSeq(s, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || value == "" {
			return Selector{}, fmt.Errorf("selector %q: want key=value with key target, role or location", part)
		}
		var dst *string
		switch key {
		case "target":
			dst = &sel.Target
		case "role":
			dst = &sel.Role
		case "location":
			dst = &sel.Location
		default:
			return Selector{}, fmt.Errorf("selector %q: unknown key %q; want target, role or location", part, key)
		}
		if *dst != "" && *dst != value {
			return Selector{}, fmt.Errorf("selector %q: %s given twice", s, key)
		}
		*dst = value
	}
	return sel, nil
}

// timeLayouts are the accepted forms of a time; those without a zone are
// UTC, as the samples' times are.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

// ParseTime reads an RFC 3339 time, or a shorter form of it (a date, or
// a date and time without seconds); without a zone it is UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-03-01T12:00:00Z), 2026-03-01T12:00 or 2026-03-01 (UTC unless a zone is given)", s)
}

// ParseWindow reads START/END, where END may instead be a duration after
// START ("2026-03-01/2026-03-02", "2026-03-01T09:00/6h").
func ParseWindow(s string) (Window, error) {
	from, to, ok := strings.Cut(s, "/")
	if !ok {
		return Window{}, fmt.Errorf("window %q: want START/END or START/DURATION, e.g. 2026-03-01T00:00/24h", s)
	}
	start, err := ParseTime(from)
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	var end time.Time
	if d, derr := time.ParseDuration(strings.TrimPrefix(strings.TrimSpace(to), "+")); derr == nil {
		end = start.Add(d)
	} else if end, err = ParseTime(to); err != nil {
		return Window{}, fmt.Errorf("window %q: end: %w", s, err)
	}
	if !end.After(start) {
		return Window{}, fmt.Errorf("window %q: the end is not after the start", s)
	}
	return Window{From: start, To: end}, nil
}

// Around returns the windows of a rollout at t: before = [t−w, t) and
// after = [t, t+w).
func Around(t time.Time, w time.Duration) (before, after Window) {
	return Window{From: t.Add(-w), To: t}, Window{From: t, To: t.Add(w)}
}
