// Package lab is a two-site IBM-BPM-like cell on loopback: real OS processes
// keeping real state in SQLite databases and files. It is the target of
// drover's demo, end-to-end tests and benchmarks, and it fails the way real
// cells fail. drover's workflows never know it is a lab: they reach it only
// through the lab drivers (drivers/lab), like any other cell.
//
// # Topology and layout
//
// A Topology (lab.json at the top of the lab dir) lists the sites and the
// servers. Every site runs the same servers on the same ports; sites differ
// by loopback host (127.0.1.1, 127.0.2.1, 127.0.3.1), like data centers on
// different subnets. Under the lab dir:
//
//	lab.json                          the topology
//	frontdoor.json                    where the front door routes orders
//	ledger/<site>.<server>.jsonl      every committed step, outside every site
//	sites/<site>/installation.json    product versions and fix levels (checked, never copied)
//	sites/<site>/data/<server>/config profile: server.json, resources.json, cell.json
//	sites/<site>/data/<server>/runtime transaction log; the database server's BPMDB.db, MONDB.db, MEDB.db
//	sites/<site>/run, logs            pid files and logs (re-creatable)
//
// sites/<site>/data is the seed's NFS /home: everything a site needs to come
// back is in it, so storage drivers capture and restore it whole.
//
// # Servers
//
// Every server is the same executable run as "drover lab serve" (see
// ServeMain and RunIfServer), detached in its own session. At start a server
// reads its site's installation manifest and its profile, checks that the
// installation is the one the profile was made with, checks what its role
// needs (dmgr: the database; node agent: the dmgr; messaging engine: the
// database and its node agent; support: its product's engine; app: its
// engine and a support server) using the addresses in its own
// configuration, and refuses to start with a clear message otherwise. An
// answer from another site counts as a failure: a restored server whose
// configuration still names the other site says so. Start-up takes a
// realistic time per role, scaled by the time scale.
//
// The database server owns the three SQLite files (WAL) and serves SQL over
// HTTP, including the resource-manager half of two-phase commit: prepare
// (trial run, locks, durable branch), commit, rollback, recover. App servers
// run a transaction manager with a forced transaction log; each navigation
// step of the OrderHandling workload is one global transaction over BPMDB
// and the ME store (and, for Monitor, MONDB), so a crash or a restore at any
// instant leaves either the whole step or none of it, with in-doubt
// transactions resolved from the log at restart (presumed abort otherwise).
// Messaging engines lease messages to consumers; a message's lock at
// prepare makes consumption exclusive.
//
// # Proof and verification
//
// The ledger records each step once its commit is acknowledged; CheckLedger
// says whether a site holds every step committed before an instant and
// nothing twice, and which recovery point (hence RPO) the site reached. Every
// server serves the six verification levels of the seed at /probe/LEVEL
// (system, application, instance, consistency, sca, monitoring).
//
// # Faults
//
// Lab.Signal (kill, freeze, thaw), Lab.Disaster (every server of a site
// killed, its data root made unreachable), Lab.RestoreSite, Lab.Down (every
// process of the lab, including strays found by command line), and
// EnvCrash for crashes at a point of two-phase commit.
package lab
