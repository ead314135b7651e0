// Package websphere is the middleware driver for a WebSphere Application
// Server Network Deployment cell (the seed's IBM BPM cell): the deployment
// manager, node agents and application servers through the profile's own
// scripts (startManager.sh, startNode.sh, startServer.sh, the matching stop
// scripts and serverStatus.sh), and clusters and messaging engines through
// wsadmin connected to the deployment manager.
//
// Settings (the component's settings in the plan):
//
//	kind:            dmgr | nodeagent | server | cluster | messagingEngine (required)
//	profilePath:     the profile's directory; for cluster and messagingEngine
//	                 the deployment manager's profile, whose wsadmin is used (required)
//	server:          the server's name (kind server: required; dmgr and nodeagent
//	                 default to "dmgr" and "nodeagent")
//	node:            the server's node; with it an immediate stop of a server
//	                 runs AdminControl.stopServer(server, node, "immediate")
//	                 through the profile's wsadmin (its node agent), falling
//	                 back to stopServer.sh when that cannot connect (optional)
//	cluster:         the cluster's name (kind cluster: required)
//	messagingEngine: the messaging engine's name, as in its MBean
//	                 (kind messagingEngine: required)
//	username:        administrative user; without it the scripts read the
//	                 profile's properties/soap.client.props (no password in the plan)
//	password:        secret reference (env:NAME or file:PATH), required with username;
//	                 resolved at call time and redacted from evidence and errors,
//	                 but the scripts take it as -password, so the host's process
//	                 list shows it while they run: prefer soap.client.props
//	timeout:         per-command timeout, default 10m
//	timeouts:        per-operation overrides {start, stop, status}
//	killGrace:       SIGTERM→SIGKILL grace when a command is cut short, default 10s
//	pollInterval:    how often a cluster or engine is polled after start/stop, default 10s
//
// Start of a started server and stop of a stopped one run no start or stop
// script: status decides first, and the evidence says AlreadyDone.
package websphere

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/hostrun"
	"github.com/drover-dr/drover/drivers/secret"
)

// Kinds of WebSphere process a component can be.
const (
	KindDmgr            = "dmgr"
	KindNodeAgent       = "nodeagent"
	KindServer          = "server"
	KindCluster         = "cluster"
	KindMessagingEngine = "messagingEngine"
)

var kinds = []string{KindDmgr, KindNodeAgent, KindServer, KindCluster, KindMessagingEngine}

// Operation names, as used in settings.timeouts.
const (
	OpStart  = "start"
	OpStop   = "stop"
	OpStatus = "status"
)

var operations = []string{OpStart, OpStop, OpStatus}

// Defaults.
const (
	DefaultTimeout      = 10 * time.Minute
	DefaultKillGrace    = 10 * time.Second
	DefaultPollInterval = 10 * time.Second
)

type settings struct {
	Kind            string                      `json:"kind"`
	ProfilePath     string                      `json:"profilePath"`
	Server          string                      `json:"server"`
	Node            string                      `json:"node"`
	Cluster         string                      `json:"cluster"`
	MessagingEngine string                      `json:"messagingEngine"`
	Username        string                      `json:"username"`
	Password        secret.Ref                  `json:"password"`
	Timeout         drivers.Duration            `json:"timeout"`
	Timeouts        map[string]drivers.Duration `json:"timeouts"`
	KillGrace       drivers.Duration            `json:"killGrace"`
	PollInterval    drivers.Duration            `json:"pollInterval"`
}

// config is settings checked.
type config struct {
	settings
	timeouts  map[string]time.Duration
	killGrace time.Duration
	poll      time.Duration
}

// Names WebSphere accepts for servers, nodes, clusters and engines, narrowed
// to what can be pasted into a wsadmin script without quoting trouble.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._ -]*$`)

// Driver is the WebSphere middleware driver. It holds no state between calls.
type Driver struct {
	logger *zap.Logger
	hosts  *hostrun.Hosts
}

var (
	_ drivers.Middleware      = (*Driver)(nil)
	_ drivers.SettingsChecker = (*Driver)(nil)
)

// New returns the WebSphere driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{logger: logger, hosts: hostrun.NewHosts(logger.Named("ssh"))}
}

// CheckSettings checks the settings without running anything.
func (d *Driver) CheckSettings(s map[string]any) error {
	_, err := parse(s)
	return err
}

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, drivers.BadSettingsf("websphere driver %w", err)
	}
	c, err := s.check()
	if err != nil {
		return nil, drivers.BadSettingsf("websphere driver settings: %w", err)
	}
	return c, nil
}

func (s settings) check() (*config, error) {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	switch s.Kind {
	case "":
		bad("kind: required (one of %s)", strings.Join(kinds, ", "))
	case KindDmgr, KindNodeAgent, KindServer, KindCluster, KindMessagingEngine:
	default:
		bad("kind: %q is not one of %s", s.Kind, strings.Join(kinds, ", "))
	}
	if s.ProfilePath == "" {
		bad("profilePath: required")
	} else if !filepath.IsAbs(s.ProfilePath) {
		bad("profilePath: %q is not an absolute path", s.ProfilePath)
	}
	if s.Kind == KindDmgr && s.Server == "" {
		s.Server = "dmgr"
	}
	if s.Kind == KindNodeAgent && s.Server == "" {
		s.Server = "nodeagent"
	}
	need := map[string]string{}
	switch s.Kind {
	case KindServer:
		need["server"] = s.Server
	case KindCluster:
		need["cluster"] = s.Cluster
	case KindMessagingEngine:
		need["messagingEngine"] = s.MessagingEngine
	}
	for field, v := range need {
		if v == "" {
			bad("%s: required for kind %s", field, s.Kind)
		}
	}
	for field, v := range map[string]string{"server": s.Server, "node": s.Node, "cluster": s.Cluster, "messagingEngine": s.MessagingEngine, "username": s.Username} {
		if v != "" && !nameRE.MatchString(v) {
			bad("%s: %q has characters a WebSphere name cannot have", field, v)
		}
	}
	switch {
	case s.Username != "" && s.Password == "":
		bad("password: required with username (a secret reference, env:NAME or file:PATH)")
	case s.Username == "" && s.Password != "":
		bad("password: given without username")
	case s.Password != "":
		if err := s.Password.Check(); err != nil {
			bad("password: %v", err)
		}
	}
	timeouts, err := hostrun.Timeouts(s.Timeout, DefaultTimeout, s.Timeouts, operations)
	if err != nil {
		bad("%v", err)
	}
	if s.KillGrace < 0 {
		bad("killGrace: must be positive")
	}
	if s.PollInterval < 0 {
		bad("pollInterval: must be positive")
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	c := &config{settings: s, timeouts: timeouts, killGrace: s.KillGrace.D(), poll: s.PollInterval.D()}
	if c.killGrace == 0 {
		c.killGrace = DefaultKillGrace
	}
	if c.poll == 0 {
		c.poll = DefaultPollInterval
	}
	return c, nil
}

// credentials returns the -username/-password arguments and the secret to
// redact, or nothing when the profile's soap.client.props holds them.
func (c *config) credentials(userFlag string) ([]string, []string, error) {
	if c.Username == "" {
		return nil, nil, nil
	}
	pw, err := c.Password.Resolve()
	if err != nil {
		// The message names the reference, never a value.
		return nil, nil, fmt.Errorf("websphere driver: password: %w", err)
	}
	return []string{userFlag, c.Username, "-password", pw}, []string{pw}, nil
}

func (c *config) script(name string) string {
	return filepath.Join(c.ProfilePath, "bin", name)
}

// call runs one command of the profile.
func (d *Driver) call(ctx context.Context, c *config, t drivers.Target, op string, argv []string, secrets []string) (drivers.Evidence, string, int, error) {
	r, err := d.hosts.For(t.Host)
	if err != nil {
		return drivers.Evidence{}, "", -1, err
	}
	ev, res, err := hostrun.Run(ctx, r, hostrun.Call{
		Op: "websphere " + op, Argv: argv, Timeout: c.timeouts[op], KillGrace: c.killGrace, Secrets: secrets,
	})
	d.logger.Debug("websphere command", zap.String("op", op), zap.String("component", t.Component.Name),
		zap.String("site", t.Site.Name), zap.String("command", ev.Action), zap.String("result", res.ExitSummary()),
		zap.Duration("took", res.Duration))
	return ev, res.Output, res.ExitCode, err
}

// Status reports the process's, cluster's or engine's state.
func (d *Driver) Status(ctx context.Context, t drivers.Target) (drivers.Status, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Status{}, err
	}
	return d.status(ctx, c, t)
}

func (d *Driver) status(ctx context.Context, c *config, t drivers.Target) (drivers.Status, error) {
	switch c.Kind {
	case KindCluster:
		return d.clusterStatus(ctx, c, t)
	case KindMessagingEngine:
		return d.engineStatus(ctx, c, t)
	}
	return d.serverStatus(ctx, c, t)
}

// Start starts the process, cluster or engine unless it already runs.
func (d *Driver) Start(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	st, err := d.status(ctx, c, t)
	if err != nil {
		return st.Evidence, fmt.Errorf("status before start of %s: %w", t.Component.Name, err)
	}
	if st.State == drivers.StateRunning {
		ev := st.Evidence
		ev.AlreadyDone = true
		ev.Output = drivers.Truncate("already running ("+st.Detail+"); start not run\n"+ev.Output, hostrun.EvidenceLimit)
		return ev, nil
	}
	switch c.Kind {
	case KindCluster, KindMessagingEngine:
		return d.mbeanStartStop(ctx, c, t, st, true, drivers.StopGraceful)
	}
	return d.startServer(ctx, c, t, st)
}

// Stop stops the process, cluster or engine unless it is already stopped.
func (d *Driver) Stop(ctx context.Context, t drivers.Target, mode drivers.StopMode) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	if mode != drivers.StopGraceful && mode != drivers.StopImmediate {
		return drivers.Evidence{}, drivers.BadSettingsf("websphere driver: unknown stop mode %q (want %s or %s)", mode, drivers.StopGraceful, drivers.StopImmediate)
	}
	st, err := d.status(ctx, c, t)
	if err != nil {
		return st.Evidence, fmt.Errorf("status before stop of %s: %w", t.Component.Name, err)
	}
	if st.State == drivers.StateStopped {
		ev := st.Evidence
		ev.AlreadyDone = true
		ev.Output = drivers.Truncate("already stopped ("+st.Detail+"); stop not run\n"+ev.Output, hostrun.EvidenceLimit)
		return ev, nil
	}
	switch c.Kind {
	case KindCluster, KindMessagingEngine:
		return d.mbeanStartStop(ctx, c, t, st, false, mode)
	}
	return d.stopServer(ctx, c, t, st, mode)
}

// --- dmgr, node agent and application server: the profile's scripts ---

// serverStatus.sh output, as documented for the serverStatus command
// (https://www.ibm.com/docs/en/was-nd/9.0.5?topic=tools-serverstatus-command)
// and its ADMU messages:
//
//	ADMU0500I: Retrieving server status for server1
//	ADMU0508I: The Application Server "server1" is STARTED
//	ADMU0509I: The Application Server "server1" cannot be reached. It appears to be stopped.
//	ADMU0522E: No server by this name in the configuration: server9
//
// The process type reads "Deployment Manager" for dmgr and "Node Agent" for
// nodeagent. A secured cell without credentials answers ADMN0022E (access
// denied).
var (
	admu0508 = regexp.MustCompile(`ADMU0508I: The (.+?) "([^"]+)" is ([A-Z]+)`)
	admu0509 = regexp.MustCompile(`ADMU0509I: The (.+?) "([^"]+)" cannot be reached`)
	admu0522 = regexp.MustCompile(`ADMU0522E: No server by this name in the configuration: (\S+)`)
	admn0022 = regexp.MustCompile(`ADMN0022E`)
)

// ServerState is serverStatus.sh's answer for one server.
type ServerState struct {
	// ProcessType is the product's name for it: Application Server,
	// Deployment Manager, Node Agent.
	ProcessType string
	Server      string
	// Status is STARTED, STARTING, STOPPING or STOPPED (cannot be reached).
	Status string
}

// ParseServerStatus reads serverStatus.sh's output for server. It returns
// ErrServerNotFound (marked as bad settings) for ADMU0522E and an error when
// the output says nothing about the server.
func ParseServerStatus(out, server string) (ServerState, error) {
	for _, m := range admu0508.FindAllStringSubmatch(out, -1) {
		if m[2] == server {
			return ServerState{ProcessType: m[1], Server: m[2], Status: m[3]}, nil
		}
	}
	for _, m := range admu0509.FindAllStringSubmatch(out, -1) {
		if m[2] == server {
			return ServerState{ProcessType: m[1], Server: m[2], Status: "STOPPED"}, nil
		}
	}
	if m := admu0522.FindStringSubmatch(out); m != nil {
		return ServerState{Server: m[1]}, drivers.BadSettings(fmt.Errorf("%w: ADMU0522E: no server %q in the profile's configuration", ErrServerNotFound, m[1]))
	}
	if admn0022.MatchString(out) {
		return ServerState{Server: server}, drivers.BadSettings(fmt.Errorf("%w: ADMN0022E: access denied; give username and password, or fix the profile's soap.client.props", ErrAccessDenied))
	}
	return ServerState{Server: server}, fmt.Errorf("no ADMU0508I or ADMU0509I line for server %q in serverStatus output", server)
}

// Errors the product reports that a retry cannot fix.
var (
	ErrServerNotFound = errors.New("server not found")
	ErrAccessDenied   = errors.New("access denied")
)

func (s ServerState) state() drivers.State {
	switch s.Status {
	case "STARTED":
		return drivers.StateRunning
	case "STOPPED":
		return drivers.StateStopped
	case "STARTING":
		return drivers.StateStarting
	}
	return drivers.StateUnknown
}

func (d *Driver) serverStatus(ctx context.Context, c *config, t drivers.Target) (drivers.Status, error) {
	creds, secrets, err := c.credentials("-username")
	if err != nil {
		return drivers.Status{State: drivers.StateUnknown}, err
	}
	argv := append([]string{c.script("serverStatus.sh"), c.Server}, creds...)
	ev, out, _, err := d.call(ctx, c, t, OpStatus, argv, secrets)
	st := drivers.Status{State: drivers.StateUnknown, Evidence: ev}
	if err != nil {
		return st, err
	}
	ss, err := ParseServerStatus(out, c.Server)
	if err != nil {
		return st, fmt.Errorf("websphere status of %s: %w: %s", c.Server, err, hostrun.Short(ev.Output))
	}
	st.State = ss.state()
	st.Detail = fmt.Sprintf("%s %q is %s", ss.ProcessType, ss.Server, ss.Status)
	return st, nil
}

// Start script output (startServer command,
// https://www.ibm.com/docs/en/was-nd/9.0.5?topic=tools-startserver-command;
// startManager and startNode print the same ADMU3000I):
//
//	ADMU3000I: Server server1 open for e-business; process id is 28700
//	ADMU3011E: Server launched but failed initialization. startServer.log, SystemOut.log(or job log in zOS) and other log files under ... should contain failure information.
//	ADMU3027E: An instance of the server may already be running: server1
var (
	admu3000 = regexp.MustCompile(`ADMU3000I: Server (\S+) open for e-business; process id is (\d+)`)
	admu3011 = regexp.MustCompile(`ADMU3011E`)
	admu3027 = regexp.MustCompile(`ADMU3027E: An instance of the server may already be running: (\S+)`)
	// stopServer: "ADMU4000I: Server server1 stop completed."
	admu4000 = regexp.MustCompile(`ADMU4000I: Server (\S+) stop completed`)
)

// ParseStart reads a start script's output: the pid on success,
// alreadyRunning for ADMU3027E, an error otherwise.
func ParseStart(out, server string) (pid int, alreadyRunning bool, err error) {
	if m := admu3000.FindStringSubmatch(out); m != nil && m[1] == server {
		pid, _ = strconv.Atoi(m[2])
		return pid, false, nil
	}
	if m := admu3027.FindStringSubmatch(out); m != nil && m[1] == server {
		return 0, true, nil
	}
	if admu3011.MatchString(out) {
		return 0, false, fmt.Errorf("ADMU3011E: server %s launched but failed initialization (see its SystemOut.log)", server)
	}
	if m := admu0522.FindStringSubmatch(out); m != nil {
		return 0, false, drivers.BadSettings(fmt.Errorf("%w: ADMU0522E: no server %q in the profile's configuration", ErrServerNotFound, m[1]))
	}
	return 0, false, fmt.Errorf("no ADMU3000I (open for e-business) line for server %s", server)
}

func (c *config) startArgv() []string {
	switch c.Kind {
	case KindDmgr:
		return []string{c.script("startManager.sh")}
	case KindNodeAgent:
		return []string{c.script("startNode.sh")}
	}
	return []string{c.script("startServer.sh"), c.Server}
}

func (c *config) stopArgv() []string {
	switch c.Kind {
	case KindDmgr:
		return []string{c.script("stopManager.sh")}
	case KindNodeAgent:
		return []string{c.script("stopNode.sh")}
	}
	return []string{c.script("stopServer.sh"), c.Server}
}

func (d *Driver) startServer(ctx context.Context, c *config, t drivers.Target, before drivers.Status) (drivers.Evidence, error) {
	// Starting needs no credentials: the script launches a process and
	// invokes no MBean.
	ev, out, code, err := d.call(ctx, c, t, OpStart, c.startArgv(), nil)
	all := hostrun.Combine(before.Evidence, ev)
	if err != nil {
		return all, err
	}
	_, already, perr := ParseStart(out, c.Server)
	switch {
	case perr != nil:
		return all, fmt.Errorf("websphere start of %s: %w (exit %d): %s", c.Server, perr, code, hostrun.Short(ev.Output))
	case already:
		// Another start won the race; confirm it runs.
		st, err := d.status(ctx, c, t)
		all = hostrun.Combine(all, st.Evidence)
		if err != nil {
			return all, err
		}
		if st.State != drivers.StateRunning {
			return all, fmt.Errorf("websphere start of %s: ADMU3027E (may already be running) but status says %s", c.Server, st.Detail)
		}
		all.AlreadyDone = true
	}
	return all, nil
}

func (d *Driver) stopServer(ctx context.Context, c *config, t drivers.Target, before drivers.Status, mode drivers.StopMode) (drivers.Evidence, error) {
	var note string
	if mode == drivers.StopImmediate {
		if c.Kind == KindServer && c.Node != "" {
			ev, err := d.stopImmediate(ctx, c, t)
			all := hostrun.Combine(before.Evidence, ev)
			if err == nil || drivers.Permanent(err) || ctx.Err() != nil {
				return all, err
			}
			// No node agent to take the request: the server's own stop
			// script still reaches it.
			before.Evidence = all
			note = "note: immediate stop through wsadmin failed (" + hostrun.Short(err.Error()) + "); ran the normal stop\n"
		} else {
			// The stop scripts have no immediate variant; only a server
			// with its node named can be stopped immediately, by wsadmin.
			note = "note: no immediate stop for " + c.Kind + " without node; ran the normal stop\n"
		}
	}
	creds, secrets, err := c.credentials("-username")
	if err != nil {
		return before.Evidence, err
	}
	ev, out, code, err := d.call(ctx, c, t, OpStop, append(c.stopArgv(), creds...), secrets)
	all := hostrun.Combine(before.Evidence, ev)
	if note != "" {
		all.Output = drivers.Truncate(note+all.Output, hostrun.EvidenceLimit)
	}
	if err != nil {
		return all, err
	}
	if m := admu4000.FindStringSubmatch(out); m != nil && m[1] == c.Server {
		return all, nil
	}
	if admn0022.MatchString(out) {
		return all, drivers.BadSettings(fmt.Errorf("websphere stop of %s: %w: ADMN0022E: give username and password, or fix soap.client.props", c.Server, ErrAccessDenied))
	}
	// No completion line: believe status, not the exit code.
	st, serr := d.status(ctx, c, t)
	all = hostrun.Combine(all, st.Evidence)
	if serr == nil && st.State == drivers.StateStopped {
		return all, nil
	}
	return all, fmt.Errorf("websphere stop of %s: no ADMU4000I (stop completed) line (exit %d): %s", c.Server, code, hostrun.Short(ev.Output))
}

// Immediate stop through wsadmin, as documented under "Stopping servers
// using scripting": AdminControl.stopServer(server, node, "immediate"),
// answered by
//
//	WASX7337I: Invoked stop for server "serverName" Waiting for stop completion.
//	WASX7264I: Stop completed for server "serverName" on node "mynode"
//
// The profile's own wsadmin connects to its node agent.
var wasx7264 = regexp.MustCompile(`WASX7264I: Stop completed for server "([^"]+)" on node "([^"]+)"`)

func (d *Driver) stopImmediate(ctx context.Context, c *config, t drivers.Target) (drivers.Evidence, error) {
	script := `print AdminControl.stopServer("` + c.Server + `", "` + c.Node + `", "immediate")` + "\n" +
		`print "` + resultPrefix + `stopped"` + "\n"
	ev, _, err := d.wsadmin(ctx, c, t, OpStop, script)
	if err != nil {
		return ev, err
	}
	if m := wasx7264.FindStringSubmatch(ev.Output); m == nil || m[1] != c.Server {
		return ev, fmt.Errorf("websphere immediate stop of %s: no WASX7264I (stop completed) line: %s", c.Server, hostrun.Short(ev.Output))
	}
	return ev, nil
}

// --- clusters and messaging engines: wsadmin against the deployment manager ---

// resultPrefix marks the line our wsadmin scripts print, so the parse does
// not depend on wsadmin's own WASX chatter.
const resultPrefix = "DROVER-RESULT "

// wsadmin connection failure, as documented for wsadmin:
//
//	WASX7023E: Error creating "SOAP" connection to host "localhost"; exception information: ...
//	WASX7213I: This scripting client is not connected to a server process; ...
var wasx7023 = regexp.MustCompile(`WASX7023E|WASX7213I`)

func (d *Driver) wsadmin(ctx context.Context, c *config, t drivers.Target, op, script string) (drivers.Evidence, []string, error) {
	creds, secrets, err := c.credentials("-user")
	if err != nil {
		return drivers.Evidence{}, nil, err
	}
	argv := append([]string{c.script("wsadmin.sh"), "-lang", "jython", "-conntype", "SOAP"}, creds...)
	argv = append(argv, "-c", execLine(script))
	ev, out, code, err := d.call(ctx, c, t, op, argv, secrets)
	if err != nil {
		return ev, nil, err
	}
	if wasx7023.MatchString(out) {
		return ev, nil, fmt.Errorf("websphere %s: wsadmin cannot reach the deployment manager (WASX7023E): %s", op, hostrun.Short(ev.Output))
	}
	if admn0022.MatchString(out) {
		return ev, nil, drivers.BadSettings(fmt.Errorf("websphere %s: %w: ADMN0022E", op, ErrAccessDenied))
	}
	var results []string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), strings.TrimSpace(resultPrefix)); ok {
			results = append(results, strings.TrimSpace(v))
		}
	}
	if len(results) == 0 {
		return ev, nil, fmt.Errorf("websphere %s: wsadmin printed no result (exit %d): %s", op, code, hostrun.Short(ev.Output))
	}
	return ev, results, nil
}

// execLine turns a multi-line Jython script into the one line wsadmin's -c
// takes: an exec statement of a single-quoted string. The scripts use
// double quotes only, and names are checked (nameRE), so escaping
// backslashes and newlines is enough.
func execLine(script string) string {
	q := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "'", `\'`).Replace(script)
	return "exec '" + q + "'"
}

// The Cluster MBean's state attribute (documented values of
// "Starting clusters using scripting" and the Cluster MBean):
// websphere.cluster.starting, websphere.cluster.partial.start,
// websphere.cluster.running, websphere.cluster.stopping,
// websphere.cluster.partial.stop, websphere.cluster.stopped. The documented
// procedure first asks the ClusterMgr MBean to retrieveClusters so the
// Cluster MBean exists.
func clusterScript(cluster, action string) string {
	s := `cm = AdminControl.completeObjectName("type=ClusterMgr,*")` + "\n" +
		`if cm: AdminControl.invoke(cm, "retrieveClusters")` + "\n" +
		`c = AdminControl.completeObjectName("type=Cluster,name=` + cluster + `,*")` + "\n"
	if action != "" {
		s += `if c: AdminControl.invoke(c, "` + action + `")` + "\n"
	}
	s += `if c: print "` + resultPrefix + `" + AdminControl.getAttribute(c, "state")` + "\n" +
		`else: print "` + resultPrefix + `none"` + "\n"
	return s
}

// ClusterState maps the Cluster MBean's state to a driver state.
func ClusterState(v string) drivers.State {
	switch v {
	case "websphere.cluster.running":
		return drivers.StateRunning
	case "websphere.cluster.stopped":
		return drivers.StateStopped
	case "websphere.cluster.starting", "websphere.cluster.partial.start":
		return drivers.StateStarting
	}
	return drivers.StateUnknown
}

func (d *Driver) clusterStatus(ctx context.Context, c *config, t drivers.Target) (drivers.Status, error) {
	ev, results, err := d.wsadmin(ctx, c, t, OpStatus, clusterScript(c.Cluster, ""))
	st := drivers.Status{State: drivers.StateUnknown, Evidence: ev}
	if err != nil {
		return st, err
	}
	v := results[len(results)-1]
	if v == "none" {
		return st, drivers.BadSettings(fmt.Errorf("websphere: no cluster %q in the cell", c.Cluster))
	}
	st.State = ClusterState(v)
	st.Detail = fmt.Sprintf("cluster %s is %s", c.Cluster, v)
	return st, nil
}

// The SIBMessagingEngine MBean's state() operation answers Starting,
// Joined, Started, Stopping or Stopped; one MBean exists per running server
// that can host the engine (a cluster's engine is Started on one member and
// Joined on the others). No MBean means no server that hosts it runs.
func engineScript(engine, action string) string {
	s := `ms = [m for m in AdminControl.queryNames("type=SIBMessagingEngine,name=` + engine + `,*").splitlines() if m]` + "\n" +
		`states = [AdminControl.invoke(m, "state") for m in ms]` + "\n"
	switch action {
	case "start":
		s += `if ms and "Started" not in states: AdminControl.invoke(ms[0], "start")` + "\n"
	case "stop":
		s += "for i in range(len(ms)):\n" +
			`    if states[i] == "Started": AdminControl.invoke(ms[i], "stop")` + "\n"
	case "stopImmediate":
		s += "for i in range(len(ms)):\n" +
			`    if states[i] == "Started": AdminControl.invoke(ms[i], "stop", "[IMMEDIATE]", "[java.lang.String]")` + "\n"
	}
	s += `states = [AdminControl.invoke(m, "state") for m in ms]` + "\n" +
		`print "` + resultPrefix + `" + (",".join(states) or "none")` + "\n"
	return s
}

// EngineState maps the engine MBeans' states (comma separated, one per
// hosting server) to a driver state.
func EngineState(v string) drivers.State {
	if v == "none" || v == "" {
		return drivers.StateStopped
	}
	states := strings.Split(v, ",")
	has := func(s string) bool {
		for _, x := range states {
			if strings.TrimSpace(x) == s {
				return true
			}
		}
		return false
	}
	switch {
	case has("Started"):
		return drivers.StateRunning
	case has("Starting"):
		return drivers.StateStarting
	case has("Stopping"):
		return drivers.StateUnknown
	}
	for _, x := range states {
		switch strings.TrimSpace(x) {
		case "Joined", "Stopped":
		default:
			return drivers.StateUnknown
		}
	}
	return drivers.StateStopped
}

func (d *Driver) engineStatus(ctx context.Context, c *config, t drivers.Target) (drivers.Status, error) {
	ev, results, err := d.wsadmin(ctx, c, t, OpStatus, engineScript(c.MessagingEngine, ""))
	st := drivers.Status{State: drivers.StateUnknown, Evidence: ev}
	if err != nil {
		return st, err
	}
	v := results[len(results)-1]
	st.State = EngineState(v)
	st.Detail = fmt.Sprintf("messaging engine %s: %s", c.MessagingEngine, v)
	if v == "none" {
		st.Detail = fmt.Sprintf("messaging engine %s: no MBean (no server hosting it runs)", c.MessagingEngine)
	}
	return st, nil
}

// mbeanStartStop invokes the start or stop operation, then polls status
// until the wanted state or the operation's timeout.
func (d *Driver) mbeanStartStop(ctx context.Context, c *config, t drivers.Target, before drivers.Status, start bool, mode drivers.StopMode) (drivers.Evidence, error) {
	op, action, want := OpStop, "stop", drivers.StateStopped
	if start {
		op, action, want = OpStart, "start", drivers.StateRunning
	} else if mode == drivers.StopImmediate {
		action = "stopImmediate"
	}
	var script, what string
	if c.Kind == KindCluster {
		script, what = clusterScript(c.Cluster, action), "cluster "+c.Cluster
	} else {
		if start && before.Detail != "" && strings.Contains(before.Detail, "no MBean") {
			return before.Evidence, fmt.Errorf("websphere start of messaging engine %s: no server hosting it runs; start its server or cluster first", c.MessagingEngine)
		}
		script, what = engineScript(c.MessagingEngine, action), "messaging engine "+c.MessagingEngine
	}
	ev, _, err := d.wsadmin(ctx, c, t, op, script)
	all := hostrun.Combine(before.Evidence, ev)
	if err != nil {
		return all, err
	}
	deadline := time.Now().Add(c.timeouts[op])
	for {
		st, err := d.status(ctx, c, t)
		if err == nil && st.State == want {
			all = hostrun.Combine(all, st.Evidence)
			return all, nil
		}
		if time.Now().Add(c.poll).After(deadline) {
			all = hostrun.Combine(all, st.Evidence)
			if err != nil {
				return all, fmt.Errorf("websphere %s of %s: %w", action, what, err)
			}
			return all, fmt.Errorf("websphere %s of %s: still %s after %s (%s)", action, what, st.State, c.timeouts[op], st.Detail)
		}
		select {
		case <-ctx.Done():
			return all, fmt.Errorf("websphere %s of %s: %w", action, what, ctx.Err())
		case <-time.After(c.poll):
		}
	}
}
