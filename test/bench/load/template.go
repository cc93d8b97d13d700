package main

import (
	"bytes"
	"errors"
	"fmt"
)

// bodyTemplate is a request body with slots, rendered by appending bytes,
// so that the load generator spends as little of the shared CPU as
// possible on making requests: no JSON encoding per request.
type bodyTemplate struct {
	parts [][]byte // len(slots)+1 literal pieces around the slots
	slots []int    // index into the values passed to render
}

// newBodyTemplate splits body at every occurrence of the placeholders;
// placeholder i is filled with values[i] by render. Each placeholder must
// occur at least once and none may contain another.
func newBodyTemplate(body []byte, placeholders ...string) (*bodyTemplate, error) {
	if len(placeholders) == 0 {
		return nil, errors.New("no placeholders")
	}
	for i, p := range placeholders {
		if p == "" {
			return nil, errors.New("empty placeholder")
		}
		for j, q := range placeholders {
			if i != j && bytes.Contains([]byte(q), []byte(p)) {
				return nil, fmt.Errorf("placeholder %q is part of %q", p, q)
			}
		}
		if !bytes.Contains(body, []byte(p)) {
			return nil, fmt.Errorf("placeholder %q does not occur in the body", p)
		}
	}
	t := &bodyTemplate{}
	rest := body
	for {
		at, which := -1, -1
		for i, p := range placeholders {
			if k := bytes.Index(rest, []byte(p)); k >= 0 && (at < 0 || k < at) {
				at, which = k, i
			}
		}
		if at < 0 {
			t.parts = append(t.parts, bytes.Clone(rest))
			return t, nil
		}
		t.parts = append(t.parts, bytes.Clone(rest[:at]))
		t.slots = append(t.slots, which)
		rest = rest[at+len(placeholders[which]):]
	}
}

// render appends the body with values in the slots to buf[:0].
func (t *bodyTemplate) render(buf []byte, values ...string) []byte {
	buf = buf[:0]
	for i, s := range t.slots {
		buf = append(buf, t.parts[i]...)
		if s < len(values) {
			buf = append(buf, values[s]...)
		}
	}
	return append(buf, t.parts[len(t.parts)-1]...)
}
