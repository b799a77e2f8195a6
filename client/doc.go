// Package client obtains and manages bearer tokens for Prophet 21 (P21) APIs
// and OAuth2 servers such as APX, and sends authorized requests with them.
//
// It has three layers that stack like the parts of net/http and
// golang.org/x/oauth2:
//
//   - Token sources ask a token endpoint for a new token on every call:
//     [NewP21UserSource] (user name and password, V2 body or V1 headers),
//     [NewP21ConsumerSource] (consumer key, with or without a user context),
//     [NewAPXSource] (the APX OAuth2 password grant) and
//     [NewClientCredentialsSource] (plain OAuth2 client credentials).
//   - [NewCachedSource] wraps any of them: it reuses a token until it is
//     within a buffer of its expiry (five minutes by default), lets many
//     goroutines share one token request, backs off after failures and
//     renews user tokens with their refresh token.
//   - [Transport] and [NewHTTPClient] set the Authorization header on every
//     request and retry once with a fresh token after a 401; [Client] adds UI
//     server discovery and construction from the environment ([FromEnv]).
//
// Every source is an [oauth2.TokenSource] and also takes a context through
// TokenContext. Token responses may be JSON or XML, with the expiry in
// ExpiresInSeconds, ExpiresIn or expires_in; failures are [*Error] values
// carrying the HTTP status and the server's error code and description.
// No password, key or token ever appears in an error or a log line.
package client
