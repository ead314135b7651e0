package db2

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// HADR roles, states and connect statuses as db2pd prints them (the
// hadr_role, hadr_state and hadr_connect_status monitor elements).
const (
	RolePrimary  = "PRIMARY"
	RoleStandby  = "STANDBY"
	RoleStandard = "STANDARD"

	StatePeer         = "PEER"
	StateDisconnected = "DISCONNECTED"

	ConnectConnected    = "CONNECTED"
	ConnectCongested    = "CONGESTED"
	ConnectDisconnected = "DISCONNECTED"
)

// HADRPair is one primary-standby pair of `db2pd -db X -hadr`: a primary
// with several standbys prints one block per standby.
type HADRPair struct {
	Role          string `json:"role"`
	SyncMode      string `json:"syncMode,omitempty"`
	StandbyID     int    `json:"standbyId,omitempty"`
	State         string `json:"state,omitempty"`
	ConnectStatus string `json:"connectStatus,omitempty"`
	// LogGapBytes is HADR_LOG_GAP(bytes): how far the standby's received
	// log is behind the primary's, averaged by DB2.
	LogGapBytes int64  `json:"logGapBytes"`
	PrimaryHost string `json:"primaryHost,omitempty"`
	StandbyHost string `json:"standbyHost,omitempty"`
	// PrimaryLogTime and StandbyReplayLogTime are as printed
	// ("06/08/2011 13:49:19.000000 (1307566159)").
	PrimaryLogTime       string `json:"primaryLogTime,omitempty"`
	StandbyReplayLogTime string `json:"standbyReplayLogTime,omitempty"`
	// Log positions as "file, page, pos" (PRIMARY_LOG_FILE,PAGE,POS and the
	// standby's received and replayed ones).
	PrimaryLogPos       string `json:"primaryLogPos,omitempty"`
	StandbyLogPos       string `json:"standbyLogPos,omitempty"`
	StandbyReplayLogPos string `json:"standbyReplayLogPos,omitempty"`
}

// logTimeEpoch reads the seconds since the epoch that db2pd prints in
// parentheses after a log time: "06/08/2011 13:49:19.000000 (1307566159)".
var logTimeEpoch = regexp.MustCompile(`\((\d+)\)\s*$`)

// LogTimeLag is PRIMARY_LOG_TIME minus STANDBY_REPLAY_LOG_TIME in seconds:
// how old the last transaction the standby replayed is next to the
// primary's newest. ok is false when either time is missing.
func (p HADRPair) LogTimeLag() (seconds int64, ok bool) {
	a := logTimeEpoch.FindStringSubmatch(p.PrimaryLogTime)
	b := logTimeEpoch.FindStringSubmatch(p.StandbyReplayLogTime)
	if a == nil || b == nil {
		return 0, false
	}
	pt, err1 := strconv.ParseInt(a[1], 10, 64)
	st, err2 := strconv.ParseInt(b[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	if pt < st {
		return 0, true
	}
	return pt - st, true
}

// HADRStatus is what db2pd says about one database.
type HADRStatus struct {
	Database string `json:"database"`
	// InstanceUp is false when db2pd cannot attach (no db2start).
	InstanceUp bool `json:"instanceUp"`
	// Active is true when the database is activated on this member; Mode
	// is the header's word for it (Active, Standby, Active Standby).
	Active bool   `json:"active"`
	Mode   string `json:"mode,omitempty"`
	// Role is the local database's HADR role: PRIMARY, STANDBY or STANDARD.
	Role  string     `json:"role"`
	Pairs []HADRPair `json:"pairs,omitempty"`
}

// Pair returns the first pair (the only one with a single standby).
func (h HADRStatus) Pair() HADRPair {
	if len(h.Pairs) == 0 {
		return HADRPair{Role: h.Role}
	}
	return h.Pairs[0]
}

// Summary is one line for a status detail.
func (h HADRStatus) Summary() string {
	switch {
	case !h.InstanceUp:
		return "instance not started"
	case !h.Active:
		return fmt.Sprintf("instance up; database %s not active", h.Database)
	case h.Role == RoleStandard || len(h.Pairs) == 0:
		return fmt.Sprintf("database %s %s (no HADR)", h.Database, strings.ToLower(h.Mode))
	}
	p := h.Pair()
	return fmt.Sprintf("database %s %s, HADR %s %s %s, log gap %d bytes", h.Database, strings.ToLower(h.Mode), p.Role, p.State, p.ConnectStatus, p.LogGapBytes)
}

// db2pd -db HADRDB -hadr output, as documented under "High availability
// disaster recovery (HADR) monitoring" (Db2 11.1,
// https://www.ibm.com/support/knowledgecenter/en/SSEPGG_11.1.0/com.ibm.db2.luw.admin.ha.doc/doc/c0020950.html):
//
//	Database Member 0 -- Database HADRDB -- Active -- Up 0 days 00:23:17 -- Date 06/08/2011 13:57:23
//
//	                            HADR_ROLE = PRIMARY
//	                          REPLAY_TYPE = PHYSICAL
//	                        HADR_SYNCMODE = SYNC
//	                           STANDBY_ID = 1
//	                        LOG_STREAM_ID = 0
//	                           HADR_STATE = PEER
//	                  PRIMARY_MEMBER_HOST = hostP.ibm.com
//	                  ...
//	                  HADR_CONNECT_STATUS = CONNECTED
//	                  ...
//	                  HADR_LOG_GAP(bytes) = 0
//	                     PRIMARY_LOG_TIME = 06/08/2011 13:49:19.000000 (1307566159)
//	              STANDBY_REPLAY_LOG_TIME = 06/08/2011 13:49:19.000000 (1307566159)
//
// and, when it cannot answer for the database:
//
//	Unable to attach to database manager on member 0.
//	Database HADRDB not activated on database member 0 or this database name cannot be found in the local database directory.
var (
	pdHeader      = regexp.MustCompile(`Database (?:Member|Partition) \d+ -- Database (\S+) -- ([A-Za-z ]+?) -- Up`)
	pdNoAttach    = regexp.MustCompile(`Unable to attach to database manager`)
	pdNotActive   = regexp.MustCompile(`Database (\S+) not activated on database (?:member|partition)`)
	pdFieldLine   = regexp.MustCompile(`^\s*([A-Z_]+(?:\([a-z]+\))?(?:,[A-Z_]+)*)\s+=\s?(.*)$`)
	errNoDB2PDAns = fmt.Errorf("db2pd output has neither a database header nor a known db2pd message")
)

// ParseHADR reads `db2pd -db <database> -hadr` output.
func ParseHADR(out, database string) (HADRStatus, error) {
	h := HADRStatus{Database: database, InstanceUp: true, Role: RoleStandard}
	if pdNoAttach.MatchString(out) {
		h.InstanceUp = false
		return h, nil
	}
	if m := pdNotActive.FindStringSubmatch(out); m != nil && strings.EqualFold(m[1], database) {
		return h, nil
	}
	m := pdHeader.FindStringSubmatch(out)
	if m == nil {
		return h, errNoDB2PDAns
	}
	if !strings.EqualFold(m[1], database) {
		return h, fmt.Errorf("db2pd answered for database %s, not %s", m[1], database)
	}
	h.Active, h.Mode = true, m[2]
	var cur *HADRPair
	for _, line := range strings.Split(out, "\n") {
		f := pdFieldLine.FindStringSubmatch(line)
		if f == nil {
			continue
		}
		key, val := f[1], strings.TrimSpace(f[2])
		if key == "HADR_ROLE" {
			h.Pairs = append(h.Pairs, HADRPair{Role: val})
			cur = &h.Pairs[len(h.Pairs)-1]
			h.Role = val
			continue
		}
		if cur == nil {
			continue
		}
		switch key {
		case "HADR_SYNCMODE":
			cur.SyncMode = val
		case "STANDBY_ID":
			cur.StandbyID, _ = strconv.Atoi(val)
		case "HADR_STATE":
			cur.State = val
		case "HADR_CONNECT_STATUS":
			cur.ConnectStatus = val
		case "HADR_LOG_GAP(bytes)":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return h, fmt.Errorf("db2pd HADR_LOG_GAP(bytes) = %q: not a number", val)
			}
			cur.LogGapBytes = n
		case "PRIMARY_MEMBER_HOST":
			cur.PrimaryHost = val
		case "STANDBY_MEMBER_HOST":
			cur.StandbyHost = val
		case "PRIMARY_LOG_TIME":
			cur.PrimaryLogTime = val
		case "STANDBY_REPLAY_LOG_TIME":
			cur.StandbyReplayLogTime = val
		case "PRIMARY_LOG_FILE,PAGE,POS":
			cur.PrimaryLogPos = val
		case "STANDBY_LOG_FILE,PAGE,POS":
			cur.StandbyLogPos = val
		case "STANDBY_REPLAY_LOG_FILE,PAGE,POS":
			cur.StandbyReplayLogPos = val
		}
	}
	for _, p := range h.Pairs {
		switch p.Role {
		case RolePrimary, RoleStandby, RoleStandard:
		default:
			return h, fmt.Errorf("db2pd HADR_ROLE = %q: not PRIMARY, STANDBY or STANDARD", p.Role)
		}
	}
	return h, nil
}
