package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/herald-lb/herald/internal/manifest"
)

const validateUsage = `usage: herald validate [--namespace NS] FILE...

Checks metallb.io manifests (and Herald's own herald-lb.io kinds, such as
CloudAdvertisement) the way the controller and its webhook would,
without a cluster. All files are checked together as one configuration.
FILE may be a directory (its *.yaml, *.yml and *.json files) or - for stdin.

Objects without a namespace are taken to be in NS; objects in another
namespace are refused. Namespace, Secret and Node objects in the files are
used for namespaceSelectors, BGPPeer passwordSecrets and nodeSelectors;
other kinds outside metallb.io and herald-lb.io are ignored.

Exit status: 0 valid, 1 invalid, 2 usage error or unreadable file.

flags:
`

func validateCommand() command {
	return command{
		summary: "check metallb.io and herald-lb.io manifests offline, as the controller would",
		run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			// main turns every error into exit status 1; validate needs 2 for
			// usage errors, so it exits itself.
			if code := runValidate(args, os.Stdin, stdout, stderr); code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
}

// runValidate runs `herald validate` and returns the exit status.
func runValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, validateUsage)
		fs.PrintDefaults()
	}
	var ns string
	fs.StringVar(&ns, "namespace", manifest.DefaultNamespace, "the namespace Herald runs in")
	fs.StringVar(&ns, "n", manifest.DefaultNamespace, "short for --namespace")

	files, err := parseInterspersed(fs, args)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		return 2 // flag has printed the error and the usage
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "herald validate: no files given")
		fs.Usage()
		return 2
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		fmt.Fprintf(stderr, "herald validate: --namespace %q is not a namespace name: %s\n", ns, strings.Join(msgs, "; "))
		return 2
	}
	read := false
	sources, err := manifest.ReadSources(files, func() ([]byte, error) {
		if read {
			return nil, fmt.Errorf("- given more than once")
		}
		read = true
		return io.ReadAll(stdin)
	})
	if err != nil {
		fmt.Fprintf(stderr, "herald validate: %v\n", err)
		return 2
	}
	report := manifest.Validate(sources, ns)
	if err := report.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "herald validate: %v\n", err)
		return 2
	}
	if !report.Valid() {
		noun := "problems"
		if len(report.Problems) == 1 {
			noun = "problem"
		}
		fmt.Fprintf(stderr, "herald validate: %d %s\n", len(report.Problems), noun)
		return 1
	}
	return 0
}

// parseInterspersed parses flags that may come before, between or after
// the file names, as kubectl users expect; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(files, rest...), nil
		}
		if len(rest) == 0 {
			return files, nil
		}
		files = append(files, rest[0])
		args = rest[1:]
	}
}
