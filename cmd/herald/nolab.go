//go:build !lab

package main

// labCommands is empty in the binary that ships: see lab.go.
func labCommands() map[string]command { return nil }
