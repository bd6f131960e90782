package app

import (
	"fmt"
	"net/http"

	"github.com/interlock-dev/interlock/internal/console"
)

// handler is everything the HTTPS port serves: the web console under
// /ui/ (which calls the API in-process, as the signed-in person), `GET /`
// sending a browser there, and the API for everything else.
func (a *App) handler() (http.Handler, error) {
	ui, err := console.New(console.Config{API: a.API, Sessions: a.Identity, Now: a.now, Log: a.log})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.Handle("/", a.API.Handler())
	return mux, nil
}
