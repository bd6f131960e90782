package ops

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// ParseThreshold reads "50%" (a percentage of the service's hosts, 0–100)
// or "3" (a count of hosts). The empty string is the zero Threshold, which
// means "no floor" or "no cap" wherever a Threshold is optional.
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Threshold{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > 100 {
			return Threshold{}, usererr.New(usererr.Invalid, "bad_threshold",
				"%q is not a valid percentage: write a number from 0 to 100 followed by %%, like 50%%.", s)
		}
		return Threshold{Percent: v, IsPercent: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Threshold{}, usererr.New(usererr.Invalid, "bad_threshold",
			"%q is not a valid threshold: write a count of hosts like 3, or a percentage like 50%%.", s)
	}
	return Threshold{Count: n}, nil
}

// IsZero reports whether t sets nothing (no floor, no cap).
func (t Threshold) IsZero() bool { return !t.IsPercent && t.Count == 0 }

// String formats t the way ParseThreshold reads it: "50%", "3" or "".
func (t Threshold) String() string {
	switch {
	case t.IsPercent:
		return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	case t.Count == 0:
		return ""
	default:
		return strconv.Itoa(t.Count)
	}
}

// MarshalText implements encoding.TextMarshaler (JSON and YAML use it).
func (t Threshold) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Threshold) UnmarshalText(b []byte) error {
	v, err := ParseThreshold(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Floor is the number of hosts a capacity floor of t demands out of total,
// rounded up so that a floor is never weaker than written (50% of 5 is 3).
func (t Threshold) Floor(total int) int {
	if !t.IsPercent {
		return min(t.Count, total)
	}
	return int(math.Ceil(t.Percent*float64(total)/100 - 1e-9))
}

// Cap is the number of hosts a per-operation cap of t allows out of total,
// rounded down so that a cap is never looser than written (10% of 25 is 2),
// but at least 1 when total > 0 and t is non-zero, so that a small service
// can still be changed one host at a time. ok is false when t sets no cap.
func (t Threshold) Cap(total int) (n int, ok bool) {
	if t.IsZero() {
		return 0, false
	}
	if !t.IsPercent {
		return t.Count, true
	}
	n = int(math.Floor(t.Percent*float64(total)/100 + 1e-9))
	if n < 1 && total > 0 {
		n = 1
	}
	return n, true
}

// describe formats n hosts as demanded by t: "16 (80%)" or "3".
func (t Threshold) describe(n int) string {
	if t.IsPercent {
		return fmt.Sprintf("%d (%s)", n, t.String())
	}
	return strconv.Itoa(n)
}
