package cli

import (
	"bufio"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

var _ = register(newMetricsCmd)

// newMetricsCmd prints the server's /metrics as a signed-in person (policy
// action metrics.read; every role from viewer up by default). Scrapers use
// a scrape token instead (metrics_token_sha256 in the serve config).
func newMetricsCmd(e *env) *cobra.Command {
	var grep string
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Print the server's Prometheus metrics (needs metrics.read)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := e.client()
			if err != nil {
				return err
			}
			body, err := c.Stream(e.ctx, "GET", "/metrics", nil)
			if err != nil {
				return err
			}
			defer body.Close()
			if grep == "" {
				_, err = io.Copy(e.stdout, body)
				return err
			}
			sc := bufio.NewScanner(body)
			sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
			for sc.Scan() {
				if strings.Contains(sc.Text(), grep) {
					e.printf("%s\n", sc.Text())
				}
			}
			return sc.Err()
		},
	}
	cmd.Flags().StringVar(&grep, "grep", "", "print only the lines that contain this text")
	return cmd
}
