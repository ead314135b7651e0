package starter

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/approval"
	"github.com/drover-dr/drover/codec"
)

func init() { register(newKeysCmd) }

func newKeysCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make and inspect approver signing keys and payload encryption keys",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newKeysNewCmd(g), newKeysShowCmd(g), newKeysNewEncryptionKeyCmd(g))
	return cmd
}

func newKeysNewCmd(g *Globals) *cobra.Command {
	var name, dir string
	cmd := &cobra.Command{
		Use:   "new --name NAME [--dir DIR]",
		Short: "Make an approver's ed25519 key pair (NAME.key, NAME.pub) and print the plan's publicKey line",
		Long: "Writes DIR/NAME.key (the private key, mode 0600: it signs approvals, keep it to yourself) and\n" +
			"DIR/NAME.pub, and prints the publicKey line to put under the approver in the plan. An existing key\n" +
			"is never overwritten (exit 2).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return BadInputf("--name: required: the approver's name as the plan lists it")
			}
			if err := approval.ValidName(name); err != nil {
				return BadInputf("--name: %v", err)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return BadInputf("--dir: %v", err)
			}
			k, err := approval.GenerateKey(name)
			if err != nil {
				return err
			}
			privPath, pubPath, err := approval.WriteKeyPair(dir, k)
			if errors.Is(err, approval.ErrExists) {
				return BadInput(err)
			}
			if err != nil {
				return err
			}
			if g.Structured() {
				return planWriteJSON(g, map[string]string{
					"name": name, "privateKeyFile": privPath, "publicKeyFile": pubPath, "publicKey": k.PublicKey(),
				})
			}
			_, err = fmt.Fprintf(g.Stdout,
				"Wrote %s (private: signs %s's approvals; keep it to yourself) and %s.\n"+
					"Put this under approvers in the plan:\n\n  - name: %s\n    publicKey: %s\n",
				privPath, name, pubPath, name, k.PublicKey())
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the approver's name, as in the plan's approvers (required)")
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write NAME.key and NAME.pub into")
	return cmd
}

func newKeysShowCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE",
		Short: "Print the public key (the plan's publicKey) of an approver's private key file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := approval.LoadPrivateKey(args[0])
			if err != nil {
				return BadInput(err)
			}
			if g.Structured() {
				return planWriteJSON(g, map[string]string{"file": args[0], "name": k.Name, "publicKey": k.PublicKey()})
			}
			if k.Name != "" {
				fmt.Fprintf(g.Stdout, "name: %s\n", k.Name)
			}
			_, err = fmt.Fprintf(g.Stdout, "publicKey: %s\n", k.PublicKey())
			return err
		},
	}
}

func newKeysNewEncryptionKeyCmd(g *Globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "new-encryption-key --out FILE",
		Short: "Make a random AES-256 key for payload encryption (--encryption-key-file, drover codec-server)",
		Long: "Writes a random 32-byte key, base64-encoded, to FILE with mode 0600. Give the same file to every\n" +
			"worker and CLI of the namespace (--encryption-key-file, env DROVER_ENCRYPTION_KEY_FILE) and to\n" +
			"`drover codec-server` so the Web UI can show the payloads. An existing file is never overwritten (exit 2).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return BadInputf("--out: required: the file to write the key to")
			}
			k, err := codec.GenerateKey()
			if err != nil {
				return err
			}
			err = approval.WriteNewFile(out, k.Text(), 0o600)
			if errors.Is(err, approval.ErrExists) {
				return BadInputf("--out: %v; a key is never overwritten", err)
			}
			if err != nil {
				return err
			}
			if g.Structured() {
				return planWriteJSON(g, map[string]string{"file": out, "keyId": k.ID()})
			}
			_, err = fmt.Fprintf(g.Stdout, "Wrote %s (key id %s). Use it with --encryption-key-file %s on every worker and CLI, and with drover codec-server.\n", out, k.ID(), out)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the key to (required; must not exist)")
	return cmd
}
