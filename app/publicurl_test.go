package app_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/app"
)

func TestPublicURL(t *testing.T) {
	for _, tc := range []struct {
		explicit, bound string
		tls             bool
		want            string
	}{
		{"", "127.0.0.1:8080", false, "http://127.0.0.1:8080"},
		{"", ":8080", false, "http://localhost:8080"},
		{"", "[::]:8080", false, "http://localhost:8080"},
		{"", "0.0.0.0:8443", true, "https://localhost:8443"},
		{"", "[::1]:8080", false, "http://[::1]:8080"},
		{"", "[::ffff:10.0.0.7]:8080", false, "http://10.0.0.7:8080"},
		{"", "10.1.2.3:80", false, "http://10.1.2.3"},
		{"", "[2001:db8::1]:443", true, "https://[2001:db8::1]"},
		{"", "0.0.0.0:443", false, "http://localhost:443"},
		{"https://auth.example.com/", "[::]:8080", false, "https://auth.example.com"},
		{"http://gw.internal:9000/auth/", "127.0.0.1:1", false, "http://gw.internal:9000/auth"},
	} {
		got, err := app.PublicURL(tc.explicit, tc.bound, tc.tls)
		if err != nil || got != tc.want {
			t.Errorf("PublicURL(%q, %q, %t) = %q, %v; want %q", tc.explicit, tc.bound, tc.tls, got, err, tc.want)
		}
	}
	for _, bad := range []string{"auth.example.com", "ftp://auth.example.com", "https://", "https://u:p@auth.example.com",
		"https://auth.example.com/?x=1", "https://auth.example.com/#f", "https://auth.example.com/?", "http://%zz"} {
		if got, err := app.PublicURL(bad, "127.0.0.1:8080", false); err == nil {
			t.Errorf("PublicURL(%q) = %q, want an error", bad, got)
		}
	}
}
