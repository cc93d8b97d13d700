// Command fitgate judges whether Pods and workloads can be scheduled.
//
//	fitgate serve   run the validating admission webhook
//
// Each subcommand lives in its own file and registers itself from init with
// register; main only dispatches.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand: run gets the arguments after its name and
// returns the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

var commands = map[string]command{}

// register adds a subcommand; call it from an init function.
func register(name, summary string, run func(args []string) int) {
	if _, dup := commands[name]; dup {
		panic("fitgate: subcommand registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

func main() { os.Exit(dispatch(os.Args[1:], os.Stderr)) }

func dispatch(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run([]string{"-h"})
			}
		}
		usage(stderr)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "fitgate: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: fitgate <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "fitgate <command> -h" for a command's flags.`)
}
