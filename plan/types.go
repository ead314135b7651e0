// Package plan holds drover's DR plan: its types, strict loading with source
// positions, validation, and the restart tiers derived from component roles.
//
// A plan is written once by the operators of a cell and read by every
// workflow. It travels in workflow inputs, so it must never hold a secret:
// settings carry references (env:NAME, file:PATH) that activities resolve.
package plan

import (
	"encoding/json"
	"fmt"
	"time"
)

// APIVersion is the only plan format this build reads.
const APIVersion = "drover/v1"

// Role is the part a component plays in the cell; it decides restart order.
type Role string

const (
	RoleDatabase  Role = "database"
	RoleDmgr      Role = "dmgr"
	RoleNodeAgent Role = "nodeagent"
	RoleMessaging Role = "messaging"
	RoleSupport   Role = "support"
	RoleApp       Role = "app"
	RoleWebServer Role = "webserver"
	RoleOther     Role = "other"
)

// Roles lists every role in restart order.
var Roles = []Role{RoleDatabase, RoleDmgr, RoleNodeAgent, RoleMessaging, RoleSupport, RoleApp, RoleWebServer, RoleOther}

// NeedsProduct reports whether components of this role belong to one product.
func (r Role) NeedsProduct() bool {
	return r == RoleMessaging || r == RoleSupport || r == RoleApp
}

// Level is one of the six verification levels of the BPM seed, in order.
type Level string

const (
	LevelSystem      Level = "system"
	LevelApplication Level = "application"
	LevelInstance    Level = "instance"
	LevelConsistency Level = "consistency"
	LevelSCA         Level = "sca"
	LevelMonitoring  Level = "monitoring"
)

// Levels lists the six verification levels in the order they run.
var Levels = []Level{LevelSystem, LevelApplication, LevelInstance, LevelConsistency, LevelSCA, LevelMonitoring}

// Fatal reports whether a failure at this level makes a recovery point
// invalid. The seed tolerates instance-level findings, not an abnormal
// system or application level (2.3.3.2); and a cell whose members are not
// consistent with each other makes the backup image invalid (2.4), so a
// failed cross-product consistency check is fatal too. SCA and monitoring
// failures are findings.
func (l Level) Fatal() bool {
	return l == LevelSystem || l == LevelApplication || l == LevelConsistency
}

// DataClass is a class of data from the BPM seed's classification.
type DataClass string

const (
	DataConfiguration DataClass = "configuration"
	DataRuntime       DataClass = "runtime"
)

// DriverKind names the four kinds of driver a plan can refer to.
type DriverKind string

const (
	KindMiddleware DriverKind = "middleware"
	KindStorage    DriverKind = "storage"
	KindProbe      DriverKind = "probe"
	KindRedirect   DriverKind = "redirect"
	KindNotify     DriverKind = "notify"
	// KindReplicator is a middleware driver that also replicates (seed,
	// lag, promote, fence, reseed, switchover): a replicated component's.
	KindReplicator DriverKind = "replicator"
)

// Settings are a driver's own settings, decoded strictly by that driver.
type Settings map[string]any

// Pos is where something was written in the plan file.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// Plan is a whole DR plan.
type Plan struct {
	APIVersion   string        `yaml:"apiVersion" json:"apiVersion"`
	Name         string        `yaml:"name" json:"name"`
	Description  string        `yaml:"description,omitempty" json:"description,omitempty"`
	RPO          Duration      `yaml:"rpo" json:"rpo"`
	RTO          Duration      `yaml:"rto" json:"rto"`
	Products     []string      `yaml:"products" json:"products"`
	Sites        Sites         `yaml:"sites" json:"sites"`
	Components   []Component   `yaml:"components" json:"components"`
	Storage      Storage       `yaml:"storage" json:"storage"`
	Verification Verification  `yaml:"verification" json:"verification"`
	Approvers    []Approver    `yaml:"approvers,omitempty" json:"approvers,omitempty"`
	Gates        []Gate        `yaml:"gates,omitempty" json:"gates,omitempty"`
	Redirect     *DriverRef    `yaml:"redirect,omitempty" json:"redirect,omitempty"`
	Environment  []Rewrite     `yaml:"environment,omitempty" json:"environment,omitempty"`
	External     []DriverCheck `yaml:"external,omitempty" json:"external,omitempty"`
	// SiteChecks are what must hold at the secondary for a restore there to
	// work (seed 000 §3), checked at plan apply and before a failover.
	SiteChecks *SiteChecks `yaml:"siteChecks,omitempty" json:"siteChecks,omitempty"`
	// Recovery are the checks that say in-flight work is recovered after a
	// restart (the seed's step 9): instances resumed, in-doubt transactions
	// resolved. The failover waits until they all pass.
	Recovery []DriverCheck `yaml:"recovery,omitempty" json:"recovery,omitempty"`

	// Priorities are the priority classes components belong to, most
	// urgent first; DefaultPriorities when left out. A failover may bring
	// up only some classes (those marked first, or the ones asked for) and
	// the rest in a follow-up run from the same point (seed 003).
	Priorities []PriorityClass `yaml:"priorities,omitempty" json:"priorities,omitempty"`

	// Steps are the operators' own steps, each run before or after a
	// named phase of a failover, failback, drill or backup.
	Steps []UserStep `yaml:"steps,omitempty" json:"steps,omitempty"`

	// Notify says whom drover tells when a gate waits, a run starts or
	// ends, or the RPO is breached or recovered: webhook receivers
	// (generic JSON, Slack, Alertmanager), URLs and tokens by reference.
	Notify Settings `yaml:"notify,omitempty" json:"notify,omitempty"`

	// Order is the restart tiers, derived once when the plan is loaded
	// (Derive) and carried in every run, so a run decides its order from
	// its input, not from the code that derives it.
	Order []Tier `yaml:"-" json:"order,omitempty"`

	// Source is the file the plan was loaded from.
	Source string `yaml:"-" json:"source,omitempty"`

	// src remembers where each field was written so validation can point
	// at it. It does not travel in JSON: a plan rebuilt from workflow input
	// still validates, only without line numbers.
	src *source
}

// Site roles, as (*Plan).Site takes them.
const (
	SitePrimary   = "primary"
	SiteSecondary = "secondary"
	SiteSandbox   = "sandbox"
)

// Sites are the places a cell can run. Sandbox is optional: an isolated site
// for drills and backup validation.
type Sites struct {
	Primary   *Site `yaml:"primary" json:"primary"`
	Secondary *Site `yaml:"secondary" json:"secondary"`
	Sandbox   *Site `yaml:"sandbox,omitempty" json:"sandbox,omitempty"`
}

// Site is one data center; drivers read its settings (addresses, paths).
type Site struct {
	Name     string   `yaml:"name" json:"name"`
	Settings Settings `yaml:"settings,omitempty" json:"settings,omitempty"`
	// Installation is the site's installation manifest (product versions
	// and fix levels, JSON), checked before a failover and never copied.
	// ${VAR} is expanded on the worker; a #key.path suffix compares only
	// that part of the document (the versions, not the host name).
	Installation string `yaml:"installation,omitempty" json:"installation,omitempty"`
	// Hosts are the site's machines by name. A site that is one machine
	// may leave them out: its worker acts on its own host.
	Hosts map[string]Host `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	// HostMap names this site's host for a host name the primary uses,
	// where the two sites name their machines differently.
	HostMap map[string]string `yaml:"hostMap,omitempty" json:"hostMap,omitempty"`
	Pos     Pos               `yaml:"-" json:"-"`
}

// Host is one machine of a site.
type Host struct {
	// Name is the host's key in the site's hosts.
	Name    string `yaml:"-" json:"name"`
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Worker says a drover worker runs on this host (drover worker --site S
	// --host H): the steps placed on it go to its own task queue.
	Worker bool `yaml:"worker,omitempty" json:"worker,omitempty"`
	// SSH reaches a host that has no worker from its site's worker: user,
	// key (a secret reference), knownHosts, port.
	SSH Settings `yaml:"ssh,omitempty" json:"ssh,omitempty"`
	Pos Pos      `yaml:"-" json:"-"`
}

// Host returns the host of this site that stands for name (a host name as
// the primary uses it): the site's own host of that name, or the one its
// hostMap names. The empty name is the site's only host, if it has one.
func (s *Site) Host(name string) (Host, bool) {
	if s == nil {
		return Host{}, false
	}
	if name == "" {
		if len(s.Hosts) == 1 {
			for _, h := range s.Hosts {
				return h, true
			}
		}
		return Host{}, len(s.Hosts) == 0
	}
	if mapped, ok := s.HostMap[name]; ok {
		name = mapped
	}
	h, ok := s.Hosts[name]
	return h, ok
}

// Component is one server of the cell.
type Component struct {
	Name     string   `yaml:"name" json:"name"`
	Role     Role     `yaml:"role" json:"role"`
	Product  string   `yaml:"product,omitempty" json:"product,omitempty"`
	Driver   string   `yaml:"driver" json:"driver"`
	Settings Settings `yaml:"settings,omitempty" json:"settings,omitempty"`
	// Host is the machine the component runs on, by the name the primary
	// site uses (see Site.HostMap); empty on a site that is one machine.
	Host  string   `yaml:"host,omitempty" json:"host,omitempty"`
	After []string `yaml:"after,omitempty" json:"after,omitempty"`
	// Optional components may be skipped at the start-failed gate.
	Optional bool `yaml:"optional,omitempty" json:"optional,omitempty"`
	// Priority is the component's priority class (one of the plan's
	// priorities); empty is the first class.
	Priority string `yaml:"priority,omitempty" json:"priority,omitempty"`
	// Readiness is the probe that says the component is up after a start;
	// without one, the driver's status is used.
	Readiness *DriverCheck `yaml:"readiness,omitempty" json:"readiness,omitempty"`
	// StartTimeout bounds one start attempt including readiness.
	StartTimeout Duration `yaml:"startTimeout,omitempty" json:"startTimeout,omitempty"`
	// Replication says the component is protected by its own replication
	// to a standby at the other site (PostgreSQL streaming replication,
	// DB2 HADR) instead of by the storage groups: a failover promotes the
	// standby rather than restoring the component from a point.
	Replication *Replication `yaml:"replication,omitempty" json:"replication,omitempty"`
	// OnFailure is what a run does when the component still does not
	// start after its retries; empty takes its role's default
	// (DefaultFailurePolicy).
	OnFailure FailurePolicy `yaml:"onFailure,omitempty" json:"onFailure,omitempty"`
	Pos       Pos           `yaml:"-" json:"-"`
}

// Replication places a replicated component's standby.
type Replication struct {
	// Standby is the site that holds the standby: the secondary site's name.
	Standby string `yaml:"standby" json:"standby"`
	Pos     Pos    `yaml:"-" json:"-"`
}

// Replicated reports whether the component is protected by replication.
func (c Component) Replicated() bool { return c.Replication != nil }

// ReplicatedComponents lists the components protected by replication, in
// plan order.
func (p *Plan) ReplicatedComponents() []Component {
	var out []Component
	for _, c := range p.Components {
		if c.Replicated() {
			out = append(out, c)
		}
	}
	return out
}

// FailurePolicy is what a run does with a component that does not start
// (the PureApplication seed's per-component failure table).
type FailurePolicy string

const (
	// PolicyRestart stops the component and starts it once more, then asks
	// at the start-failed gate: persistent servers are restarted once at
	// the same address.
	PolicyRestart FailurePolicy = "restart"
	// PolicyRecreate restores the component's own data from the run's
	// point, applies the environment changes again and starts it, then asks
	// at the gate: a non-persistent server is re-created with no side effect.
	PolicyRecreate FailurePolicy = "recreate"
	// PolicyTakeover promotes the database's standby at the site (DB2 HADR
	// takeover, PostgreSQL promote), then waits for it to answer.
	PolicyTakeover FailurePolicy = "takeover"
	// PolicyGate asks a person at the start-failed gate at once.
	PolicyGate FailurePolicy = "gate"
)

// FailurePolicies lists the policies a plan may name.
var FailurePolicies = []FailurePolicy{PolicyRestart, PolicyRecreate, PolicyTakeover, PolicyGate}

// DefaultFailurePolicy is a role's policy when the plan names none, after
// the PureApplication seed's table: the database and the shared services
// (messaging, support, web servers as proxies) are persistent and restarted
// once at the same address; application servers are non-persistent and
// re-created; the deployment manager, node agents and anything else are the
// deployer's to debug, so a person decides.
func DefaultFailurePolicy(r Role) FailurePolicy {
	switch r {
	case RoleDatabase, RoleMessaging, RoleSupport, RoleWebServer:
		return PolicyRestart
	case RoleApp:
		return PolicyRecreate
	}
	return PolicyGate
}

// FailurePolicy is the component's policy: its own, else its role's default.
func (c Component) FailurePolicy() FailurePolicy {
	if c.OnFailure != "" {
		return c.OnFailure
	}
	return DefaultFailurePolicy(c.Role)
}

// Storage describes how the cell's data is captured.
type Storage struct {
	// Store is where recovery points live. Its site and host keys say which
	// site holds it (the secondary when left out); Parse moves them to
	// StoreAt so the store's own settings are only the backend's.
	Store   Settings  `yaml:"store,omitempty" json:"store,omitempty"`
	StoreAt StoreSite `yaml:"-" json:"storeAt,omitzero"`
	// ReverseStore is where backups go while the secondary is the primary
	// (after a failover, until the failback): a store the old primary can
	// restore from, so the cell stays protected (seed 001's reprotect).
	// Its site and host keys place it like Store's.
	ReverseStore   Settings           `yaml:"reverseStore,omitempty" json:"reverseStore,omitempty"`
	ReverseStoreAt StoreSite          `yaml:"-" json:"reverseStoreAt,omitzero"`
	Groups         []ConsistencyGroup `yaml:"groups" json:"groups"`
	// Schedule says how often points are taken and validated.
	Schedule BackupSchedule `yaml:"schedule,omitempty" json:"schedule,omitempty"`
}

// UserStep is an operator's own step in a run (seed 004's post-restore
// work, VMware SRM's callouts): a probe driver's call (exec, locally or
// over the host's SSH; sql; http; tcp) or a manual step (a gate with its
// checklist), before or after one phase.
type UserStep struct {
	Name string `yaml:"name" json:"name"`
	// Before or After names the phase (one of StepPhases); exactly one.
	Before string `yaml:"before,omitempty" json:"before,omitempty"`
	After  string `yaml:"after,omitempty" json:"after,omitempty"`
	// Tier names the restart tier of the tier phase (TierName).
	Tier string `yaml:"tier,omitempty" json:"tier,omitempty"`
	// Runs limits the step to these kinds of run (failover, failback,
	// drill, backup); empty runs it in every kind that has the phase.
	Runs []string `yaml:"runs,omitempty" json:"runs,omitempty"`
	// Host is the machine the driver acts on, by the primary's name for
	// it, at the site the phase acts on.
	Host     string   `yaml:"host,omitempty" json:"host,omitempty"`
	Driver   string   `yaml:"driver,omitempty" json:"driver,omitempty"`
	Settings Settings `yaml:"settings,omitempty" json:"settings,omitempty"`
	// Gate makes the step manual: the plan's gate that asks, with the
	// step's checklist added to the gate's own.
	Gate      string   `yaml:"gate,omitempty" json:"gate,omitempty"`
	Checklist []string `yaml:"checklist,omitempty" json:"checklist,omitempty"`
	// Timeout bounds the driver call (default 10m).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// OnFailure is abort (the default), continue or gate (step-failed).
	OnFailure string `yaml:"onFailure,omitempty" json:"onFailure,omitempty"`
	Pos       Pos    `yaml:"-" json:"-"`
}

// Phases user steps attach to. Restore, environment, tier, verify and
// redirect belong to failover, failback and drill (a drill has no
// redirect); capture to backups.
const (
	PhaseRestore     = "restore"
	PhaseEnvironment = "environment"
	PhaseTier        = "tier"
	PhaseVerify      = "verify"
	PhaseRedirect    = "redirect"
	PhaseCapture     = "capture"
)

// StepPhases lists the phases a user step may name.
var StepPhases = []string{PhaseRestore, PhaseEnvironment, PhaseTier, PhaseVerify, PhaseRedirect, PhaseCapture}

// StepRuns lists the kinds of run user steps run in.
var StepRuns = []string{"failover", "failback", "drill", "backup"}

// User step failure policies.
const (
	StepAbort    = "abort"
	StepContinue = "continue"
	StepGate     = "gate"
)

// Phase is the phase the step attaches to, and whether it runs after it.
func (s UserStep) Phase() (string, bool) {
	if s.After != "" {
		return s.After, true
	}
	return s.Before, false
}

// RunsIn reports whether the step runs in a run of this kind.
func (s UserStep) RunsIn(kind string) bool {
	if len(s.Runs) == 0 {
		return true
	}
	for _, k := range s.Runs {
		if k == kind {
			return true
		}
	}
	return false
}

// StoreSite is the site, and host of it, that holds the store: the steps
// that read or write the catalog run there.
type StoreSite struct {
	Site string `json:"site,omitempty"`
	Host string `json:"host,omitempty"`
}

// BackupSchedule is the plan's backup policy. The interval itself is derived
// from the RPO (the SAN seed's rule: shorter than the RPO minus the time a
// backup takes to capture and ship); Interval only caps it.
type BackupSchedule struct {
	// Interval, when set, is the longest gap between two backups; the
	// derived interval is used when it is shorter.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// FullEvery takes a full point when the newest full is older (default
	// 168h, weekly); cumulative points in between.
	FullEvery Duration `yaml:"fullEvery,omitempty" json:"fullEvery,omitempty"`
	// Validate says which new points are validated in the sandbox:
	// every, daily (the newest of each day) or none. Parse sets every when
	// the plan has a sandbox and none when it has not: a point nobody
	// restored and started is only known to be intact.
	Validate string `yaml:"validate,omitempty" json:"validate,omitempty"`
	// OnChange takes a point whenever the cell's configuration changes
	// (seed 000 §4.1), so one exists for every configuration it ran with.
	OnChange *ConfigWatch `yaml:"onChange,omitempty" json:"onChange,omitempty"`
	// Cold takes a whole-scope offline backup on its own schedule (seed
	// 000 §2.3.2.1: stop in reverse order, capture, start in order, verify).
	Cold *ColdSchedule `yaml:"cold,omitempty" json:"cold,omitempty"`
}

// ConfigWatch says what makes up the cell's configuration: the primary's
// installation manifest and configuration folders (globs relative to the
// site's data root), fingerprinted at the site every Every.
type ConfigWatch struct {
	Installation bool     `yaml:"installation,omitempty" json:"installation,omitempty"`
	Paths        []string `yaml:"paths,omitempty" json:"paths,omitempty"`
	// Every is how often the fingerprint is taken; the RPO monitor's
	// interval when left out.
	Every Duration `yaml:"every,omitempty" json:"every,omitempty"`
}

// ColdSchedule is the schedule of cold (offline) backups.
type ColdSchedule struct {
	Every Duration `yaml:"every" json:"every"`
	// Approve waits at the cold-backup gate before the cell is stopped.
	Approve bool `yaml:"approve,omitempty" json:"approve,omitempty"`
}

// ConsistencyGroup is everything captured at one instant.
type ConsistencyGroup struct {
	Name       string      `yaml:"name" json:"name"`
	Driver     string      `yaml:"driver" json:"driver"`
	Classes    []DataClass `yaml:"classes" json:"classes"`
	Components []string    `yaml:"components,omitempty" json:"components,omitempty"`
	Quiesce    bool        `yaml:"quiesce,omitempty" json:"quiesce,omitempty"`
	Settings   Settings    `yaml:"settings,omitempty" json:"settings,omitempty"`
	// Host is the machine the group's data lives on, by the primary's
	// name for it; empty on a site that is one machine.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	Pos  Pos    `yaml:"-" json:"-"`
}

// Verification holds the checks of each of the six levels.
type Verification struct {
	System      []DriverCheck `yaml:"system,omitempty" json:"system,omitempty"`
	Application []DriverCheck `yaml:"application,omitempty" json:"application,omitempty"`
	Instance    []DriverCheck `yaml:"instance,omitempty" json:"instance,omitempty"`
	Consistency []DriverCheck `yaml:"consistency,omitempty" json:"consistency,omitempty"`
	SCA         []DriverCheck `yaml:"sca,omitempty" json:"sca,omitempty"`
	Monitoring  []DriverCheck `yaml:"monitoring,omitempty" json:"monitoring,omitempty"`
}

// Checks returns the checks of one level.
func (v Verification) Checks(l Level) []DriverCheck {
	switch l {
	case LevelSystem:
		return v.System
	case LevelApplication:
		return v.Application
	case LevelInstance:
		return v.Instance
	case LevelConsistency:
		return v.Consistency
	case LevelSCA:
		return v.SCA
	case LevelMonitoring:
		return v.Monitoring
	}
	return nil
}

// DriverCheck is one probe: a driver name and its settings.
type DriverCheck struct {
	Name     string   `yaml:"name" json:"name"`
	Driver   string   `yaml:"driver" json:"driver"`
	Settings Settings `yaml:"settings,omitempty" json:"settings,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Pos      Pos      `yaml:"-" json:"-"`
}

// DriverRef names a driver and its settings.
type DriverRef struct {
	Driver   string   `yaml:"driver" json:"driver"`
	Settings Settings `yaml:"settings,omitempty" json:"settings,omitempty"`
	// Check confirms traffic arrives through the redirect.
	Check *DriverCheck `yaml:"check,omitempty" json:"check,omitempty"`
	Pos   Pos          `yaml:"-" json:"-"`
}

// Approver is a person who may approve gates.
type Approver struct {
	Name      string `yaml:"name" json:"name"`
	Email     string `yaml:"email,omitempty" json:"email,omitempty"`
	PublicKey string `yaml:"publicKey,omitempty" json:"publicKey,omitempty"`
	Pos       Pos    `yaml:"-" json:"-"`
}

// Approvers are the names of the people who may decide a gate, or the
// word none.
type Approvers []string

// Escalation says what a gate does when its timeout passes.
type Escalation string

const (
	EscalateAbort  Escalation = "abort"
	EscalateRemind Escalation = "remind"
)

// Gate is a manual step: who may approve it, how many must, and for how long
// the run waits.
type Gate struct {
	Name      string    `yaml:"name" json:"name"`
	Approvers Approvers `yaml:"approvers" json:"approvers"`
	// NoApproval is set by approvers: none, the plan's explicit word that
	// the gate needs nobody; the run passes it and the report says so.
	NoApproval bool `yaml:"-" json:"noApproval,omitempty"`
	// Quorum is how many distinct approvers must approve; Parse sets 1
	// when the plan leaves it out.
	Quorum int `yaml:"quorum,omitempty" json:"quorum,omitempty"`
	// Timeout is how long the run waits; 0 waits for ever.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// OnTimeout is abort or remind; Parse sets abort when left out.
	OnTimeout Escalation `yaml:"onTimeout,omitempty" json:"onTimeout,omitempty"`
	Checklist []string   `yaml:"checklist,omitempty" json:"checklist,omitempty"`
	Pos       Pos        `yaml:"-" json:"-"`
}

// Rewrite is an environment-specific change applied after a restore (the
// seed's step 5): in the files matching Files, or in the database SQL
// names, Primary becomes Secondary.
type Rewrite struct {
	Name  string   `yaml:"name" json:"name"`
	Files []string `yaml:"files,omitempty" json:"files,omitempty"`
	// SQL changes values held in a database (host names, endpoints in a
	// configuration table) instead of text in files.
	SQL       *SQLRewrite `yaml:"sql,omitempty" json:"sql,omitempty"`
	Primary   string      `yaml:"primary" json:"primary"`
	Secondary string      `yaml:"secondary" json:"secondary"`
	// Sandbox is the value at the sandbox site, for drills and validation.
	Sandbox string `yaml:"sandbox,omitempty" json:"sandbox,omitempty"`
	Pos     Pos    `yaml:"-" json:"-"`
}

// SQLRewrite is a rewrite of values held in a PostgreSQL database, run by
// the sql driver at the site being restored. Statement runs with $1 = the
// value at that site and $2 = the value it replaces; it must select the rows
// by $2 (UPDATE endpoints SET host = $1 WHERE host = $2), so running it twice
// changes nothing more.
type SQLRewrite struct {
	// DSN is a secret reference (env:NAME or file:PATH, a template) to a
	// libpq connection string or URL.
	DSN string `yaml:"dsn" json:"dsn"`
	// Password is a secret reference overriding the DSN's password.
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// Host, Port and Database override the DSN's (templates).
	Host      string   `yaml:"host,omitempty" json:"host,omitempty"`
	Port      string   `yaml:"port,omitempty" json:"port,omitempty"`
	Database  string   `yaml:"database,omitempty" json:"database,omitempty"`
	Statement string   `yaml:"statement" json:"statement"`
	Timeout   Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// SiteChecks are the seed's installation and configuration prerequisites
// of a restore at the secondary (000 §3), each checked by name there.
type SiteChecks struct {
	// Hosts must resolve at the secondary to the same addresses as at the
	// primary (000 §3.1.1: same host names and IP addresses at both sites).
	Hosts []HostCheck `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	// Mounts are the shared file systems that must be mounted at the
	// secondary (000 §3.1.3).
	Mounts []MountCheck `yaml:"mounts,omitempty" json:"mounts,omitempty"`
	// Paths must exist at the secondary: the database's installation path
	// and instance home (000 §3.2.1), the products' installation paths.
	Paths []string `yaml:"paths,omitempty" json:"paths,omitempty"`
	// Probes check the database instance and its users at the secondary
	// through a probe driver (sql, exec, tcp).
	Probes []DriverCheck `yaml:"probes,omitempty" json:"probes,omitempty"`
}

// HostCheck is a host name that must answer with the same addresses at
// both sites; Addresses, when given, are the ones it must resolve to.
type HostCheck struct {
	Name      string   `yaml:"name" json:"name"`
	Addresses []string `yaml:"addresses,omitempty" json:"addresses,omitempty"`
	Pos       Pos      `yaml:"-" json:"-"`
}

// MountCheck is a path that must be a mount point, of Type when given
// (nfs matches nfs and nfs4), and writable when Writable.
type MountCheck struct {
	Path     string `yaml:"path" json:"path"`
	Type     string `yaml:"type,omitempty" json:"type,omitempty"`
	Writable bool   `yaml:"writable,omitempty" json:"writable,omitempty"`
	Pos      Pos    `yaml:"-" json:"-"`
}

// Tier is a set of components that start in parallel.
type Tier struct {
	Index      int      `json:"index"`
	Components []string `json:"components"`
}

// Duration is a time.Duration written as a Go duration string ("15m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a Go duration string, so plans in
// workflow inputs read the way they were written.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string ("15m").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid duration %s: want a string such as \"15m\"", string(b))
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a Go duration string. Parse does not use it (it walks
// the node tree itself); it is here for code that decodes plan types directly.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as 90s, 15m or 1h30m", s)
	}
	return v, nil
}

// Value returns the rewrite's value at the site playing role (primary,
// secondary or sandbox), and whether it has one.
func (r Rewrite) Value(role string) (string, bool) {
	switch role {
	case "primary":
		return r.Primary, r.Primary != ""
	case "secondary":
		return r.Secondary, r.Secondary != ""
	case "sandbox":
		return r.Sandbox, r.Sandbox != ""
	}
	return "", false
}

// PriorityClass is one class of components brought up together.
type PriorityClass struct {
	Name string `yaml:"name" json:"name"`
	// First marks the classes a failover brings up when it is not told
	// which: the rest waits for a follow-up run.
	First bool `yaml:"first,omitempty" json:"first,omitempty"`
	Pos   Pos  `yaml:"-" json:"-"`
}

// DefaultPriorities are the classes of a plan that names none.
var DefaultPriorities = []PriorityClass{{Name: "critical"}, {Name: "important"}, {Name: "deferred"}}

// PriorityClasses are the plan's classes, or the default ones.
func (p *Plan) PriorityClasses() []PriorityClass {
	if len(p.Priorities) > 0 {
		return p.Priorities
	}
	return DefaultPriorities
}

// PriorityOf is the component's class: its own, else the first class.
func (p *Plan) PriorityOf(c Component) string {
	if c.Priority != "" {
		return c.Priority
	}
	return p.PriorityClasses()[0].Name
}

// FirstClasses are the classes marked first; none means every class.
func (p *Plan) FirstClasses() []string {
	var out []string
	for _, pc := range p.Priorities {
		if pc.First {
			out = append(out, pc.Name)
		}
	}
	return out
}

// ComponentsOf lists, in plan order, the components of the given classes.
func (p *Plan) ComponentsOf(classes []string) []string {
	var out []string
	for _, c := range p.Components {
		for _, cl := range classes {
			if p.PriorityOf(c) == cl {
				out = append(out, c.Name)
				break
			}
		}
	}
	return out
}
