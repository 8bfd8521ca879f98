package layer2

import (
	"slices"
	"testing"
)

func TestNewMembers(t *testing.T) {
	tests := []struct {
		name        string
		before, now map[string]bool
		want        []string
	}{
		{name: "first sync", now: map[string]bool{"a": true, "b": true}},
		{name: "unchanged", before: map[string]bool{"a": true, "b": true}, now: map[string]bool{"a": true, "b": true}},
		{name: "one left", before: map[string]bool{"a": true, "b": true}, now: map[string]bool{"a": true}},
		{name: "a partition healed", before: map[string]bool{"a": true}, now: map[string]bool{"c": true, "a": true, "b": true}, want: []string{"b", "c"}},
		{name: "false entries are not members", before: map[string]bool{"a": true}, now: map[string]bool{"a": true, "b": false}},
		{name: "back after being false", before: map[string]bool{"a": true, "b": false}, now: map[string]bool{"a": true, "b": true}, want: []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newMembers(tt.before, tt.now); !slices.Equal(got, tt.want) {
				t.Errorf("newMembers(%v, %v) = %v, want %v", tt.before, tt.now, got, tt.want)
			}
		})
	}
}
