package callback

import (
	"net/http"
	"time"
)

// MaxAnswerHeaderBytes bounds the header bytes of an app backend's
// answer (a callback receiver's, an audit hook's). Go's default, 10 MiB,
// would let a hostile backend make a router hold that much for each of
// its thousands of audits in flight.
const MaxAnswerHeaderBytes = 16 << 10

// AppClient returns the HTTP client liveim calls apps' backends with:
// the callback dispatcher and the router's audit hook. Apps' backends
// are not the operator's, so it follows no redirect (a redirect would
// carry liveim's signed request, from inside the operator's network, to
// an address the backend picks: a 3xx is an answer, and not a good
// one), and it takes no answer with more than MaxAnswerHeaderBytes of
// headers.
func AppClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxResponseHeaderBytes = MaxAnswerHeaderBytes
	return &http.Client{
		Timeout:   timeout,
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
