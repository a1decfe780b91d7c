package status

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// Handler serves the exporter-toolkit landing page of landing, extended
// with the status of w as of each request; reload says the configuration's
// reload state. The page reloads itself every refresh (an HTTP Refresh
// header, which browsers follow with no script).
func Handler(landing web.LandingConfig, w *Window, reload func() Reload, refresh time.Duration) http.Handler {
	secs := max(1, int(refresh.Seconds()))
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(rw, r)
			return
		}
		page := w.Snapshot()
		page.Refresh = secs
		if reload != nil {
			page.Reload = reload()
		}
		html, err := Render(page)
		if err != nil {
			http.Error(rw, "cannot render the status page", http.StatusInternalServerError)
			return
		}
		c := landing
		c.Links = append([]web.LandingLinks(nil), landing.Links...) // NewLandingPage edits them
		c.ExtraHTML, c.ExtraCSS = html, landing.ExtraCSS+CSS
		h, err := web.NewLandingPage(c)
		if err != nil {
			http.Error(rw, "cannot render the landing page", http.StatusInternalServerError)
			return
		}
		rw.Header().Set("Refresh", strconv.Itoa(secs))
		rw.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(rw, r)
	})
}
