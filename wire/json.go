package wire

import "encoding/json"

// AppendJSONString appends s as a JSON string, byte for byte as
// encoding/json writes it (HTML characters escaped, invalid UTF-8
// replaced): for bodies and tokens written by hand on hot paths.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Rare in tokens, ids and scopes: encoding/json's own rules.
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
