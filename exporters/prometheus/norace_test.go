//go:build !race

package promexp

const raceEnabled = false
