package webhook

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fitgate/fitgate/feasibility"
)

// ModeLabel is the namespace label that sets the namespace's mode.
const ModeLabel = "fitgate.dev/mode"

// Mode says what fitgate does with its findings in a namespace.
type Mode string

const (
	// ModeOff judges nothing.
	ModeOff Mode = "off"
	// ModeWarn turns every finding into a warning.
	ModeWarn Mode = "warn"
	// ModeEnforce denies permanent findings and warns on transient ones.
	ModeEnforce Mode = "enforce"
	// ModeStrict denies permanent and transient findings.
	ModeStrict Mode = "strict"
)

// Modes lists the valid modes, least strict first.
var Modes = []Mode{ModeOff, ModeWarn, ModeEnforce, ModeStrict}

// ParseMode parses a mode name (case-insensitive, surrounding space ignored).
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Modes, m) {
		return m, nil
	}
	return "", fmt.Errorf("invalid mode %q: want one of off, warn, enforce, strict", s)
}

// Denies reports whether a finding of severity sev denies in mode m.
func (m Mode) Denies(sev feasibility.Severity) bool {
	switch m {
	case ModeEnforce:
		return sev == feasibility.SeverityPermanent
	case ModeStrict:
		return sev == feasibility.SeverityPermanent || sev == feasibility.SeverityTransient
	}
	return false
}

// Default modes when neither configuration nor label says otherwise.
const (
	DefaultWorkloadMode = ModeWarn
	DefaultPodMode      = ModeEnforce
)

// DefaultExemptNamespaces are exempt whatever the configuration; fitgate's
// own namespace is added by DefaultPolicy.
var DefaultExemptNamespaces = []string{"kube-system", "kube-node-lease"}

// Policy decides a namespace's mode.
type Policy struct {
	// DefaultMode applies to workloads, and to pods made by a controller,
	// in namespaces without a valid mode label.
	DefaultMode Mode
	// DefaultPodMode applies to bare Pods (no controller) in namespaces
	// without a valid mode label.
	DefaultPodMode Mode
	// ExemptNamespaces are never judged, whatever their labels say.
	ExemptNamespaces []string
}

// DefaultPolicy is the default of defaults: warn for workloads, enforce for
// bare Pods, and kube-system, kube-node-lease and ownNamespace exempt.
func DefaultPolicy(ownNamespace string) Policy {
	p := Policy{DefaultMode: DefaultWorkloadMode, DefaultPodMode: DefaultPodMode,
		ExemptNamespaces: slices.Clone(DefaultExemptNamespaces)}
	if ownNamespace != "" && !slices.Contains(p.ExemptNamespaces, ownNamespace) {
		p.ExemptNamespaces = append(p.ExemptNamespaces, ownNamespace)
	}
	return p
}

// Validate checks that both defaults are valid modes.
func (p Policy) Validate() error {
	for what, m := range map[string]Mode{"default mode": p.DefaultMode, "default pod mode": p.DefaultPodMode} {
		if !slices.Contains(Modes, m) {
			return fmt.Errorf("%s: invalid mode %q: want one of off, warn, enforce, strict", what, m)
		}
	}
	return nil
}

// IsExempt reports whether namespace is exempt.
func (p Policy) IsExempt(namespace string) bool {
	return slices.Contains(p.ExemptNamespaces, namespace)
}

// ModeSource says where a Decision's mode came from.
type ModeSource string

const (
	SourceExempt  ModeSource = "exempt"
	SourceLabel   ModeSource = "label"
	SourceDefault ModeSource = "default"
)

// Decision is the mode that applies to one object.
type Decision struct {
	Mode   Mode
	Source ModeSource
	// Warning is set when the namespace's label is not a valid mode; the
	// default applies instead.
	Warning string
}

// Resolve returns the mode for an object in namespace, whose labels are
// given (nil when unknown). barePod is true for a Pod without a controller.
func (p Policy) Resolve(namespace string, labels map[string]string, barePod bool) Decision {
	if p.IsExempt(namespace) {
		return Decision{Mode: ModeOff, Source: SourceExempt}
	}
	def := p.DefaultMode
	if barePod {
		def = p.DefaultPodMode
	}
	v, ok := labels[ModeLabel]
	if !ok {
		return Decision{Mode: def, Source: SourceDefault}
	}
	m, err := ParseMode(v)
	if err != nil {
		return Decision{Mode: def, Source: SourceDefault,
			Warning: truncate(fmt.Sprintf("namespace %q: label %s=%q is not off, warn, enforce or strict; using %s",
				namespace, ModeLabel, v, def), maxWarningLen)}
	}
	return Decision{Mode: m, Source: SourceLabel}
}
