package devserver

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
)

const clusterName = "active"

// devDynamicConfig are the values that make one node on loopback responsive.
// Most matter only for a server that starts and stops often and runs few
// workflows at a time.
func devDynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Search attributes added at start are queryable at once, not after
		// the cache's refresh interval.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// Defaults in v1.32, set so an older default cannot silently
		// turn off what drover relies on (updates, schedules).
		dynamicconfig.FrontendEnableUpdateWorkflowExecution.Key(): true,
		dynamicconfig.FrontendEnableSchedules.Key():               true,
		// One partition per task queue: with one matching host, more
		// partitions only add forwarding between them before a poller
		// sees a task.
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		// The UI lists workflows often; the production limit is meant for
		// many tenants on one cluster.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Visibility tasks are picked up when written; the poll interval
		// only bounds how late a missed notification is noticed.
		dynamicconfig.VisibilityProcessorMaxPollInterval.Key(): 2 * time.Second,
		// The default host cache (128k mutable states) is sized for a
		// production history host, not for a process that also runs a
		// worker and a lab.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
		// Idle pollers come back every LongPoll, so a poller not seen for
		// PollerFreshness is gone: a killed site worker is noticed in
		// seconds, not in the minute a production long poll lasts.
		dynamicconfig.MatchingLongPollExpirationInterval.Key(): LongPoll,
	}
}

// LongPoll is how long this server holds an idle poll open.
const LongPoll = 10 * time.Second

// PollerFreshness is how recently a worker must have polled this server's
// queues to count as alive: two and a half idle polls.
const PollerFreshness = LongPoll * 5 / 2

func buildServerOptions(o Options, p ports, db stores, zl *zap.Logger) ([]temporal.ServerOption, error) {
	cfg := buildConfig(o, p, db)
	logger := log.NewZapLogger(zl)
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("build authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("build claim mapper: %w", err)
	}

	dc := devDynamicConfig()
	for k, v := range o.DynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}

	local := func(port int) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	return []temporal.ServerOption{
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		// Static membership: one host per service, known up front, so no
		// ringpop gossip to join and wait for.
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(p.frontendAddr()),
			primitives.HistoryService:  local(p.history),
			primitives.MatchingService: local(p.matching),
			primitives.WorkerService:   local(p.works),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dc),
	}, nil
}

func buildConfig(o Options, p ports, db stores) *config.Config {
	var cfg config.Config
	cfg.Global.Membership.MaxJoinDuration = 30 * time.Second
	cfg.Global.Membership.BroadcastAddress = "127.0.0.1"
	// No metrics listener and no pprof port: nothing extra to collide with.
	if o.TLS != nil {
		cfg.Global.TLS = o.TLS.rootTLS(p.dialHost)
	}

	const defaultStore, visibilityStore = "default", "visibility"
	cfg.Persistence.DefaultStore = defaultStore
	cfg.Persistence.VisibilityStore = defaultStore
	cfg.Persistence.DataStores = map[string]config.DataStore{defaultStore: {SQL: db.defaultStore}}
	if db.visibility != nil {
		cfg.Persistence.VisibilityStore = visibilityStore
		cfg.Persistence.DataStores[visibilityStore] = config.DataStore{SQL: db.visibility}
	}
	cfg.Persistence.NumHistoryShards = db.historyShards

	cfg.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             p.frontendAddr(),
				HTTPAddress:            p.httpAddr(),
			},
		},
	}
	cfg.DCRedirectionPolicy.Policy = "noop"

	internal := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: "127.0.0.1"}}
	}
	cfg.Services = map[string]config.Service{
		"frontend": {RPC: config.RPC{GRPCPort: p.frontend, HTTPPort: p.http, BindOnIP: p.ip}},
		"history":  internal(p.history),
		"matching": internal(p.matching),
		"worker":   internal(p.works),
	}

	cfg.Archival.History.State = "disabled"
	cfg.Archival.Visibility.State = "disabled"
	cfg.NamespaceDefaults.Archival.History.State = "disabled"
	cfg.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// The system worker (schedules, batch operations) reaches the frontend here.
	cfg.PublicClient.HostPort = p.frontendAddr()
	return &cfg
}
