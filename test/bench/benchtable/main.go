// Command benchtable turns `go test -bench` output into a markdown table:
// one row per benchmark, with mean time, p99 (the engine benchmarks report
// it as p99-ns), bytes and allocations per operation. Lines that are not
// benchmark results are passed through to stderr, so failures stay visible.
//
//	go test ./feasibility/ -run '^$' -bench . -benchmem | go run ./test/bench/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

type row struct {
	name    string
	metrics map[string]float64
}

func run(in io.Reader, out, log io.Writer) error {
	var rows []row
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		r, ok := parse(line)
		if !ok {
			fmt.Fprintln(log, line)
			if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") {
				failed = true
			}
			continue
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	fmt.Fprintln(out, "| benchmark | mean | p99 | B/op | allocs/op |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|")
	for _, r := range rows {
		p99 := "—"
		if v, ok := r.metrics["p99-ns"]; ok {
			p99 = dur(v)
		}
		b, allocs := "—", "—"
		if v, ok := r.metrics["B/op"]; ok {
			b = strconv.FormatFloat(v, 'f', 0, 64)
		}
		if v, ok := r.metrics["allocs/op"]; ok {
			allocs = strconv.FormatFloat(v, 'f', 0, 64)
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", r.name, dur(r.metrics["ns/op"]), p99, b, allocs)
	}
	if failed {
		return fmt.Errorf("the benchmarks failed")
	}
	return nil
}

// parse reads "BenchmarkX/sub-2  N  V unit  V unit ...".
func parse(line string) (row, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return row{}, false
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return row{}, false
	}
	name := strings.TrimPrefix(f[0], "Benchmark")
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i] // the GOMAXPROCS suffix
		}
	}
	r := row{name: name, metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return row{}, false
		}
		r.metrics[f[i+1]] = v
	}
	if _, ok := r.metrics["ns/op"]; !ok {
		return row{}, false
	}
	return r, true
}

func dur(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%.0f ns", ns)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}
