package agent

import (
	"slices"
	"testing"
)

func TestServerListFailsOverAndBacksOffAfterAFullRound(t *testing.T) {
	s := newServerList([]string{"https://a", "https://b", "https://c"})
	var got []string
	var rounds []bool
	for range 4 {
		u, done := s.next()
		got, rounds = append(got, u), append(rounds, done)
	}
	if want := []string{"https://b", "https://c", "https://a", "https://b"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if want := []bool{false, false, true, false}; !slices.Equal(rounds, want) {
		t.Fatalf("back off after %v, want only after a full round %v", rounds, want)
	}
	s.connected()
	if _, done := s.next(); done {
		t.Fatal("a good connection did not start a new round")
	}
}

func TestServerListLearnsButNeverDropsTheOperatorsServers(t *testing.T) {
	s := newServerList([]string{"https://a"})
	added := s.merge([]string{"https://b/", "http://evil", "https://a", "ftp://x", ""})
	if !slices.Equal(added, []string{"https://b"}) {
		t.Fatalf("added %v, want only https://b", added)
	}
	s.merge(nil) // a server that lists nobody cannot remove anyone
	if !slices.Equal(s.urls, []string{"https://a", "https://b"}) {
		t.Fatalf("list %v", s.urls)
	}
	many := make([]string, 200)
	for i := range many {
		many[i] = "https://h" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	s.merge(many)
	if len(s.urls) > maxServers {
		t.Fatalf("a server grew the list to %d entries", len(s.urls))
	}
}

func TestParseServersRefusesPlainHTTP(t *testing.T) {
	got, err := parseServers("https://a/", []string{"https://b,https://a", " https://c "})
	if err != nil || !slices.Equal(got, []string{"https://a", "https://b", "https://c"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := parseServers("https://a", []string{"http://b"}); err == nil {
		t.Fatal("an http:// server was accepted")
	}
}
