package ops

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoosens(t *testing.T) {
	now := time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)
	pct := func(p float64) Threshold { return Threshold{Percent: p, IsPercent: true} }
	count := func(n int) Threshold { return Threshold{Count: n} }
	xmas := Window{Start: now.Add(24 * time.Hour), End: now.Add(72 * time.Hour), Reason: "holidays"}
	past := Window{Start: now.Add(-72 * time.Hour), End: now.Add(-24 * time.Hour), Reason: "over"}
	base := Service{Name: "billing", MinHealthy: pct(50), MaxPerOperation: pct(10), Freezes: []Window{xmas, past}}
	for _, tt := range []struct {
		name string
		next func(s Service) Service
		want []string
	}{
		{"same", func(s Service) Service { return s }, nil},
		{"higher floor", func(s Service) Service { s.MinHealthy = pct(60); return s }, nil},
		{"lower cap", func(s Service) Service { s.MaxPerOperation = pct(5); return s }, nil},
		{"freeze added, ended one dropped", func(s Service) Service {
			s.Freezes = []Window{xmas, {Start: now, End: now.Add(time.Hour), Reason: "release"}}
			return s
		}, nil},
		{"lower floor", func(s Service) Service { s.MinHealthy = pct(40); return s },
			[]string{"lowers the capacity floor of billing from 50% to 40%"}},
		{"floor removed", func(s Service) Service { s.MinHealthy = Threshold{}; return s },
			[]string{"lowers the capacity floor of billing from 50% to none"}},
		{"floor from percent to count", func(s Service) Service { s.MinHealthy = count(10); return s },
			[]string{"lowers the capacity floor of billing from 50% to 10"}},
		{"higher cap", func(s Service) Service { s.MaxPerOperation = pct(20); return s },
			[]string{"raises the per-operation cap of billing from 10% to 20%"}},
		{"cap removed", func(s Service) Service { s.MaxPerOperation = Threshold{}; return s },
			[]string{"raises the per-operation cap of billing from 10% to none"}},
		{"freeze shortened", func(s Service) Service {
			s.Freezes = []Window{{Start: xmas.Start, End: xmas.End.Add(-time.Hour), Reason: "holidays"}}
			return s
		}, []string{"removes or shortens the freeze of billing from 2027-01-16T08:00:00Z to 2027-01-18T08:00:00Z (holidays)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Loosens(base, tt.next(base), now)); diff != "" {
				t.Errorf("Loosens (-want +got):\n%s", diff)
			}
		})
	}
	if got := Loosens(Service{Name: "new"}, Service{Name: "new", MinHealthy: pct(50)}, now); got != nil {
		t.Errorf("a floor where there was none loosens: %v", got)
	}
}
