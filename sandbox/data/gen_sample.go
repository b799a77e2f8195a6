//go:build ignore

// gen_sample writes the sample CSV files: go generate ./sandbox/data
package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/sandbox/data/samplegen"
)

func main() {
	for name, rows := range samplegen.Generate() {
		f, err := os.Create(filepath.Join(os.Args[1], name+".csv"))
		if err == nil {
			w := csv.NewWriter(f)
			err = w.WriteAll(rows)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
