package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

// toValue converts a Go value from a Request's Context or a Resource's
// Attrs into a Cedar value. Anything it does not know is an error, which
// denies the request: a policy must never see a value it cannot compare.
func toValue(v any) (types.Value, error) {
	switch v := v.(type) {
	case types.Value:
		return v, nil
	case string:
		return types.String(v), nil
	case bool:
		return types.Boolean(v), nil
	case int:
		return types.Long(v), nil
	case int8:
		return types.Long(v), nil
	case int16:
		return types.Long(v), nil
	case int32:
		return types.Long(v), nil
	case int64:
		return types.Long(v), nil
	case uint8:
		return types.Long(v), nil
	case uint16:
		return types.Long(v), nil
	case uint32:
		return types.Long(v), nil
	case uint:
		if uint64(v) > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit a Cedar Long", v)
		}
		return types.Long(v), nil
	case uint64:
		if v > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit a Cedar Long", v)
		}
		return types.Long(v), nil
	case float32:
		return floatValue(float64(v))
	case float64:
		return floatValue(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return types.Long(i), nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", v, err)
		}
		return floatValue(f)
	case time.Time:
		return types.Long(v.Unix()), nil
	case []string:
		vals := make([]types.Value, len(v))
		for i, s := range v {
			vals[i] = types.String(s)
		}
		return types.NewSet(vals...), nil
	case []any:
		vals := make([]types.Value, len(v))
		for i, e := range v {
			ev, err := toValue(e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			vals[i] = ev
		}
		return types.NewSet(vals...), nil
	case map[string]string:
		m := make(types.RecordMap, len(v))
		for k, s := range v {
			m[types.String(k)] = types.String(s)
		}
		return types.NewRecord(m), nil
	case map[string]any:
		return toRecord(v)
	case nil:
		return nil, fmt.Errorf("null has no Cedar value; leave the key out instead")
	default:
		return nil, fmt.Errorf("a %T has no Cedar value", v)
	}
}

// floatValue keeps whole numbers (as JSON decodes them) as Long and turns
// the rest into Cedar decimals.
func floatValue(f float64) (types.Value, error) {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return types.Long(int64(f)), nil
	}
	d, err := types.NewDecimalFromFloat(f)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", f, err)
	}
	return d, nil
}

func toRecord(m map[string]any) (types.Record, error) {
	if len(m) == 0 {
		return types.Record{}, nil // an empty record, without the map NewRecord would copy
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error messages
	rm := make(types.RecordMap, len(m))
	for _, k := range keys {
		v, err := toValue(m[k])
		if err != nil {
			return types.Record{}, fmt.Errorf("%s: %w", k, err)
		}
		rm[types.String(k)] = v
	}
	return types.NewRecord(rm), nil
}
