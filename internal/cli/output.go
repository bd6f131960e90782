package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
)

// printJSON writes v as indented JSON for machines.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// output prints v as JSON under --json, otherwise calls human.
func (e *env) output(v any, human func() error) error {
	if e.json {
		return e.printJSON(v)
	}
	return human()
}

// table prints rows under a header, aligned in columns.
func (e *env) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printf prints for people.
func (e *env) printf(format string, args ...any) { fmt.Fprintf(e.stdout, format, args...) }
