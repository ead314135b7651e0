package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

func init() { register(newDemoCmd) }

type demoOptions struct {
	dir         string
	stay        bool
	uiPort      int
	port        int
	quick       bool
	interactive bool
	verbose     bool
	store       demoStore
}

func newDemoCmd(g *Globals) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole DR story on this machine: embedded Temporal, Web UI, worker and the lab cell",
		Long: "Starts an embedded Temporal server with its Web UI and a worker, brings up the lab (a two-site BPM +\n" +
			"Monitor cell of real processes on loopback), enables the plan (RPO monitor, backup schedule), runs a\n" +
			"workload, takes scheduled backups and validates one in the sandbox, destroys the primary site, fails\n" +
			"over to the secondary (approving the gates itself, or waiting for you with --interactive), checks the\n" +
			"ledger, brings the primary back and fails back, then prints the RPO and RTO achieved, the reports and\n" +
			"the Web UI URL. --quick runs the short first-run demo instead: three local processes brought up in\n" +
			"tier order with the exec driver, verified and stopped.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.store.check(); err != nil {
				return err
			}
			if o.quick && o.store.kind != "folder" {
				return BadInputf("--store s3: the quick demo keeps no recovery points; leave out --quick")
			}
			if !o.verbose {
				// The narrative only; the log lines go to a file named now.
				if err := os.MkdirAll(o.dir, 0o755); err != nil {
					return BadInputf("--dir: %v", err)
				}
				path := filepath.Join(o.dir, "demo.log")
				f, err := os.Create(path)
				if err != nil {
					return BadInputf("--dir: %v", err)
				}
				defer f.Close()
				g.LogTo(f)
				fmt.Fprintf(g.Stdout, "drover demo: log lines go to %s (--verbose shows them here)\n", path)
			}
			if o.quick {
				return runDemo(cmd.Context(), g, o)
			}
			return runLabDemo(cmd.Context(), g, o)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", filepath.Join(".drover", "demo"), "working directory for the demo's plan, logs and Temporal database")
	cmd.Flags().BoolVar(&o.stay, "stay", false, "keep the Web UI up after the demo until Ctrl-C")
	cmd.Flags().IntVar(&o.uiPort, "ui-port", 0, "Web UI port (0 picks a free one)")
	cmd.Flags().IntVar(&o.port, "port", 0, "Temporal frontend port (0 picks a free one)")
	cmd.Flags().BoolVar(&o.quick, "quick", false, "the short demo: three local processes with the exec driver")
	cmd.Flags().BoolVar(&o.interactive, "interactive", false, "wait for a person to approve the gates (CLI or Web UI)")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "show the log lines with the narrative instead of writing them to DIR/demo.log")
	cmd.Flags().StringVar(&o.store.kind, "store", "folder", "where the lab keeps its recovery points: folder, or s3 (a local SeaweedFS the demo starts, or --s3-endpoint)")
	cmd.Flags().StringVar(&o.store.endpoint, "s3-endpoint", "", "with --store s3: host:port of an S3 API to use instead of a local SeaweedFS (keys from $"+envDemoS3Access+" and $"+envDemoS3Secret+")")
	cmd.Flags().StringVar(&o.store.bucket, "s3-bucket", "", "with --s3-endpoint: the bucket, which must exist (default "+demoS3Bucket+")")
	cmd.Flags().StringVar(&o.store.prefix, "s3-prefix", "", "with --store s3: a prefix for every key")
	cmd.Flags().BoolVar(&o.store.tls, "s3-tls", false, "with --s3-endpoint: https")
	return cmd
}

func runDemo(ctx context.Context, g *Globals, o demoOptions) error {
	log := g.Logger()
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return BadInputf("--dir: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return BadInputf("--dir: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the drover executable for the demo's processes: %w", err)
	}
	planPath, err := writeDemoPlan(dir, exe)
	if err != nil {
		return err
	}
	p, err := plan.LoadAndValidate(planPath, builtin.Registry(log))
	if err != nil {
		return fmt.Errorf("the demo's own plan does not validate (a bug): %w", err)
	}

	st, err := startStack(ctx, g, stack.Options{Port: o.port, UIPort: o.uiPort, DBFile: filepath.Join(dir, "temporal.db"), Sites: PlanPlaces(p)})
	if err != nil {
		return err
	}
	defer st.Close()
	out := g.Stdout
	fmt.Fprintf(out, "drover demo: Temporal at %s, Web UI at %s\n", st.Server.FrontendAddress(), st.Server.UIURL())
	fmt.Fprintf(out, "plan %s (%s)\n", p.Name, planPath)

	site := contract.SiteRef{Role: "primary", Site: *p.Sites.Primary}
	stamp := time.Now().UTC().Format("20060102T150405")
	var up workflows.BringUpResult
	upID := contract.BringUpID(p.Name, stamp)
	runErr := stack.RunWorkflow(ctx, st.Client, upID, p.Name, contract.KindBringUp, workflows.BringUpWorkflow,
		workflows.BringUpInput{Plan: *p, Site: site}, &up)
	printBringUp(out, up)

	// Always stop what the demo started, also when the bring-up failed.
	downID := contract.ShutdownID(p.Name, stamp)
	var down workflows.ShutdownResult
	downCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	downErr := stack.RunWorkflow(downCtx, st.Client, downID, p.Name, "shutdown", workflows.ShutdownWorkflow,
		workflows.ShutdownInput{Plan: *p, Site: site}, &down)
	if downErr == nil {
		fmt.Fprintf(out, "cell stopped in reverse order: %s\n", stopOrder(down))
	} else {
		log.Error("shutdown of the demo cell failed", zap.Error(downErr))
	}

	fmt.Fprintf(out, "\nWeb UI: %s\n", st.Server.UIURL())
	fmt.Fprintf(out, "  runs of this plan: %s\n", runsURL(st.Server.UIURL(), g.Namespace, p.Name))
	fmt.Fprintf(out, "  (the runs are kept in %s; `drover server --db-file %s` shows them again)\n",
		filepath.Join(dir, "temporal.db"), filepath.Join(dir, "temporal.db"))
	if runErr != nil {
		return fmt.Errorf("demo bring-up failed: %w", runErr)
	}
	if downErr != nil {
		return fmt.Errorf("demo shutdown failed: %w", downErr)
	}
	if o.stay {
		fmt.Fprintln(out, "Web UI stays up; press Ctrl-C to stop.")
		<-ctx.Done()
	}
	return nil
}

func runsURL(ui, namespace, planName string) string {
	q := url.QueryEscape(fmt.Sprintf(`DroverPlan="%s"`, planName))
	return fmt.Sprintf("%s/namespaces/%s/workflows?query=%s", ui, url.PathEscape(namespace), q)
}

func printBringUp(out io.Writer, r workflows.BringUpResult) {
	for _, t := range r.Restart.Tiers {
		fmt.Fprintf(out, "tier %d: %s\n", t.Index, strings.Join(t.Components, ", "))
	}
	for _, c := range r.Restart.Components {
		took := ""
		if !c.Ready.IsZero() {
			took = c.Ready.Sub(c.Started).Round(time.Millisecond).String()
		}
		fmt.Fprintf(out, "  %-10s %-8s attempts=%d %s %s\n", c.Name, c.Outcome, c.Attempts, took, c.Detail)
	}
	for _, l := range r.Verify.Levels {
		if !l.Ran {
			continue
		}
		fmt.Fprintf(out, "verify %-12s passed=%v\n", l.Level, l.Passed)
		for _, c := range l.Checks {
			fmt.Fprintf(out, "  %-14s %v  %s\n", c.Name, c.Result.Passed, c.Result.Summary)
		}
	}
}

func stopOrder(r workflows.ShutdownResult) string {
	names := make([]string, 0, len(r.Components))
	for _, c := range r.Components {
		names = append(names, c.Name)
	}
	return strings.Join(names, " → ")
}

// demoPlan is a small three-tier cell of real processes: a database, an app
// server that refuses to start without it, and a web server in front.
var demoPlan = template.Must(template.New("demo").Funcs(template.FuncMap{"json": jsonString}).Parse(`apiVersion: drover/v1
name: demo
description: >
  First-run demo: three real local processes started in tier order by the exec
  driver, each checked for readiness, then verified by probes.
rpo: 15m
rto: 30m
products: [shop]
sites:
  primary:
    name: local
    settings:
      host: 127.0.0.1
  secondary:
    name: standby
    settings:
      host: 127.0.0.1
components:
{{- range .Nodes}}
  - name: {{.Name}}
    role: {{.Role}}
{{- if .Product}}
    product: {{.Product}}
{{- end}}
    driver: exec
    settings:
      start: {{json .Start}}
      stop: {{json .Stop}}
      status: {{json .Status}}
      timeout: 30s
    readiness:
      name: {{.Name}}-ready
      driver: http
      settings:
        url: http://{{.Addr}}/health
        passField: passed
    startTimeout: 1m
{{- end}}
verification:
  system:
    - name: db-listening
      driver: tcp
      settings:
        address: {{(index .Nodes 0).Addr}}
  application:
    - name: app-health
      driver: http
      settings:
        url: http://{{(index .Nodes 1).Addr}}/health
        passField: passed
  monitoring:
    - name: web-health
      driver: http
      settings:
        url: http://{{(index .Nodes 2).Addr}}/health
        passField: passed
approvers:
  - name: demo
gates:
  # The quick demo never fails over: the seeds' required gates are waived.
  - {name: start-secondary, approvers: none}
  - {name: failback, approvers: none}
  - name: start-failed
    approvers: [demo]
    timeout: 2m
    onTimeout: abort
`))

type demoNode struct {
	Name, Role, Product, Addr string
	Start, Stop, Status       string
}

func writeDemoPlan(dir, exe string) (string, error) {
	roles := []struct{ name, role, product, needs string }{
		{"db", "database", "", ""},
		{"app", "app", "shop", "db"},
		{"web", "webserver", "", "app"},
	}
	addrs := map[string]string{}
	var nodes []demoNode
	for _, r := range roles {
		port, err := freeLoopbackPort()
		if err != nil {
			return "", err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		addrs[r.name] = addr
		pid := shellQuote(filepath.Join(dir, r.name+".pid"))
		logf := shellQuote(filepath.Join(dir, r.name+".log"))
		start := fmt.Sprintf("nohup %s demo-node --name %s --listen %s --needs=%s >%s 2>&1 & echo $! >%s",
			shellQuote(exe), r.name, addr, addrs[r.needs], logf, pid)
		nodes = append(nodes, demoNode{
			Name: r.name, Role: r.role, Product: r.product, Addr: addr,
			Start:  start,
			Stop:   fmt.Sprintf("if [ -f %[1]s ]; then kill $(cat %[1]s) 2>/dev/null; rm -f %[1]s; fi; true", pid),
			Status: fmt.Sprintf("[ -f %[1]s ] && kill -0 $(cat %[1]s) 2>/dev/null", pid),
		})
	}
	var b strings.Builder
	if err := demoPlan.Execute(&b, map[string]any{"Nodes": nodes}); err != nil {
		return "", fmt.Errorf("render demo plan: %w", err)
	}
	path := filepath.Join(dir, "demo-plan.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("write demo plan: %w", err)
	}
	return path, nil
}

func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// jsonString quotes a string for YAML: a JSON string is a valid YAML scalar.
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep > and & readable in the plan
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}
