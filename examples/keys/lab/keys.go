// Package labkeys holds the lab's throwaway approver keys, embedded so
// `drover demo` and the end-to-end tests can sign the approvals the lab
// plan requires (its start-secondary gate needs two of three people, so
// every approval is signed). They are for the lab only: anyone can read
// them, so a plan that trusts them trusts everyone.
package labkeys

import (
	"context"
	"embed"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/approval"
)

//go:embed *.key
var files embed.FS

// Key returns the lab's private key of an approver (alice, bob or carol).
func Key(name string) (*approval.PrivateKey, error) {
	file := name + ".key"
	data, err := files.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("lab approver %q: no key in examples/keys/lab", name)
	}
	return approval.ParsePrivateKey("examples/keys/lab/"+file, data)
}

// Sign makes an approve signal's payload for the open run of workflowID,
// signed with the lab key of approver.
func Sign(ctx context.Context, c client.Client, workflowID, gate, approver, decision, comment string) (approval.Signed, error) {
	k, err := Key(approver)
	if err != nil {
		return approval.Signed{}, err
	}
	d, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return approval.Signed{}, fmt.Errorf("describe %s: %w", workflowID, err)
	}
	return k.Approve(workflowID, d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), gate, decision, approver, comment)
}

// Payload is Sign for an approver the lab has a key for and the unsigned
// form for any other name (plans of the tests that list no keys).
func Payload(ctx context.Context, c client.Client, workflowID, gate, approver, decision, comment string) (any, error) {
	if _, err := Key(approver); err != nil {
		return map[string]string{"gate": gate, "approver": approver, "decision": decision, "comment": comment}, nil
	}
	return Sign(ctx, c, workflowID, gate, approver, decision, comment)
}
