// Command drover-lab runs one lab server, as "drover-lab lab serve ...".
//
// The lab launcher runs it instead of re-executing drover when it is found
// beside drover and was built from the same source (or when DROVER_LAB_EXE
// names it). It holds only the lab: no Temporal server, no UI. drover's own
// start-up costs tens of milliseconds of CPU; a restart tier of 32 servers
// launched at once on a small machine paid that 32 times before any of
// them began to start (drover bench rto).
package main

import (
	"fmt"
	"os"

	"github.com/drover-dr/drover/lab"
)

func main() {
	lab.RunIfServer()
	fmt.Fprintln(os.Stderr, "drover-lab runs the servers of drover's lab for its launcher; start a lab with: drover lab up")
	os.Exit(2)
}
