package main

import (
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	metrics "github.com/hashicorp/go-metrics"
)

// byteSink is a go-metrics sink that keeps only the memberlist counters this
// benchmark reads. memberlist reports through go-metrics' global registry,
// so the sink sees every member of the process together: the byte counts
// are totals over all members, and a member's share is the total over N.
//
// Where memberlist counts: memberlist.udp.sent and memberlist.tcp.sent are
// added in rawSendMsgPacket and rawSendMsgStream (net.go) with the length
// of the buffer handed to the socket, after compression and encryption;
// memberlist.udp.received is added by the UDP transport for each datagram
// read. IP, UDP and TCP headers (28 bytes per datagram on IPv4) and TCP's
// handshakes and ACKs are not included.
type byteSink struct {
	udpSent, udpReceived, tcpSent atomic.Uint64
	suspect, dead                 atomic.Uint64
	degraded                      atomic.Uint64 // probes stretched by Lifeguard's awareness
}

// counters is a snapshot of byteSink.
type counters struct {
	udpSent, udpReceived, tcpSent, suspect, dead, degraded uint64
}

func (s *byteSink) snapshot() counters {
	return counters{s.udpSent.Load(), s.udpReceived.Load(), s.tcpSent.Load(), s.suspect.Load(), s.dead.Load(), s.degraded.Load()}
}

func (c counters) minus(o counters) counters {
	return counters{c.udpSent - o.udpSent, c.udpReceived - o.udpReceived, c.tcpSent - o.tcpSent, c.suspect - o.suspect, c.dead - o.dead, c.degraded - o.degraded}
}

// install makes s go-metrics' global sink, the one memberlist reports to.
func (s *byteSink) install() error {
	conf := metrics.DefaultConfig("")
	conf.EnableHostname = false
	conf.EnableRuntimeMetrics = false
	_, err := metrics.NewGlobal(conf, s)
	return err
}

func (s *byteSink) IncrCounter(key []string, val float32) { s.IncrCounterWithLabels(key, val, nil) }
func (s *byteSink) IncrCounterWithLabels(key []string, val float32, _ []metrics.Label) {
	var c *atomic.Uint64
	switch strings.Join(key, ".") {
	case "memberlist.udp.sent":
		c = &s.udpSent
	case "memberlist.udp.received":
		c = &s.udpReceived
	case "memberlist.tcp.sent":
		c = &s.tcpSent
	case "memberlist.msg.suspect":
		c = &s.suspect
	case "memberlist.msg.dead":
		c = &s.dead
	case "memberlist.degraded.probe":
		c = &s.degraded
	default:
		return
	}
	c.Add(uint64(val))
}
func (*byteSink) SetGauge([]string, float32)                             {}
func (*byteSink) SetGaugeWithLabels([]string, float32, []metrics.Label)  {}
func (*byteSink) EmitKey([]string, float32)                              {}
func (*byteSink) AddSample([]string, float32)                            {}
func (*byteSink) AddSampleWithLabels([]string, float32, []metrics.Label) {}

// processCPU returns the CPU time, user and system, this process has used
// (0 if the kernel will not say, which getrusage on itself never does).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
