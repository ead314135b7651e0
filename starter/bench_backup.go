package starter

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/bench"
)

func init() {
	register(newBenchCmd)
	benchSubcommands = append(benchSubcommands, newBenchBackupCmd)
}

// benchSubcommands lets other files add `drover bench ...` benchmarks.
var benchSubcommands []commandFactory

func newBenchCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks that print each figure beside a same-run baseline",
		Args:  cobra.NoArgs,
	}
	for _, f := range benchSubcommands {
		cmd.AddCommand(f(g))
	}
	return cmd
}

// benchEnv hands the global flags' logger, namespace and client settings
// to a benchmark; progress lines go to stdout unless the output is JSON.
func benchEnv(g *Globals) bench.Env {
	env := bench.Env{Logger: g.Logger(), Namespace: g.Namespace, Dial: func(address string) (client.Client, error) {
		g.Address = address
		return g.Dial()
	}}
	if !g.JSON() {
		env.Progress = g.Stdout
	}
	return env
}

// benchError makes a benchmark's bad-input errors exit with code 2.
func benchError(err error) error {
	if errors.Is(err, bench.ErrBadInput) {
		return &BadInputError{Err: err}
	}
	return err
}

// benchWrite writes a benchmark's document as JSON or as its text.
func benchWrite(g *Globals, doc any, text func(io.Writer)) error {
	if g.JSON() {
		return planWriteJSON(g, doc)
	}
	text(g.Stdout)
	return nil
}

func newBenchBackupCmd(g *Globals) *cobra.Command {
	var o bench.BackupOptions
	var size string
	cmd := &cobra.Command{
		Use:   "backup [--size 1GiB] [--dir D]",
		Short: "Archive backup, cumulative backup, restore and btrfs snapshot figures against tar|zstd on generated data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := bench.ParseSize(size)
			if err != nil {
				return BadInputf("--size: %v", err)
			}
			if n < 1<<20 {
				return BadInputf("--size: %s is below 1 MiB", size)
			}
			if o.Rounds < 1 {
				return BadInputf("--rounds: %d is below 1", o.Rounds)
			}
			if o.Snapshots < 1 {
				return BadInputf("--snapshots: %d is below 1", o.Snapshots)
			}
			o.Size = n
			doc, err := bench.Backup(cmd.Context(), benchEnv(g), o)
			if err != nil {
				return benchError(err)
			}
			return benchWrite(g, doc, doc.Print)
		},
	}
	cmd.Flags().StringVar(&size, "size", "1GiB", "size of the generated data set (half text, half random)")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "work folder (default: a new temporary folder, removed afterwards)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the work folder")
	cmd.Flags().IntVar(&o.Rounds, "rounds", 2, "runs of each measurement; the best of each side is kept")
	cmd.Flags().BoolVar(&o.Btrfs, "btrfs", true, "measure btrfs snapshot time at size and 4x size (needs root, btrfs-progs, a loop device)")
	cmd.Flags().IntVar(&o.Snapshots, "snapshots", 15, "btrfs snapshots of each subvolume (size and 4x size), alternating; the medians are compared")
	return cmd
}
