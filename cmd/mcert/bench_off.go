//go:build nobench

package main

// A build with -tags nobench leaves the load tool out (internal/bench and its plotting
// library, 8 MB of the binary); its commands say so rather than being unknown.

import (
	"context"
	"errors"
	"flag"
	"io"
)

func init() {
	for _, name := range []string{"bench seed", "bench run"} {
		commands[name] = command{"not in this build (built with -tags nobench)", runBenchLeftOut}
	}
}

func runBenchLeftOut(context.Context, *flag.FlagSet, []string, io.Writer) error {
	return errors.New("this mcert was built with -tags nobench, without the load tool; build it without the tag to run it")
}
