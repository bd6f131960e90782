package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/config"
)

// BenchmarkWebhookDeliver measures one signed delivery to a local HTTPS
// receiver (keep-alive), the cost a sink adds per message.
func BenchmarkWebhookDeliver(b *testing.B) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	n, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	n.secrets = newSecretCache(mapSecrets{"k": "key"}, time.Now)
	w, _ := newWebhook(config.WebhookSink{Name: "h", URL: srv.URL, HMACSecret: "k"}, n.secrets, time.Now)
	w.client = srv.Client()
	ev := Event{Name: EventApprovalNeeded, Subject: "op:op_1", Title: "operator1 asks to run remove-capacity", Text: strings.Repeat("line of text\n", 12)}
	b.ResetTimer()
	for b.Loop() {
		if err := w.send(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNotifyEnqueue measures what the sequencer's side pays per event
// with three sinks: Notify only enqueues.
func BenchmarkNotifyEnqueue(b *testing.B) {
	n, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		n.add(&worker{name: name, kind: "webhook", sink: sinkFunc(func(context.Context, Event) error { return nil }), queue: make(chan Event, 1<<20)})
	}
	ev := Event{Name: EventApproved}
	for b.Loop() {
		n.Notify(ev)
	}
}
