//go:build race

package main

// raceEnabled reports whether the tests run under the race detector, whose
// shadow memory and slowdown would be measured as NoChat's.
const raceEnabled = true
