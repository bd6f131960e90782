package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
)

// Commands for inventory, runbooks, running and approving operations:
// join-token, hosts, service, runbook, run, approve, deny, and the
// `ops list|show` subcommands (opsQueryCommands, added to `interlock ops`).

var (
	_ = register(joinTokenCmd)
	_ = register(hostsCmd)
	_ = register(serviceCmd)
	_ = register(runbookCmd)
	_ = register(runCmd)
	_ = register(approveCmd)
	_ = register(denyCmd)
)

// parsePairs reads k=v flags (repeated or comma-separated) into a map;
// left names the key in errors ("name", "key") to match the flag's help.
func parsePairs(flag, left string, vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: write %s=value", flag, v, left)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--%s %s is given twice", flag, k)
		}
		out[k] = val
	}
	return out, nil
}

func joinTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "join-token", Short: "Create one-time tokens with which hosts enroll"}
	var services []string
	var labels []string
	var ttl time.Duration
	var count int
	var otp string
	create := &cobra.Command{
		Use:   "create --services a,b [--labels k=v,…] [--ttl 1h] [--otp CODE]",
		Short: "Create a one-time join token (shown once; only its hash is stored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lbl, err := parsePairs("labels", "name", labels)
			if err != nil {
				return err
			}
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			if count < 1 || count > 1000 {
				return fmt.Errorf("--count %d: create between 1 and 1000 tokens at once", count)
			}
			// Each token enrolls exactly one host; --count makes several,
			// printed comma-separated for `interlock agent --count N --token …`.
			if err := proveFreshMFA(cmd.Context(), c, otp); err != nil {
				return err
			}
			toks := make([]wire.JoinToken, count)
			texts := make([]string, count)
			for i := range toks {
				if err := c.Do(cmd.Context(), "POST", "/v1/join-tokens", wire.JoinTokenCreateRequest{Services: services, Labels: lbl, TTLSeconds: int64(ttl / time.Second)}, &toks[i]); err != nil {
					return err
				}
				texts[i] = toks[i].Token
			}
			var out any = toks[0]
			if count > 1 {
				out = toks
			}
			return e.output(out, func() error {
				e.printf("%s\n", strings.Join(texts, ","))
				fmt.Fprintf(e.stderr, "%d one-time join token(s) for services %s, valid until %s. Each enrolls one host once; keep them secret.\n",
					count, strings.Join(toks[0].Services, ","), toks[0].ExpiresAt.Local().Format(time.RFC3339))
				return nil
			})
		},
	}
	create.Flags().StringSliceVar(&services, "services", nil, "services the enrolled host serves (comma-separated)")
	create.Flags().StringSliceVar(&labels, "labels", nil, "labels of the host, k=v (comma-separated)")
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token stays valid")
	create.Flags().IntVar(&count, "count", 1, "how many one-time tokens to create (one per host)")
	create.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	cmd.AddCommand(create)
	return cmd
}

func hostsCmd(e *env) *cobra.Command {
	cmd := hostsListCmd(e)
	cmd.AddCommand(hostsRevokeCmd(e), hostsReturnCmd(e))
	return cmd
}

// hostsRevokeCmd revokes a host's agent identity.
func hostsRevokeCmd(e *env) *cobra.Command {
	return hostChangeCmd(e, "revoke",
		"Refuse a host's agent from now on (a stolen key, a retired machine); it comes back only by enrolling anew",
		"Revoked %s (%s). Its agent is refused from now on; to bring the machine back, enroll it with a new join token.\n")
}

// hostsReturnCmd puts a host an operation left out of service back.
func hostsReturnCmd(e *env) *cobra.Command {
	return hostChangeCmd(e, "return",
		"Put a host back in service after checking it (a halted or aborted removal leaves the hosts it reached out)",
		"%s (%s) is in service again; capacity floors count it once it is healthy.\n")
}

// hostChangeCmd is `hosts VERB HOST --reason TEXT`: POST
// /v1/hosts/ID/VERB for a host named by ID or by its unique name among the
// hosts not revoked, as `interlock hosts` shows them.
func hostChangeCmd(e *env, verb, short, done string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   verb + " HOST --reason TEXT",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var list wire.HostList
			if err := c.Do(cmd.Context(), "GET", "/v1/hosts", nil, &list); err != nil {
				return err
			}
			// An ID names one host; a name names the hosts not revoked yet
			// (a re-enrolled machine keeps its name under a new ID).
			var ids []string
			for _, h := range list.Hosts {
				if h.ID == args[0] {
					ids = []string{h.ID}
					break
				}
				if h.Name == args[0] && h.RevokedAt.IsZero() {
					ids = append(ids, h.ID)
				}
			}
			var id string
			switch len(ids) {
			case 0:
				return fmt.Errorf("no host not yet revoked has the ID or name %q; `interlock hosts` lists them", args[0])
			case 1:
				id = ids[0]
			default:
				return fmt.Errorf("%d hosts are named %q (%s); give the ID", len(ids), args[0], strings.Join(ids, ", "))
			}
			var h wire.Host
			if err := c.Do(cmd.Context(), "POST", "/v1/hosts/"+url.PathEscape(id)+"/"+verb, wire.ReasonRequest{Reason: reason}, &h); err != nil {
				return err
			}
			return e.output(h, func() error { e.printf(done, h.Name, h.ID); return nil })
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (goes to the audit log)")
	return cmd
}

func hostsListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "hosts",
		Short: "List enrolled hosts with their services and health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var out wire.HostList
			if err := c.Do(cmd.Context(), "GET", "/v1/hosts", nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				rows := make([][]string, 0, len(out.Hosts))
				for _, h := range out.Hosts {
					health := "healthy"
					switch {
					case !h.RevokedAt.IsZero():
						health = "revoked"
					case !h.Healthy:
						health = "unhealthy"
					case !h.Live:
						health = "silent"
					}
					state := "in service"
					if !h.InService {
						state = "out of service"
					}
					seen := "never"
					if !h.LastSeen.IsZero() {
						seen = h.LastSeen.Local().Format(time.DateTime)
					}
					rows = append(rows, []string{h.Name, h.ID, strings.Join(h.Services, ","), formatLabels(h.Labels), health, state, seen, h.HeldBy})
				}
				return e.table([]string{"NAME", "ID", "SERVICES", "LABELS", "HEALTH", "STATE", "LAST SEEN", "HELD BY"}, rows)
			})
		},
	}
}

func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func serviceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Set and list services and their capacity rules"}
	var minHealthy, maxPerOp, file string
	var create bool
	set := &cobra.Command{
		Use:   "set NAME [--min-healthy 50%] [--max-per-operation 10%] [--create] | set -f FILE",
		Short: "Change a service's capacity floor or per-operation cap (or apply a services YAML file)",
		Long: "Changes only the rules named (\"none\" removes one); the others stay. A service that does not exist\n" +
			"is refused unless --create. A change that only tightens (a higher floor, a lower cap) applies at\n" +
			"once; one that loosens becomes a change request another person approves (interlock change).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var out wire.ServiceList
			var cr *wire.ChangeRequest
			switch {
			case file != "" && len(args) == 0:
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if cr, err = doConfigChange(cmd.Context(), c, "POST", "/v1/services", wire.ServicesApplyRequest{YAML: string(b)}, &out); err != nil {
					return err
				}
			case file == "" && len(args) == 1:
				var one wire.Service
				req := wire.ServiceSetRequest{MinHealthy: minHealthy, MaxPerOperation: maxPerOp, Create: create}
				if cr, err = doConfigChange(cmd.Context(), c, "PUT", "/v1/services/"+url.PathEscape(args[0]), req, &one); err != nil {
					return err
				}
				out.Services = []wire.Service{one}
			default:
				return errors.New("name one service with its flags, or give a YAML file with -f, not both")
			}
			if cr != nil {
				return e.printPending(cr)
			}
			return e.output(out, func() error { return e.serviceTable(out.Services) })
		},
	}
	set.Flags().StringVar(&minHealthy, "min-healthy", "", `capacity floor: healthy in-service hosts that must remain, "50%", a count, or "none"`)
	set.Flags().StringVar(&maxPerOp, "max-per-operation", "", `most hosts one operation may change, "10%", a count, or "none"`)
	set.Flags().BoolVar(&create, "create", false, "create the service if it does not exist (without it an unknown name is refused)")
	set.Flags().StringVarP(&file, "file", "f", "", "apply every service in this YAML file")
	list := &cobra.Command{
		Use:   "list",
		Short: "List services with their rules and capacity now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var out wire.ServiceList
			if err := c.Do(cmd.Context(), "GET", "/v1/services", nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error { return e.serviceTable(out.Services) })
		},
	}
	cmd.AddCommand(set, list)
	return cmd
}

func (e *env) serviceTable(svcs []wire.Service) error {
	rows := make([][]string, 0, len(svcs))
	for _, s := range svcs {
		floor, maxOp := "none", "none"
		if s.MinHealthy != "" {
			floor = fmt.Sprintf("%d (%s)", s.Floor, s.MinHealthy)
		}
		if s.MaxPerOperation != "" {
			maxOp = s.MaxPerOperation
		}
		frozen := ""
		now := time.Now()
		for _, w := range s.Freezes {
			if !now.Before(w.Start) && now.Before(w.End) {
				frozen = "frozen until " + w.End.Local().Format(time.DateTime)
			}
		}
		rows = append(rows, []string{s.Name, fmt.Sprintf("%d/%d", s.Healthy, s.Total), floor, strconv.Itoa(s.Held), maxOp, frozen})
	}
	return e.table([]string{"SERVICE", "HEALTHY", "FLOOR", "HELD", "MAX/OP", "FREEZE"}, rows)
}

func runbookCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "runbook", Short: "Apply and list runbooks"}
	var file string
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Validate a runbook YAML file and request it as a new version (another person approves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("give the runbook file with -f FILE")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var out wire.Runbook
			cr, err := doConfigChange(cmd.Context(), c, "POST", "/v1/runbooks", wire.RunbookApplyRequest{YAML: string(b)}, &out)
			if err != nil {
				return err
			}
			if cr != nil {
				return e.printPending(cr)
			}
			return e.output(out, func() error {
				e.printf("Runbook %s is at version %d (risk %s).\n", out.Name, out.Version, out.Risk)
				return nil
			})
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "runbook YAML file")
	list := &cobra.Command{
		Use:   "list",
		Short: "List runbooks (latest versions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var out wire.RunbookList
			if err := c.Do(cmd.Context(), "GET", "/v1/runbooks", nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				rows := make([][]string, 0, len(out.Runbooks))
				for _, r := range out.Runbooks {
					var params []string
					for _, p := range r.Parameters {
						params = append(params, p.Name+":"+p.Type)
					}
					rows = append(rows, []string{r.Name, strconv.Itoa(r.Version), r.Risk, strconv.FormatBool(r.RemovesCapacity), strings.Join(params, " "), r.Description})
				}
				return e.table([]string{"NAME", "VERSION", "RISK", "REMOVES CAPACITY", "PARAMETERS", "DESCRIPTION"}, rows)
			})
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a runbook's YAML as applied",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var out wire.Runbook
			if err := c.Do(cmd.Context(), "GET", "/v1/runbooks/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error { e.printf("%s", out.Source); return nil })
		},
	}
	cmd.AddCommand(apply, list, show)
	return cmd
}

func runCmd(e *env) *cobra.Command {
	var params, confirm []string
	var reason string
	var dryRun, breakGlass bool
	cmd := &cobra.Command{
		Use:   "run RUNBOOK --param k=v … --reason TEXT [--dry-run] [--confirm k=v]",
		Short: "Plan a runbook, judge it with the guardrails, and ask for approvals",
		Long: "Builds the exact plan (hosts, waves, plan hash), evaluates every guardrail and, if they pass,\n" +
			"creates the operation waiting for approvals. A refusal changes nothing and says what would pass.\n" +
			"--dry-run prints the same without creating anything. --break-glass skips approvals (never\n" +
			"guardrails), needs fresh MFA and a reason, and raises an alert.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePairs("param", "name", params)
			if err != nil {
				return err
			}
			cf, err := parsePairs("confirm", "name", confirm)
			if err != nil {
				return err
			}
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			req := wire.RunRequest{Runbook: args[0], Params: p, Reason: reason, Confirm: cf, BreakGlass: breakGlass}
			if len(cf) == 0 {
				req.Confirm = nil
			}
			if dryRun {
				var res wire.PlanResult
				if err := c.Do(cmd.Context(), "POST", "/v1/plans", req, &res); err != nil {
					return err
				}
				return e.output(res, func() error {
					e.printPlan(res, "")
					if res.Allowed {
						e.printf("Dry run: nothing was created.\n")
					} else {
						e.printf("Dry run: the guardrails would refuse this plan; nothing was created.\n")
					}
					return nil
				})
			}
			var out wire.RunResponse
			if err := c.Do(cmd.Context(), "POST", "/v1/ops", req, &out); err != nil {
				e.printRefusal(err)
				return err
			}
			return e.output(out, func() error {
				e.printPlan(out.Result, out.Operation.ID)
				op := out.Operation
				switch {
				case out.Started:
					e.printf("Operation %s is running. Follow it with: interlock ops watch %s\n", op.ID, op.ID)
				case op.State == "pending_approval":
					e.printf("Operation %s created: %s. Approvers run: interlock approve %s\n", op.ID, needsText(op.Needed, op.NeededRoles), op.ID)
				default:
					e.printf("Operation %s is %s.\n", op.ID, op.State)
				}
				if out.StartError != "" {
					e.printf("It did not start: %s\n", out.StartError)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&params, "param", nil, "runbook parameter name=value (repeatable)")
	cmd.Flags().StringArrayVar(&confirm, "confirm", nil, "type an unusual parameter's value again, name=value (repeatable)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (a ticket or incident; required, goes into the audit log)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and verdicts without creating anything")
	cmd.Flags().BoolVar(&breakGlass, "break-glass", false, "skip approvals in an emergency (alerts; guardrails still hold)")
	return cmd
}

func needsText(n int, roles []string) string {
	if n == 0 {
		return "needs no approval"
	}
	s := "needs 1 approval"
	if n > 1 {
		s = fmt.Sprintf("needs %d approvals", n)
	}
	if len(roles) > 0 {
		s += " from role " + strings.Join(roles, " or ")
	}
	return s
}

func hostName(p wire.Plan, id string) string {
	if n := p.HostNames[id]; n != "" {
		return n
	}
	return id
}

// printPlan prints a plan for people: hosts per wave, hash, verdicts, needs.
// opID names the operation made from it ("" for a dry run).
func (e *env) printPlan(r wire.PlanResult, opID string) {
	p := r.Plan
	hosts := 0
	for _, w := range p.Waves {
		hosts += len(w.Hosts)
	}
	e.printf("Plan for %s v%d on %s: %d hosts in %d waves (concurrency %d, halt after %d failures)\n",
		p.Runbook, p.RunbookVersion, p.Service, hosts, len(p.Waves), p.Concurrency, p.HaltAfter)
	e.printWaves(p, 16, false, opID)
	e.printf("  step:            %s\n", argvText(p.Step.Argv))
	e.printSecrets(p, "reads secrets:  ")
	e.printf("  services:        %s\n", strings.Join(p.Services, ", "))
	e.printf("  plan hash:       %s\n", p.Hash)
	e.printVerdicts(r.Verdicts)
	if r.Allowed {
		e.printf("It %s.\n", needsText(r.NeedsApprovals, r.ApproverRoles))
	}
}

func (e *env) printVerdicts(vs []wire.Verdict) {
	e.printf("Guardrails:\n")
	for _, v := range vs {
		mark := "ok  "
		if !v.Pass {
			mark = "FAIL"
		}
		e.printf("  %s %s\n", mark, v.Message)
	}
}

// printRefusal prints the verdicts of a guardrail refusal to stderr (the
// error itself is printed by Main).
func (e *env) printRefusal(err error) {
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Problem.Code != "guardrail" || ae.Problem.Details == nil || e.json {
		return
	}
	b, _ := json.Marshal(ae.Problem.Details)
	var g wire.GuardrailRefusal
	if json.Unmarshal(b, &g) != nil {
		return
	}
	fmt.Fprintln(e.stderr, "Refused before anything ran. Guardrails:")
	for _, v := range g.Verdicts {
		mark := "ok  "
		if !v.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(e.stderr, "  %s %s\n", mark, v.Message)
	}
}

func approveCmd(e *env) *cobra.Command {
	var hash, otp string
	var yes, allHosts bool
	cmd := &cobra.Command{
		Use:   "approve OP [--plan-hash HASH] [--hosts]",
		Short: "Approve another person's operation (signs its current plan hash)",
		Long: "Shows the plan (who asked and why, hosts by wave, guardrails, secrets it reads), asks\n" +
			"\"approve this plan? [y/N]\" on a terminal, and only then asks for a one-time code and signs the\n" +
			"plan's hash. With --plan-hash the approval signs exactly that hash and is refused if the plan\n" +
			"changed. Approving needs fresh MFA; nobody approves their own operation, nor one asked for by\n" +
			"the person who invited them or gave them their role.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			id := url.PathEscape(args[0])
			// Look first: an unknown or finished operation fails here,
			// before a one-time code is asked for or spent.
			var op wire.Operation
			if err := c.Do(ctx, "GET", "/v1/ops/"+id, nil, &op); err != nil {
				return err
			}
			if op.State != "pending_approval" {
				return fmt.Errorf("operation %s is %s, not waiting for approval; nothing was signed", op.ID, op.State)
			}
			if hash == "" {
				hash = op.Plan.Hash
			}
			if d := op.Plan.HostsDigest; d != "" && wire.HostsDigest(op.Plan.Waves) != d {
				return fmt.Errorf("the host list the server sent for %s does not hash to its hosts digest %s; nothing was signed", op.ID, d)
			}
			asks := e.isTerminal() && !yes
			switch {
			case !e.json:
				e.printApprovalView(op, personNames(ctx, c), allHosts)
			case asks:
				// --json keeps stdout for the answer, but a person at a
				// terminal is about to be asked "approve this plan?": the
				// plan goes to stderr, or they would sign what they never saw.
				view := *e
				view.stdout = e.stderr
				view.printApprovalView(op, personNames(ctx, c), allHosts)
			}
			if asks {
				answer, err := e.readLine("approve this plan? [y/N] ")
				if err != nil {
					return err
				}
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return fmt.Errorf("not approved: you answered %q; nothing was signed", strings.TrimSpace(answer))
				}
			}
			if otp == "" && e.isTerminal() {
				if otp, err = e.readSecret("One-time code (approving needs fresh MFA): ", false); err != nil {
					return err
				}
			}
			if otp != "" {
				var mfa wire.MFAResponse
				if err := c.Do(ctx, "POST", "/v1/mfa", wire.MFARequest{OTP: otp}, &mfa); err != nil {
					return err
				}
			}
			var out wire.ApproveResponse
			if err := c.Do(ctx, "POST", "/v1/ops/"+id+"/approvals", wire.ApproveRequest{PlanHash: hash}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				op := out.Operation
				switch {
				case out.Started:
					e.printf("Approved. Operation %s is running: interlock ops watch %s\n", op.ID, op.ID)
				case out.Ready:
					e.printf("Approved. Operation %s is ready.\n", op.ID)
				default:
					e.printf("Approved (%d of %d). Operation %s is %s.\n", len(op.Approvals), op.Needed, op.ID, op.State)
				}
				if out.StartError != "" {
					e.printf("It did not start: %s\n", out.StartError)
				}
				if out.Warning != "" {
					e.printf("WARNING: %s\n", out.Warning)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&hash, "plan-hash", "", "the plan hash you reviewed (default: the operation's current hash, shown before signing)")
	cmd.Flags().StringVar(&otp, "otp", "", "a current one-time code, proving fresh MFA (prompted on a terminal)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask \"approve this plan?\" on a terminal (the plan is still shown)")
	cmd.Flags().BoolVar(&allHosts, "hosts", false, "list every host of every wave (a large wave is otherwise shown by its first hosts and a count)")
	return cmd
}

// printApprovalView shows what an approver is about to sign.
func (e *env) printApprovalView(op wire.Operation, names map[string]string, allHosts bool) {
	p := op.Plan
	e.printf("Operation %s asks to run %s v%d on %s, params %s.\n", op.ID, p.Runbook, p.RunbookVersion, p.Service, formatLabels(p.Params))
	e.printf("  requested by: %s at %s\n", personLabel(names, "person:"+op.RequesterID), op.CreatedAt.Local().Format(time.DateTime))
	e.printf("  reason:       %q\n", op.Reason)
	e.printWaves(p, 13, allHosts, op.ID)
	e.printf("  step:         %s\n", argvText(p.Step.Argv))
	e.printf("  services:     %s\n", strings.Join(p.Services, ", "))
	e.printSecrets(p, "secrets:  ")
	e.printf("  plan hash:    %s\n", p.Hash)
	if p.HostsDigest != "" {
		e.printf("  hosts digest: %s\n", p.HostsDigest)
	}
	if len(op.Verdicts) > 0 {
		e.printVerdicts(op.Verdicts)
	}
	e.printf("It %s; it has %d.\n", needsText(op.Needed, op.NeededRoles), len(op.Approvals))
}

// printPlanBrief prints the plan of `ops show`; with allHosts every host,
// one a line, checked against the plan's hosts digest.
func (e *env) printPlanBrief(p wire.Plan, opID string, allHosts bool) error {
	if allHosts {
		if err := e.printPlanHosts(p); err != nil {
			return err
		}
	} else {
		e.printWaves(p, 10, false, opID)
	}
	e.printf("  step:      %s\n", argvText(p.Step.Argv))
	e.printSecrets(p, "secrets:  ")
	e.printf("  plan hash: %s\n", p.Hash)
	return nil
}

func denyCmd(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "deny OP --reason TEXT",
		Short: "Deny an operation that has not started (the requester may withdraw their own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var op wire.Operation
			if err := c.Do(cmd.Context(), "POST", "/v1/ops/"+url.PathEscape(args[0])+"/deny", wire.ReasonRequest{Reason: reason}, &op); err != nil {
				return err
			}
			return e.output(op, func() error { e.printf("Operation %s is %s.\n", op.ID, op.State); return nil })
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (goes into the audit log)")
	return cmd
}

// opsQueryCommands are `interlock ops list` and `interlock ops show OP`.
// The `ops` command (watch.go) adds them beside the execution subcommands.
func opsQueryCommands(e *env) []*cobra.Command {
	var state, runbook string
	var limit int
	list := &cobra.Command{
		Use:   "list [--state S,…] [--runbook NAME]",
		Short: "List recent operations, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			if runbook != "" {
				q.Set("runbook", runbook)
			}
			q.Set("limit", strconv.Itoa(limit))
			var out wire.OperationList
			if err := c.Do(cmd.Context(), "GET", "/v1/ops?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				rows := make([][]string, 0, len(out.Operations))
				for _, op := range out.Operations {
					hosts := 0
					for _, w := range op.Plan.Waves {
						hosts += len(w.Hosts)
					}
					rows = append(rows, []string{op.ID, op.State, op.Plan.Runbook, op.Plan.Service, strconv.Itoa(hosts),
						fmt.Sprintf("%d/%d", len(op.Approvals), op.Needed), op.CreatedAt.Local().Format(time.DateTime)})
				}
				return e.table([]string{"ID", "STATE", "RUNBOOK", "SERVICE", "HOSTS", "APPROVALS", "CREATED"}, rows)
			})
		},
	}
	list.Flags().StringVar(&state, "state", "", "only these states (comma-separated), e.g. pending_approval,running")
	list.Flags().StringVar(&runbook, "runbook", "", "only this runbook")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many (1–500)")
	var allHosts bool
	show := &cobra.Command{
		Use:   "show OP [--hosts]",
		Short: "Show an operation: plan, approvals and state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var op wire.Operation
			if err := c.Do(cmd.Context(), "GET", "/v1/ops/"+url.PathEscape(args[0]), nil, &op); err != nil {
				return err
			}
			return e.output(op, func() error {
				e.printf("Operation %s: %s\n", op.ID, op.State)
				e.printf("  runbook:   %s v%d, params %s\n", op.Plan.Runbook, op.Plan.RunbookVersion, formatLabels(op.Plan.Params))
				names := personNames(cmd.Context(), c)
				e.printf("  requested: by %s at %s: %q\n", personLabel(names, "person:"+op.RequesterID), op.CreatedAt.Local().Format(time.DateTime), op.Reason)
				if op.BreakGlass {
					e.printf("  BREAK-GLASS: approvals were skipped\n")
				}
				if err := e.printPlanBrief(op.Plan, op.ID, allHosts); err != nil {
					return err
				}
				e.printf("  approvals: %d of %d", len(op.Approvals), op.Needed)
				if len(op.NeededRoles) > 0 {
					e.printf(" (role %s)", strings.Join(op.NeededRoles, " or "))
				}
				e.printf("\n")
				for _, a := range op.Approvals {
					e.printf("    %s (%s, role %s) at %s, expires %s\n", "person:"+a.PersonID, a.Name, a.Role, a.At.Local().Format(time.DateTime), a.ExpiresAt.Local().Format(time.DateTime))
				}
				if op.Detail != "" {
					e.printf("  detail:    %s\n", op.Detail)
				}
				return nil
			})
		},
	}
	show.Flags().BoolVar(&allHosts, "hosts", false, "list every host of the plan, one a line by wave, and check the list against its digest")
	var withdrawReason string
	withdraw := &cobra.Command{
		Use:   "withdraw OP [--reason TEXT]",
		Short: "Take back your own operation before it starts (only its requester can)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			var op wire.Operation
			if err := c.Do(cmd.Context(), "POST", "/v1/ops/"+url.PathEscape(args[0])+"/withdraw", wire.ReasonRequest{Reason: withdrawReason}, &op); err != nil {
				return err
			}
			return e.output(op, func() error { e.printf("Operation %s is %s.\n", op.ID, op.State); return nil })
		},
	}
	withdraw.Flags().StringVar(&withdrawReason, "reason", "", "why (goes into the audit log)")
	return []*cobra.Command{list, show, withdraw}
}

// argvText shows an argv the way a shell would need it typed.
func argvText(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>(){}*?[]#~") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
