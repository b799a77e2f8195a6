package admin

import _ "embed"

// openAPIDoc describes the admin API (OpenAPI 3.1), served at
// /api/admin/v1/openapi.json. A test validates real responses against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of the admin API.
func OpenAPI() []byte { return openAPIDoc }
