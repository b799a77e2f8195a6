package odata

import (
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/sandbox/data"
)

// Namespace is the CSDL schema namespace of the sandbox's entity types.
const Namespace = "P21.Sandbox"

// metadata answers $metadata: the CSDL (OData v4 XML) of the tables, the
// views, or (kind "") both.
func (h *Handler) metadata(w http.ResponseWriter, kind string) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">` + "\n")
	b.WriteString(`  <edmx:Reference Uri="https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml">` + "\n")
	b.WriteString(`    <edmx:Include Namespace="Org.OData.Core.V1" Alias="Core"/>` + "\n")
	b.WriteString(`  </edmx:Reference>` + "\n")
	b.WriteString(`  <edmx:DataServices>` + "\n")
	b.WriteString(`    <Schema Namespace="` + Namespace + `" xmlns="http://docs.oasis-open.org/odata/ns/edm">` + "\n")
	var sets []*data.Table
	for _, t := range data.Tables() {
		if kind != "" && t.Kind != kind {
			continue
		}
		sets = append(sets, t)
		b.WriteString(`      <EntityType Name="` + attr(t.Name) + `">` + "\n")
		b.WriteString(`        <Key>`)
		for _, k := range t.Key {
			b.WriteString(`<PropertyRef Name="` + attr(k) + `"/>`)
		}
		b.WriteString("</Key>\n")
		for _, c := range t.Columns {
			b.WriteString(`        <Property Name="` + attr(c.Name) + `" Type="` + c.Type.Edm() + `"`)
			if !c.Nullable {
				b.WriteString(` Nullable="false"`)
			}
			if c.Type == data.Decimal {
				b.WriteString(` Scale="variable"`)
			}
			b.WriteString("/>\n")
		}
		b.WriteString(`        <Annotation Term="Core.Description" String="` + attr(t.Doc) + `"/>` + "\n")
		b.WriteString("      </EntityType>\n")
	}
	b.WriteString(`      <EntityContainer Name="Container">` + "\n")
	for _, t := range sets {
		b.WriteString(`        <EntitySet Name="` + attr(t.Name) + `" EntityType="` + Namespace + "." + attr(t.Name) + `"/>` + "\n")
	}
	b.WriteString("      </EntityContainer>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.Write([]byte(b.String()))
}

func attr(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), `"`, "&#34;")
}
