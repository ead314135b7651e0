// Package builtin assembles the registry of every driver drover ships, so the
// worker and the CLI's plan validation resolve the same names.
package builtin

import (
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	db2driver "github.com/drover-dr/drover/drivers/db2"
	execdriver "github.com/drover-dr/drover/drivers/exec"
	labdriver "github.com/drover-dr/drover/drivers/lab"
	mqdriver "github.com/drover-dr/drover/drivers/mq"
	"github.com/drover-dr/drover/drivers/notify"
	"github.com/drover-dr/drover/drivers/postgres"
	"github.com/drover-dr/drover/drivers/probe"
	"github.com/drover-dr/drover/drivers/probe/sqlprobe"
	dnsdriver "github.com/drover-dr/drover/drivers/redirect/dns"
	"github.com/drover-dr/drover/drivers/redirect/haproxy"
	"github.com/drover-dr/drover/drivers/storage/archive"
	"github.com/drover-dr/drover/drivers/storage/btrfs"
	"github.com/drover-dr/drover/drivers/storage/lvm"
	"github.com/drover-dr/drover/drivers/websphere"
)

// Registry returns a registry holding every built-in driver.
func Registry(logger *zap.Logger) *drivers.Registry {
	if logger == nil {
		logger = zap.NewNop()
	}
	r := drivers.NewRegistry()
	// Each driver package adds its line here.
	r.RegisterMiddleware("exec", execdriver.New(logger.Named("exec")))
	r.RegisterProbe("http", probe.NewHTTP(logger.Named("probe.http")))
	r.RegisterProbe("tcp", probe.NewTCP(logger.Named("probe.tcp")))
	r.RegisterProbe("exec", probe.NewExec(logger.Named("probe.exec")))
	r.RegisterMiddleware("lab", labdriver.NewMiddleware(logger.Named("lab")))
	r.RegisterProbe("lab", labdriver.NewProbe(logger.Named("probe.lab")))
	r.RegisterRedirect("lab", labdriver.NewRedirect(logger.Named("redirect.lab")))
	r.RegisterMiddleware("postgres", postgres.New(logger.Named("postgres")))
	r.RegisterProbe("sql", sqlprobe.New(logger.Named("probe.sql")))
	r.RegisterRedirect("haproxy", haproxy.New(logger.Named("redirect.haproxy")))
	r.RegisterRedirect("dns", dnsdriver.New(logger.Named("redirect.dns")))
	r.RegisterStorage("archive", archive.New(logger.Named("storage.archive")))
	r.RegisterNotifier("webhooks", notify.Checker{})
	r.RegisterStorage("btrfs", btrfs.New(logger.Named("storage.btrfs")))
	r.RegisterStorage("lvm", lvm.New(logger.Named("storage.lvm")))
	r.RegisterMiddleware("websphere", websphere.New(logger.Named("websphere")))
	r.RegisterMiddleware("db2", db2driver.New(logger.Named("db2")))
	r.RegisterMiddleware("mq", mqdriver.New(logger.Named("mq")))
	return r
}
