package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	in := `goos: linux
BenchmarkCheckPodFits/nodes=500/pods=15000-2   	    1000	     14758 ns/op	     49298 p99-ns	   10416 B/op	      73 allocs/op
BenchmarkCacheUpdate/nodes=5000/pods=150000-2  	     300	      9125 ns/op	    5385 B/op	      31 allocs/op
PASS
`
	var out, log bytes.Buffer
	if err := run(strings.NewReader(in), &out, &log); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| CheckPodFits/nodes=500/pods=15000 | 14.8 µs | 49.3 µs | 10416 | 73 |",
		"| CacheUpdate/nodes=5000/pods=150000 | 9.1 µs | — | 5385 | 31 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(log.String(), "goos: linux") {
		t.Errorf("non-result lines not passed through: %q", log.String())
	}
}

func TestFailuresAndEmptyInput(t *testing.T) {
	var out, log bytes.Buffer
	if err := run(strings.NewReader("FAIL\tgithub.com/x\n"), &out, &log); err == nil {
		t.Error("no results: want an error")
	}
	in := "BenchmarkA-2 10 5 ns/op\n--- FAIL: BenchmarkB\nFAIL\n"
	if err := run(strings.NewReader(in), &out, &log); err == nil {
		t.Error("a failed benchmark: want an error")
	}
}
