package scenarios

import (
	"testing"

	"github.com/fitgate/fitgate/feasibility"
)

// TestEngineAgreesWithCorpus runs the engine on every scenario. The
// expectations were checked against the real scheduler by the e2e replay,
// so a failure here means the engine drifted from the truth.
func TestEngineAgreesWithCorpus(t *testing.T) {
	all, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("the corpus is empty")
	}
	for _, sc := range all {
		t.Run(sc.Name, func(t *testing.T) {
			s, w, err := sc.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			got := feasibility.Check(s, w, nil)
			if diff := Compare(sc, got); diff != "" {
				t.Errorf("%s: %s\nsummary: %s\nhint: %s\nreasons: %+v", sc.File, diff, got.Summary, got.Hint, got.Reasons)
			}
		})
	}
}
