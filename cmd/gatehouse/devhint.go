package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// printDemoHint tells, on a store that has users already, why --dev printed
// no demo credentials and how to see or reset them.
func printDemoHint(w io.Writer, base, dataDir string) {
	fmt.Fprintf(w, `
gatehouse --dev: this store has users already, so no demo credentials were made; they are
shown only when made (only hashes are stored). To see or reset them:

  gatehouse --data %[1]s user show demo
  gatehouse --data %[1]s user set-password demo --password-stdin     # a new password for demo
  gatehouse --data %[1]s consumer rotate-key demo-service            # a new key, printed once

or start afresh with an empty data directory (--data NEWDIR). Admin console: %[2]s/api/admin

`, dataDir, base)
}

// plainTLSError says in plain words why the TLS files cannot be used.
func plainTLSError(cert, key string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		which := "--tls-cert"
		if pe.Path == key {
			which = "--tls-key"
		}
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("%s %s does not exist", which, pe.Path)
		}
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Sprintf("%s %s cannot be read (permission denied)", which, pe.Path)
		}
		return fmt.Sprintf("%s %s cannot be read", which, pe.Path)
	}
	return fmt.Sprintf("--tls-cert %s and --tls-key %s are not a PEM certificate and its private key (%v)", cert, key, err)
}
