// Command drover is the DR runbook automation CLI; all of it lives in starter.
package main

import (
	"os"

	"github.com/drover-dr/drover/starter"
)

func main() {
	os.Exit(starter.Main(os.Args[1:], os.Stdout, os.Stderr))
}
