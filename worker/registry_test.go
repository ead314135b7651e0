package worker

import (
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
)

// names records what a worker registers.
type names struct{ activities map[string]bool }

func (n *names) RegisterWorkflowWithOptions(interface{}, workflow.RegisterOptions) {}
func (n *names) RegisterActivityWithOptions(_ interface{}, o activity.RegisterOptions) {
	n.activities[o.Name] = true
}

// Every activity name in the contract is a method the worker registers
// under that name: a name without a method would panic at worker start.
func TestEveryContractActivityIsRegistered(t *testing.T) {
	got := &names{activities: map[string]bool{}}
	RegisterAll(got, activities.New(drivers.NewRegistry(), nil))
	for _, list := range [][]string{contract.SiteActivities, contract.OrchestratorActivities} {
		for _, name := range list {
			if !got.activities[name] {
				t.Errorf("activity %s is not registered", name)
			}
		}
	}
	for _, name := range []string{contract.ReplicaSeed, contract.ReplicaLag, contract.ReplicaPromote,
		contract.ReplicaFence, contract.ReplicaReseed, contract.ReplicaSwitchover} {
		if !got.activities[name] {
			t.Errorf("replication activity %s is not registered at the sites", name)
		}
	}
}
