package ops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// Runbook is a named, versioned procedure: typed parameters, how targets
// are chosen, the argv each agent runs, and the wave strategy. Runbooks are
// written in YAML (see examples/runbooks) and decoded strictly: an unknown
// key is an error, never silently ignored.
type Runbook struct {
	Name            string       `yaml:"name" json:"name"`
	Description     string       `yaml:"description" json:"description,omitempty"`
	Risk            Risk         `yaml:"risk" json:"risk"`
	RemovesCapacity bool         `yaml:"removes_capacity" json:"removes_capacity"`
	Parameters      []Param      `yaml:"parameters" json:"parameters"`
	Target          Target       `yaml:"target" json:"target"`
	Step            CommandSpec  `yaml:"step" json:"step"`
	HealthCheck     *CommandSpec `yaml:"health_check" json:"health_check,omitempty"`
	Rollback        *CommandSpec `yaml:"rollback" json:"rollback,omitempty"`
	Waves           WaveSpec     `yaml:"waves" json:"waves"`
}

// Parameter types.
const (
	ParamInt     = "int"     // whole number, optional Min/Max
	ParamString  = "string"  // optional Pattern (full match) or Enum
	ParamService = "service" // must name a service Interlock knows
	ParamSecret  = "secret"  // a "secret:PATH" reference, resolved only by the executor
)

// Param is one typed runbook parameter.
type Param struct {
	Name        string   `yaml:"name" json:"name"`
	Type        string   `yaml:"type" json:"type"`
	Description string   `yaml:"description" json:"description,omitempty"`
	Min         *int64   `yaml:"min" json:"min,omitempty"`
	Max         *int64   `yaml:"max" json:"max,omitempty"`
	Pattern     string   `yaml:"pattern" json:"pattern,omitempty"`
	Enum        []string `yaml:"enum" json:"enum,omitempty"`
	Default     *string  `yaml:"default" json:"default,omitempty"`

	re *regexp.Regexp
}

// Target says how the planner picks hosts: the healthy, in-service hosts
// of the service named by parameter Service that match Selector, sorted by
// name, at most the number named by parameter Count. It never means "all".
type Target struct {
	Service  string            `yaml:"service" json:"service"` // name of a parameter of type service
	Count    string            `yaml:"count" json:"count"`     // name of a parameter of type int
	Selector map[string]string `yaml:"selector" json:"selector,omitempty"`
}

// CommandSpec is what a step, health check or rollback runs. Without a
// shell, each argv element may contain {{param}} placeholders of
// non-secret parameters: the value is substituted into that one argument,
// which no shell parses. With shell: true, argv is script text and MUST
// hold no placeholder: the script is run byte for byte as applied and
// approved, and reads each parameter from its environment variable
// PARAM_<NAME> (write "$PARAM_NAME", quoted). Secret parameters are only
// ever passed in the environment.
type CommandSpec struct {
	Argv           []string `yaml:"argv" json:"argv"`
	Shell          bool     `yaml:"shell" json:"shell,omitempty"`
	TimeoutSeconds int      `yaml:"timeout_s" json:"timeout_s,omitempty"`
	MaxOutputBytes int      `yaml:"max_output_bytes" json:"max_output_bytes,omitempty"`
}

// ParamEnv is the environment variable that carries parameter name to
// every command: PARAM_ and the name in upper case. The prefix keeps a
// parameter from ever setting a variable the shell, the loader or a
// runtime reads (a parameter named path, ifs or ld_preload would
// otherwise become PATH, IFS or LD_PRELOAD with a requester's value).
func ParamEnv(name string) string { return "PARAM_" + strings.ToUpper(name) }

// WaveSpec is the wave strategy: a canary wave of one host, then waves of
// Size hosts ("5") or of a share of the targeted hosts ("25%").
type WaveSpec struct {
	Canary            *int      `yaml:"canary" json:"canary,omitempty"` // if set, MUST be 1
	Size              Threshold `yaml:"size" json:"size"`
	MaxConcurrency    int       `yaml:"max_concurrency" json:"max_concurrency,omitempty"`
	HaltAfterFailures int       `yaml:"halt_after_failures" json:"halt_after_failures"`
	// BakeSeconds is the wait after a wave before the next one's floors
	// are judged; at least the heartbeat staleness window (15 s) for a
	// runbook that keeps its hosts in service and has no health check.
	BakeSeconds int `yaml:"bake_s" json:"bake_s,omitempty"`
}

// RunbookVersion is one applied version of a runbook, as stored.
type RunbookVersion struct {
	Name      string
	Version   int
	Source    []byte // the YAML as applied
	Runbook   Runbook
	AppliedBy string // actor, e.g. "person:<id>"
	AppliedAt time.Time
}

// Limits on commands.
const (
	DefaultTimeoutSeconds = 300
	MaxTimeoutSeconds     = 24 * 3600
	DefaultMaxOutputBytes = 64 << 10
	MaxMaxOutputBytes     = 1 << 20
	maxRunbookBytes       = 256 << 10
)

var (
	namePattern        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	paramNamePattern   = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	placeholderPattern = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)
)

// ParseRunbook decodes and validates a runbook. Every problem is a
// usererr Invalid whose sentence names the field.
func ParseRunbook(src []byte) (Runbook, error) {
	if len(src) > maxRunbookBytes {
		return Runbook{}, usererr.New(usererr.TooLarge, "runbook_too_large", "The runbook is larger than %d KiB.", maxRunbookBytes>>10)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var rb Runbook
	if err := dec.Decode(&rb); err != nil {
		if errors.Is(err, io.EOF) {
			return Runbook{}, invalidRunbook("the runbook is empty")
		}
		return Runbook{}, invalidRunbook("the runbook is not valid YAML for a runbook: %v", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Runbook{}, invalidRunbook("the file holds more than one YAML document; apply one runbook per file")
	}
	if err := rb.validate(); err != nil {
		return Runbook{}, err
	}
	return rb, nil
}

func invalidRunbook(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return usererr.New(usererr.Invalid, "bad_runbook", "%s.", strings.TrimSuffix(msg, "."))
}

func (rb *Runbook) validate() error {
	if !namePattern.MatchString(rb.Name) {
		return invalidRunbook("name %q must be 1–63 lower-case letters, digits or dashes, starting with a letter or digit", rb.Name)
	}
	switch rb.Risk {
	case RiskLow, RiskMedium, RiskHigh:
	case "":
		return invalidRunbook("risk is required: low, medium or high")
	default:
		return invalidRunbook("risk %q must be low, medium or high", rb.Risk)
	}
	seen := map[string]bool{}
	for i := range rb.Parameters {
		p := &rb.Parameters[i]
		if !paramNamePattern.MatchString(p.Name) {
			return invalidRunbook("parameter name %q must be lower-case letters, digits or underscores", p.Name)
		}
		if seen[p.Name] {
			return invalidRunbook("parameter %s is declared twice", p.Name)
		}
		seen[p.Name] = true
		if err := p.compile(); err != nil {
			return err
		}
	}
	if p := rb.param(rb.Target.Service); p == nil || p.Type != ParamService {
		return invalidRunbook("target.service must name a parameter of type service (got %q)", rb.Target.Service)
	}
	if p := rb.param(rb.Target.Count); p == nil || p.Type != ParamInt {
		return invalidRunbook("target.count must name a parameter of type int (got %q)", rb.Target.Count)
	}
	for k, v := range rb.Target.Selector {
		if k == "" {
			return invalidRunbook("target.selector has an empty label name")
		}
		if err := rb.checkPlaceholders("target.selector."+k, v); err != nil {
			return err
		}
		for _, m := range placeholderPattern.FindAllStringSubmatch(v, -1) {
			if rb.param(m[1]).Type == ParamSecret {
				return invalidRunbook("target.selector.%s uses secret parameter {{%s}}; a secret never chooses hosts, it is only passed to commands (as $%s)", k, m[1], ParamEnv(m[1]))
			}
		}
	}
	if err := rb.checkCommand("step", &rb.Step); err != nil {
		return err
	}
	if rb.HealthCheck != nil {
		if err := rb.checkCommand("health_check", rb.HealthCheck); err != nil {
			return err
		}
	}
	if rb.Rollback != nil {
		if err := rb.checkCommand("rollback", rb.Rollback); err != nil {
			return err
		}
	}
	w := &rb.Waves
	if w.Canary != nil && *w.Canary != 1 {
		return invalidRunbook("waves.canary is always 1 host (got %d); size the later waves with waves.size", *w.Canary)
	}
	if w.Size.IsZero() {
		w.Size = Threshold{Percent: 25, IsPercent: true}
	}
	if w.MaxConcurrency < 0 || w.HaltAfterFailures < 0 || w.BakeSeconds < 0 {
		return invalidRunbook("waves.max_concurrency, waves.halt_after_failures and waves.bake_s must not be negative")
	}
	if w.BakeSeconds > MaxTimeoutSeconds {
		return invalidRunbook("waves.bake_s must be at most %d", MaxTimeoutSeconds)
	}
	// Between waves the floors count the earlier waves' hosts, still in
	// service, by their heartbeats. Without a health check, only a bake at
	// least as long as the staleness window makes sure those heartbeats
	// were sent after the step (a restarted host may be down).
	if !rb.RemovesCapacity && rb.HealthCheck == nil && w.BakeSeconds < int(DefaultStaleAfter/time.Second) {
		return invalidRunbook("a runbook that keeps its hosts in service and has no health_check must wait at least %d s between waves (waves.bake_s), so that the next wave's capacity floors read heartbeats sent after the step; add a health_check or raise bake_s",
			int(DefaultStaleAfter/time.Second))
	}
	return nil
}

func (p *Param) compile() error {
	switch p.Type {
	case ParamInt:
		if p.Pattern != "" || len(p.Enum) > 0 {
			return invalidRunbook("parameter %s is an int: use min and max, not pattern or enum", p.Name)
		}
		if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
			return invalidRunbook("parameter %s has min %d above max %d", p.Name, *p.Min, *p.Max)
		}
	case ParamString:
		if p.Min != nil || p.Max != nil {
			return invalidRunbook("parameter %s is a string: use pattern or enum, not min and max", p.Name)
		}
		if p.Pattern != "" {
			re, err := regexp.Compile(`^(?:` + p.Pattern + `)$`)
			if err != nil {
				return invalidRunbook("parameter %s has a pattern that does not compile: %v", p.Name, err)
			}
			p.re = re
		}
	case ParamService, ParamSecret:
		if p.Min != nil || p.Max != nil || p.Pattern != "" || len(p.Enum) > 0 {
			return invalidRunbook("parameter %s is a %s: it takes no min, max, pattern or enum", p.Name, p.Type)
		}
	case "":
		return invalidRunbook("parameter %s needs a type: int, string, service or secret", p.Name)
	default:
		return invalidRunbook("parameter %s has type %q; use int, string, service or secret", p.Name, p.Type)
	}
	if p.Default != nil {
		if p.Type == ParamService {
			return invalidRunbook("parameter %s names a service: it cannot have a default, the operator must name it", p.Name)
		}
		if err := p.check(*p.Default, nil); err != nil {
			return invalidRunbook("the default of parameter %s is not allowed by its own rules", p.Name)
		}
	}
	return nil
}

func (rb *Runbook) param(name string) *Param {
	for i := range rb.Parameters {
		if rb.Parameters[i].Name == name {
			return &rb.Parameters[i]
		}
	}
	return nil
}

func (rb *Runbook) checkCommand(field string, c *CommandSpec) error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return invalidRunbook("%s.argv needs at least the program to run", field)
	}
	regions := codeRegions(c.Argv)
	if progAt := skipWrappers(c.Argv); !c.Shell && progAt < len(c.Argv) {
		// The program is part of what was approved: a parameter may pick
		// it only from a list the reviewer read (an enum).
		for _, m := range placeholderPattern.FindAllStringSubmatch(c.Argv[progAt], -1) {
			if p := rb.param(m[1]); p != nil && (p.Type != ParamString || len(p.Enum) == 0) {
				return invalidRunbook("%s.argv[%d] lets parameter %s choose the program the step runs, which is part of what is approved: name the program, or give %s an enum of the programs it may choose",
					field, progAt, m[1], m[1])
			}
		}
	}
	for i, a := range c.Argv {
		at := fmt.Sprintf("%s.argv[%d]", field, i)
		if err := rb.checkPlaceholders(at, a); err != nil {
			return err
		}
		for _, m := range placeholderPattern.FindAllStringSubmatch(a, -1) {
			name, env := m[1], ParamEnv(m[1])
			switch {
			case rb.param(name).Type == ParamSecret:
				// argv is readable by every user of the host (ps,
				// /proc/PID/cmdline) and is what error messages quote.
				return invalidRunbook(`%s puts secret parameter {{%s}} on the command line, where every user of the host can read it; Interlock passes it to every command as $%s in its environment: read it from there (in a shell: true step, write "$%s")`,
					at, name, env, env)
			case c.Shell:
				// A value spliced into shell text can become shell syntax
				// however it is quoted: in a heredoc, backticks or $( … )
				// quotes are literal. The script must be constant.
				return invalidRunbook(`%s puts {{%s}} into shell text; write "$%s" there and Interlock passes %s as $%s`, at, name, env, name, env)
			}
			for _, r := range regions {
				if i < r.from || i >= r.to {
					continue
				}
				switch r.kind {
				case codeSSHRemote:
					return invalidRunbook(`%s puts {{%s}} into the command ssh sends to the remote host, whose shell parses it; a value never becomes remote shell text: pass it another way, for example on the remote command's stdin`, at, name)
				case codeSSHOption:
					return invalidRunbook(`%s puts {{%s}} into an ssh option that runs a local command, as shell text; a value never becomes a command: write the option as constant text`, at, name)
				case codeSplit:
					return invalidRunbook(`%s puts {{%s}} into a string env -S splits into words again, where a value could add arguments, options or a program; give the value an argument of its own instead`, at, name)
				case codeShell:
					return invalidRunbook(`%s puts {{%s}} into the script %s runs, which is shell text; write "$%s" there and Interlock passes %s as $%s`, at, name, r.runner, env, name, env)
				default:
					return invalidRunbook(`%s puts {{%s}} into code that %s runs; read the environment variable %s there instead, where Interlock passes %s`, at, name, r.runner, env, name)
				}
			}
		}
	}
	if c.TimeoutSeconds == 0 {
		c.TimeoutSeconds = DefaultTimeoutSeconds
	}
	if c.TimeoutSeconds < 0 || c.TimeoutSeconds > MaxTimeoutSeconds {
		return invalidRunbook("%s.timeout_s must be from 1 to %d seconds", field, MaxTimeoutSeconds)
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MaxOutputBytes < 0 || c.MaxOutputBytes > MaxMaxOutputBytes {
		return invalidRunbook("%s.max_output_bytes must be from 1 to %d", field, MaxMaxOutputBytes)
	}
	return nil
}

func (rb *Runbook) checkPlaceholders(field, s string) error {
	for _, m := range placeholderPattern.FindAllStringSubmatch(s, -1) {
		if rb.param(m[1]) == nil {
			return invalidRunbook("%s uses {{%s}}, which is not a declared parameter", field, m[1])
		}
	}
	return nil
}

// check validates one value against p. services, when non-nil, is the set
// of services a "service" parameter may name.
func (p *Param) check(v string, services map[string]Service) error {
	if p.Type != ParamSecret && strings.HasPrefix(v, "secret:") {
		return paramErr("parameter %s is a %s and cannot take a secret: reference; only secret parameters can", p.Name, p.Type)
	}
	switch p.Type {
	case ParamInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return paramErr("parameter %s must be a whole number%s; got %q", p.Name, p.bounds(), v)
		}
		if (p.Min != nil && n < *p.Min) || (p.Max != nil && n > *p.Max) {
			return paramErr("parameter %s must be a whole number%s; got %d", p.Name, p.bounds(), n)
		}
	case ParamString:
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
			return paramErr("parameter %s must be one of %s; got %q", p.Name, strings.Join(p.Enum, ", "), v)
		}
		if p.re != nil && !p.re.MatchString(v) {
			return paramErr("parameter %s must match %s; got %q", p.Name, p.Pattern, v)
		}
		if strings.ContainsAny(v, "\x00\n\r") {
			return paramErr("parameter %s must not contain NUL or line breaks", p.Name)
		}
		if strings.Contains(v, "{{") || strings.Contains(v, "}}") {
			// A value is substituted once; it must not smuggle in another
			// placeholder (e.g. {{secret:…}}) that a later step would resolve.
			return paramErr("parameter %s must not contain {{ or }}", p.Name)
		}
	case ParamService:
		if services == nil {
			return nil
		}
		if _, ok := services[v]; !ok {
			names := make([]string, 0, len(services))
			for n := range services {
				names = append(names, n)
			}
			sort.Strings(names)
			known := "none yet; create one with interlock service set"
			if len(names) > 0 {
				if len(names) > 10 {
					names = append(names[:10], "…")
				}
				known = strings.Join(names, ", ")
			}
			return paramErr("parameter %s must name a service Interlock knows (%s); got %q", p.Name, known, v)
		}
	case ParamSecret:
		path, ok := strings.CutPrefix(v, "secret:")
		if !ok || path == "" || strings.ContainsAny(path, " \t\n\r{}") {
			return paramErr("parameter %s is a secret: give a reference like secret:db/password, never the value itself", p.Name)
		}
	}
	return nil
}

func (p *Param) bounds() string {
	switch {
	case p.Min != nil && p.Max != nil:
		return fmt.Sprintf(" from %d to %d", *p.Min, *p.Max)
	case p.Min != nil:
		return fmt.Sprintf(" of at least %d", *p.Min)
	case p.Max != nil:
		return fmt.Sprintf(" of at most %d", *p.Max)
	}
	return ""
}

func paramErr(format string, args ...any) error {
	return usererr.New(usererr.Invalid, "bad_parameter", "%s.", fmt.Sprintf(format, args...))
}

// resolveParams checks given against the runbook's parameters and returns
// every parameter's value, defaults filled in.
func (rb *Runbook) resolveParams(given map[string]string, services map[string]Service) (map[string]string, error) {
	names := make([]string, 0, len(rb.Parameters))
	for _, p := range rb.Parameters {
		names = append(names, p.Name)
	}
	keys := make([]string, 0, len(given))
	for k := range given {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if rb.param(k) == nil {
			return nil, paramErr("unknown parameter %s: runbook %s takes %s", k, rb.Name, strings.Join(names, ", "))
		}
	}
	out := make(map[string]string, len(rb.Parameters))
	options := rb.optionPositions()
	for i := range rb.Parameters {
		p := &rb.Parameters[i]
		v, ok := given[p.Name]
		if !ok {
			if p.Default == nil {
				return nil, paramErr("parameter %s is required (%s%s)", p.Name, p.Type, p.bounds())
			}
			v = *p.Default
		}
		if err := p.check(v, services); err != nil {
			return nil, err
		}
		optionLike := p.Type == ParamString && !slices.Contains(p.Enum, v) ||
			p.Type == ParamInt && (p.Min == nil || *p.Min >= 0) // a declared negative min means negatives are meant
		if prog, ok := options[p.Name]; ok && optionLike && strings.HasPrefix(v, "-") {
			return nil, paramErr(`parameter %s would be read as an option by %s (it starts with "-"): %q; give a value that does not start with "-" (a runbook that means to pass options lists them in the parameter's enum, and one that passes operands puts "--" before them)`,
				p.Name, prog, v)
		}
		out[p.Name] = v
	}
	return out, nil
}

// optionPositions maps each parameter (string, or int without a negative
// min) whose placeholder begins an argv
// element of a command run without a shell, where the program still reads
// options (no "--" after the program and before it), to that program.
// A value starting with "-" there is an option, not the operand the runbook
// meant: ssh's destination "-oProxyCommand=…" runs a local command, rsync's
// "-e …" and curl's "-o FILE" do as much.
func (rb *Runbook) optionPositions() map[string]string {
	out := map[string]string{}
	for _, c := range []*CommandSpec{&rb.Step, rb.HealthCheck, rb.Rollback} {
		if c == nil || c.Shell {
			continue
		}
		progAt := skipWrappers(c.Argv)
		prog := ""
		if progAt < len(c.Argv) {
			prog = path.Base(c.Argv[progAt])
		}
		for i := progAt + 1; i < len(c.Argv); i++ {
			a := c.Argv[i]
			if a == "--" {
				break
			}
			if m := leadingPlaceholder.FindStringSubmatch(a); m != nil {
				out[m[1]] = prog
			}
		}
	}
	return out
}

var leadingPlaceholder = regexp.MustCompile(`^\{\{\s*([^{}]*?)\s*\}\}`)

// render makes the command a plan carries: a shell command's text as
// written, an argv with non-secret values substituted, and every
// parameter in the environment (secrets as references, resolved only by
// the executor).
func (rb *Runbook) render(c *CommandSpec, values map[string]string) *Command {
	out := &Command{Argv: make([]string, len(c.Argv)), Shell: c.Shell, TimeoutSeconds: c.TimeoutSeconds, MaxOutputBytes: c.MaxOutputBytes}
	for i, a := range c.Argv {
		if c.Shell {
			out.Argv[i] = a // validate refused any placeholder here
		} else {
			out.Argv[i] = rb.substitute(a, values)
		}
	}
	for _, p := range rb.Parameters {
		if p.Type == ParamSecret {
			if out.SecretEnv == nil {
				out.SecretEnv = map[string]string{}
			}
			out.SecretEnv[ParamEnv(p.Name)] = values[p.Name]
			continue
		}
		if out.Env == nil {
			out.Env = map[string]string{}
		}
		out.Env[ParamEnv(p.Name)] = values[p.Name]
	}
	return out
}

// substitute replaces each placeholder in s by its parameter's value
// (validate allows only non-secret parameters where this is called).
func (rb *Runbook) substitute(s string, values map[string]string) string {
	return placeholderPattern.ReplaceAllStringFunc(s, func(m string) string {
		return values[placeholderPattern.FindStringSubmatch(m)[1]]
	})
}
