package odata_test

import "github.com/gatehouse/gatehouse/sandbox/data"

type odataColumn = data.Column

func lookup(name string) *data.Column { return data.Lookup("table", "supplier").Column(name) }
