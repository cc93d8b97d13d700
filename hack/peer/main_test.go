package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fitgate/fitgate/test/synth"
)

// TestSmallClusterAgrees runs the whole comparison on a small cluster: every
// case is measured on both engines, the engines agree, and the mixed case
// really is mixed, so agreement there means something.
func TestSmallClusterAgrees(t *testing.T) {
	cfg := config{scales: []scale{{60, 1500}}, pods: 20, warmup: 1, seed: 1, parallelism: 16}
	rows, err := run(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	for _, r := range rows {
		if len(r.fitgate) != cfg.pods || len(r.framework) != cfg.pods {
			t.Errorf("%s: measured %d/%d pods, want %d", r.name, len(r.fitgate), len(r.framework), cfg.pods)
		}
		for _, d := range r.disagree {
			t.Errorf("disagreement: %s", d)
		}
	}
	mixed := rows[4]
	if mixed.fits == 0 || mixed.fits == cfg.pods {
		t.Errorf("%s: fitgate fits %d/%d pods; the case should mix fits and misfits", mixed.name, mixed.fits, cfg.pods)
	}
}

// TestExplain checks the diagnosis printed for a disagreement names the
// filter that rejected the nodes.
func TestExplain(t *testing.T) {
	c := synth.Generate(synth.Config{Seed: 1, Nodes: 20, Pods: 300})
	cases, err := buildCases(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPeer(c.Objects(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	got := p.explain(context.Background(), cases[1].pods[0]) // 64 cpu
	if !strings.HasPrefix(got, "0/20 nodes feasible") || !strings.Contains(got, "NodeResourcesFit: Insufficient cpu") {
		t.Errorf("explain = %q", got)
	}
}

func TestP99(t *testing.T) {
	d := make([]time.Duration, 300)
	for i := range d {
		d[i] = time.Duration(300 - i)
	}
	if got := p99(d); got != 297 {
		t.Errorf("p99 of 1..300 = %d, want 297", got)
	}
	if got := p99([]time.Duration{5}); got != 5 {
		t.Errorf("p99 of one = %d", got)
	}
}
