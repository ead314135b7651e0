package activities

import (
	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/storage"
)

// The contract carries plain copies of what drivers and the catalog return,
// so workflow code never imports them.

func groupResult(r storage.Result, ran contract.Ran) contract.GroupResult {
	return contract.GroupResult{Group: r.Group, Instant: r.Instant, Bytes: r.Bytes, Stored: r.Stored, Files: r.Files,
		Evidence: evidence(r.Evidence), Ran: ran}
}

func groupVerify(r storage.VerifyResult) contract.GroupVerify {
	return contract.GroupVerify{Group: r.Group, OK: r.OK, BadFile: r.BadFile, Reason: r.Reason, Bytes: r.Bytes}
}

func validity(v catalog.Validity) contract.Validity {
	return contract.Validity{State: contract.ValidityState(v.State), Reason: v.Reason, Run: v.Run, At: v.At, Findings: v.Findings}
}

func catalogValidity(v contract.Validity) catalog.Validity {
	return catalog.Validity{State: catalog.ValidityState(v.State), Reason: v.Reason, Run: v.Run, At: v.At, Findings: v.Findings}
}

func point(p catalog.Point) contract.Point {
	return contract.Point{ID: p.ID, Plan: p.Plan, Mode: contract.Mode(p.Mode), BaseID: p.BaseID, Instant: p.Instant,
		Started: p.Started, Ended: p.Ended, Size: p.Size, DataSize: p.DataSize, Consistency: string(p.Consistency),
		Quiesce: quiesceWindow(p.Quiesce), Validity: validity(p.Validity), Dir: p.Dir, Problem: p.Problem, Cold: p.Cold, Configuration: configuration(p.Configuration)}
}

func configuration(c *catalog.Configuration) *contract.Configuration {
	if c == nil {
		return nil
	}
	return &contract.Configuration{Fingerprint: c.Fingerprint, FirstSeen: c.FirstSeen}
}

func quiesceWindow(q *catalog.QuiesceWindow) *contract.QuiesceWindow {
	if q == nil {
		return nil
	}
	return &contract.QuiesceWindow{Start: q.Start, End: q.End, Duration: q.Duration, Components: q.Components}
}

func catalogQuiesce(q *contract.QuiesceWindow) *catalog.QuiesceWindow {
	if q == nil {
		return nil
	}
	return &catalog.QuiesceWindow{Start: q.Start, End: q.End, Duration: q.End.Sub(q.Start), Components: q.Components}
}

func pointRef(p *catalog.Point) *contract.Point {
	if p == nil {
		return nil
	}
	c := point(*p)
	return &c
}
