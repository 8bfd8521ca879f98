package main

import (
	"fmt"

	"github.com/herald-lb/herald/bench/procstat"
)

// memory is a process's resident set now (VmRSS) and at its peak (VmHWM).
type memory struct{ rss, hwm uint64 }

type nodeMemory struct {
	node string
	mem  memory
}

func readMemory(pid int) (memory, error) {
	v, err := procstat.StatusBytes(pid, "VmRSS", "VmHWM")
	if err != nil {
		return memory{}, err
	}
	return memory{rss: v[0], hwm: v[1]}, nil
}

// speakerMemory reads every speaker's memory.
func (b *bench) speakerMemory() ([]nodeMemory, error) {
	var out []nodeMemory
	for _, n := range b.lab.Nodes() {
		pid, err := procstat.SpeakerPID(b.herald, b.lab.Kubeconfig(), n.Name)
		if err != nil {
			return nil, err
		}
		m, err := readMemory(pid)
		if err != nil {
			return nil, fmt.Errorf("speaker of %s: %w", n.Name, err)
		}
		out = append(out, nodeMemory{node: n.Name, mem: m})
	}
	return out, nil
}
