package scenarios

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/fitgate/fitgate/feasibility"
)

//go:embed testdata/*.yaml
var files embed.FS

// Truth names what a scenario's expectation is checked against.
type Truth string

const (
	TruthScheduler Truth = "scheduler"
	TruthAdmission Truth = "admission"
	TruthNone      Truth = "none"
)

// Scenario is one parity case.
type Scenario struct {
	File        string
	Name        string
	Description string
	Truth       Truth
	// Cluster are the objects of the cluster state, typed.
	Cluster []runtime.Object
	// Workload is the object to judge, typed.
	Workload runtime.Object
	Expect   Expect
}

// Expect is the outcome a scenario asserts.
type Expect struct {
	Verdict     feasibility.Verdict `json:"verdict"`
	ReplicasFit *int32              `json:"replicasFit,omitempty"`
	Codes       []feasibility.Code  `json:"codes,omitempty"`
	Summary     string              `json:"summary,omitempty"`
}

type rawScenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Truth       Truth  `json:"truth"`
	Cluster     []json `json:"cluster"`
	Workload    json   `json:"workload"`
	Expect      Expect `json:"expect"`
}

type json = map[string]interface{}

// DefaultNamespace is the namespace of objects that name none.
const DefaultNamespace = "default"

// Load reads every scenario in the corpus, sorted by file name.
func Load() ([]*Scenario, error) {
	names, err := fs.Glob(files, "testdata/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]*Scenario, 0, len(names))
	seen := map[string]string{}
	for _, n := range names {
		data, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		sc, err := Parse(path.Base(n), data)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[sc.Name]; dup {
			return nil, fmt.Errorf("%s: scenario name %q is also used by %s", sc.File, sc.Name, prev)
		}
		seen[sc.Name] = sc.File
		out = append(out, sc)
	}
	return out, nil
}

// Parse reads one scenario file.
func Parse(file string, data []byte) (*Scenario, error) {
	var raw rawScenario
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	sc := &Scenario{File: file, Name: raw.Name, Description: raw.Description, Truth: raw.Truth, Expect: raw.Expect}
	if sc.Name == "" {
		return nil, fmt.Errorf("%s: scenario has no name", file)
	}
	switch sc.Truth {
	case TruthScheduler, TruthAdmission, TruthNone:
	default:
		return nil, fmt.Errorf("%s: truth must be scheduler, admission or none, not %q", file, sc.Truth)
	}
	switch sc.Expect.Verdict {
	case feasibility.Fits, feasibility.Transient, feasibility.Permanent:
	default:
		return nil, fmt.Errorf("%s: expect.verdict must be fits, transient or permanent, not %q", file, sc.Expect.Verdict)
	}
	for i, o := range raw.Cluster {
		obj, err := toObject(o)
		if err != nil {
			return nil, fmt.Errorf("%s: cluster[%d]: %w", file, i, err)
		}
		sc.Cluster = append(sc.Cluster, obj)
	}
	if raw.Workload == nil {
		return nil, fmt.Errorf("%s: scenario has no workload", file)
	}
	w, err := toObject(raw.Workload)
	if err != nil {
		return nil, fmt.Errorf("%s: workload: %w", file, err)
	}
	sc.Workload = w
	return sc, nil
}

func toObject(m json) (runtime.Object, error) {
	md, _ := m["metadata"].(map[string]interface{})
	if md == nil {
		md = map[string]interface{}{}
		m["metadata"] = md
	}
	data, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	docs, err := feasibility.DecodeDocuments("scenario", bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 || docs[0].Object == nil {
		return nil, fmt.Errorf("not a single object fitgate understands")
	}
	return docs[0].Object, nil
}
