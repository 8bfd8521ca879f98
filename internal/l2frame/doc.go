// Package l2frame holds what the ARP and NDP responders share: Ethernet
// framing, the raw-socket filter prologue, and the table of owned addresses
// that paces gratuitous announcements and rate-limits conflict reports.
//
// It knows nothing of Kubernetes and nothing of ARP or NDP payloads.
package l2frame
