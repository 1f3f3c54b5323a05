//go:build !linux

package probe

func newAlarm() alarm { return noAlarm{} }
