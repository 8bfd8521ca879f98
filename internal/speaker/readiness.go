package speaker

import (
	"errors"
	"fmt"
	"net/http"

	"golang.org/x/sys/unix"
)

// rawSocketCheck is the speaker's readiness: it fails while the process
// cannot open the AF_PACKET socket Layer 2 answers through. Without
// CAP_NET_RAW a speaker would otherwise run, join, be elected, and answer
// no ARP or NDP request, while its Pod reported Ready.
func rawSocketCheck(*http.Request) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return fmt.Errorf("cannot open a raw socket (%w): Layer 2 needs CAP_NET_RAW in the effective set; run the speaker as the chart does (root, capabilities drop ALL, add NET_RAW)", err)
		}
		return fmt.Errorf("open a raw socket: %w", err)
	}
	return unix.Close(fd)
}
