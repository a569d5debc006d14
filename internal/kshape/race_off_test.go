//go:build !race

package kshape

const raceEnabled = false
