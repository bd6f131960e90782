package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/identity"
)

// adminGauges expose, at each scrape, how many active admins exist and
// whether separation of duties rests on one of them, so that an alert can
// ask for a second admin. A failed count reports -1 admins and "single".
func adminGauges(id *identity.Service, log *slog.Logger) []prometheus.Collector {
	count := func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := id.ActiveAdmins(ctx)
		if err != nil {
			log.WarnContext(ctx, "count active admins for /metrics", slog.String("error", err.Error()))
			return -1
		}
		return float64(n)
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "interlock_active_admins",
			Help: "Active persons holding the admin role."}, count),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "interlock_separation_of_duties_single_admin",
			Help: "1 while a single active admin holds every admin power (separation of duties rests on one person), else 0."},
			func() float64 {
				if n := count(); n == 1 || n < 0 {
					return 1
				}
				return 0
			}),
	}
}
