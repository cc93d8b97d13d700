package gen

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// A jsonField is a struct member as encoding/json/v2 (go-json-experiment)
// sees it when unmarshaling: its JSON name and where it sits in the Go
// struct, through embedded structs.
type jsonField struct {
	name    string
	index   []int
	typ     reflect.Type
	hasName bool
	string  bool // the `string` option: v2 refuses it on unmarshal without legacy flags
	format  bool // a `format:` option: the struct does not unmarshal at all
}

// structFields mirrors v2's makeStructFields: a breadth-first walk of the
// struct and its embedded structs (embedded without a JSON name; v1's
// `inline` option means nothing to v2), where the shallowest field of a
// name wins, a tagged one wins a tie, and names still tied are dropped. It
// returns an error for the shapes this generator does not reproduce (the
// `embed` and `case:` options, embedded pointers and non-structs, ...);
// such a struct is left to v2.
func structFields(root reflect.Type) ([]jsonField, error) {
	type entry struct {
		typ           reflect.Type
		index         []int
		visitChildren bool
	}
	queue := []entry{{root, nil, true}}
	seen := map[reflect.Type]bool{root: true}
	var all []jsonField
	for qi := 0; qi < len(queue); qi++ {
		qe := queue[qi]
		t := qe.typ
		for i := range t.NumField() {
			sf := t.Field(i)
			tag, hasTag := sf.Tag.Lookup("json")
			if tag == "-" {
				continue
			}
			if !sf.IsExported() && !sf.Anonymous {
				if hasTag {
					return nil, fmt.Errorf("%v.%s: unexported field with a json tag", t, sf.Name)
				}
				continue
			}
			f := jsonField{name: sf.Name, index: append(slices.Clip(qe.index), i), typ: sf.Type}
			embed := false
			name, opts, _ := strings.Cut(tag, ",")
			if name != "" {
				if strings.ContainsAny(name, "\\'\"`") {
					return nil, fmt.Errorf("%v.%s: quoted or escaped json name", t, sf.Name)
				}
				f.name, f.hasName = name, true
			}
			if hasTag && strings.Contains(tag, ",") {
				for opt := range strings.SplitSeq(opts, ",") {
					switch {
					case opt == "omitempty", opt == "omitzero", opt == "inline":
						// "inline" is v1's spelling; v2 ignores it.
					case opt == "string":
						f.string = true
					case strings.HasPrefix(opt, "format:"):
						f.format = true
					case opt == "embed", strings.HasPrefix(opt, "case:"), opt == "":
						return nil, fmt.Errorf("%v.%s: json tag option %q", t, sf.Name, opt)
					}
				}
			}
			if sf.Anonymous && !f.hasName {
				if sf.Type.Kind() != reflect.Struct {
					return nil, fmt.Errorf("%v.%s: embedded %v is not a struct", t, sf.Name, sf.Type)
				}
				embed = true
			}
			if embed {
				if hasMethods(sf.Type) {
					return nil, fmt.Errorf("%v.%s: embedded struct with unmarshal methods", t, sf.Name)
				}
				if f.string || f.format {
					return nil, fmt.Errorf("%v.%s: options on an embedded struct", t, sf.Name)
				}
				if qe.visitChildren {
					queue = append(queue, entry{sf.Type, f.index, !seen[sf.Type]})
				}
				seen[sf.Type] = true
				continue
			}
			if !sf.IsExported() {
				return nil, fmt.Errorf("%v.%s: unexported embedded field", t, sf.Name)
			}
			all = append(all, f)
		}
	}
	slices.SortStableFunc(all, func(x, y jsonField) int {
		return cmp.Or(strings.Compare(x.name, y.name), cmp.Compare(len(x.index), len(y.index)),
			boolCompare(!x.hasName, !y.hasName))
	})
	var out []jsonField
	for len(all) > 0 {
		n := 1
		for n < len(all) && all[n-1].name == all[n].name {
			n++
		}
		if n == 1 || len(all[0].index) != len(all[1].index) || all[0].hasName != all[1].hasName {
			out = append(out, all[0])
		}
		all = all[n:]
	}
	slices.SortFunc(out, func(x, y jsonField) int { return slices.Compare(x.index, y.index) })
	return out, nil
}

func boolCompare(x, y bool) int {
	switch {
	case !x && y:
		return -1
	case x && !y:
		return +1
	}
	return 0
}
