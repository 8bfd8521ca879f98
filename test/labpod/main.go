// Command labpod is the only program inside the lab's own container image:
// with no arguments it is the Pod sandbox's pause process (containerd's
// sandbox_image), and `labpod serve` is the e2e backend, answering every
// request with its node's and Pod's names. One static binary keeps the lab
// free of any registry.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	switch {
	case len(os.Args) < 2 || os.Args[1] == "pause":
		<-ctx.Done()
	case os.Args[1] == "serve":
		err = serve(ctx, os.Getenv("LISTEN"), os.Getenv("NODE_NAME"), os.Getenv("POD_NAME"))
	default:
		err = fmt.Errorf("unknown command %q (pause or serve)", strings.Join(os.Args[1:], " "))
	}
	if err != nil {
		log.Error("labpod", "err", err)
		os.Exit(1)
	}
}

// serve answers "<node> <pod>" on every path until ctx ends.
func serve(ctx context.Context, addr, node, pod string) error {
	if addr == "" {
		addr = ":8080"
	}
	reply := node + " " + pod + "\n"
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, reply)
		}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
