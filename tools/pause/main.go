// pause is the sandbox ("infra") container of VibeTalk's local Kubernetes node: the process that holds a
// pod's namespaces open while its containers come and go. It waits for SIGTERM or SIGINT and exits 0,
// and, running as PID 1 of the pod's PID namespace when that is shared, reaps every orphaned child that
// is handed to it so that no zombies pile up. Built static (CGO_ENABLED=0) for a FROM scratch image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return // no child left (ECHILD) or none has exited yet
		}
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("vibetalk pause 3.10")
		return
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	reap() // children that exited before the handler was installed
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: %v, exiting\n", sig)
		os.Exit(0)
	}
}
