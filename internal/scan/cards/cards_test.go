package cards

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
)

// pan returns a Luhn-valid number of n digits starting with prefix, built
// at test time so that this file holds no card number.
func pan(r *rand.Rand, prefix string, n int) string {
	for {
		b := []byte(prefix)
		for len(b) < n-1 {
			b = append(b, byte('0'+r.IntN(10)))
		}
		for c := byte('0'); c <= '9'; c++ {
			if luhn(string(append(b, c))) {
				s := string(append(b, c))
				if !testNumbers[s] {
					return s
				}
			}
		}
	}
}

func detect(t *testing.T, path, src string) []string {
	t.Helper()
	var got []string
	New().Detect(context.Background(), &scan.File{Path: path, Data: []byte(src)}, func(f scan.Finding) {
		got = append(got, fmt.Sprintf("%d %s", f.Line, f.Match))
	})
	return got
}

func TestDetect(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	visa, mc, amex := pan(r, "4", 16), pan(r, "5", 16), pan(r, "37", 15)
	last4 := func(s string) string { return s[len(s)-4:] }
	notLuhn := visa[:15] + string('0'+(visa[15]-'0'+1)%10)
	grouped := visa[:4] + " " + visa[4:8] + " " + visa[8:12] + " " + visa[12:]
	amexDashed := amex[:4] + "-" + amex[4:10] + "-" + amex[10:]
	for _, tt := range []struct {
		name, path, src string
		want            []string
	}{
		{"csv column named card", "export.csv", "id,name,card_number\n1,Ann," + visa + "\n", []string{"2 Visa card ending " + last4(visa)}},
		{"tsv header PAN", "orders.tsv", "id\tPAN\n7\t" + mc + "\n", []string{"2 Mastercard card ending " + last4(mc)}},
		{"jsonl key", "events.jsonl", `{"user":3,"cardNumber":"` + grouped + `"}` + "\n", []string{"1 Visa card ending " + last4(visa)}},
		{"sql dump, several cards", "dump.sql", "INSERT INTO p VALUES (1,'" + visa + "'),(2,'" + mc + "'),(3,'" + amexDashed + "');\n",
			[]string{"1 Visa card ending " + last4(visa), "1 Mastercard card ending " + last4(mc), "1 American Express card ending " + last4(amex)}},
		{"lone number in an unnamed column is an id", "ids.csv", "id,ref\n1," + visa + "\n", nil},
		{"not Luhn-valid", "export.csv", "card\n" + notLuhn + "\n", nil},
		{"published test number", "export.csv", "card\n4242424242424242\n", nil},
		{"company is not pan", "export.csv", "company,x\n" + visa + ",1\n", nil},
		{"named in a log line", "app.log", "2026-12-01 charge ok card=" + visa + " amount=3\n", []string{"1 Visa card ending " + last4(visa)}},
		{"unnamed in a log line", "app.log", "2026-12-01 charge ok card ok id=" + visa + "\n", nil},
		{"several unnamed outside an export", "notes.txt", "card\n" + visa + "\n" + mc + "\n" + pan(r, "4", 16) + "\n", nil},
		{"part of a longer number", "export.csv", "card\n9" + visa + "\n", nil},
		{"decimal", "export.csv", "card\n" + visa + ".25\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, detect(t, tt.path, tt.src)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIdentifiersAreNotCards: a column of random 16-digit identifiers,
// one in ten of which pass Luhn by chance, is not a column of cards.
func TestIdentifiersAreNotCards(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	b.WriteString("order_id,amount\n")
	for i := range 500 {
		fmt.Fprintf(&b, "4%015d,%d\n", r.Int64N(1e15), i)
	}
	if got := detect(t, "orders.csv", b.String()); len(got) != 0 {
		t.Errorf("%d findings in a column of identifiers, e.g. %v", len(got), got[0])
	}
}

// TestBulkExport: an unnamed column of real-looking cards is reported
// (capped per file), and each finding shows no more than the last four.
func TestBulkExport(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var b strings.Builder
	var pans []string
	for i := range 50 {
		p := pan(r, "51", 16)
		pans = append(pans, p)
		fmt.Fprintf(&b, "%d,%s\n", i, p)
	}
	var got []scan.Finding
	New().Detect(context.Background(), &scan.File{Path: "x.csv", Data: []byte(b.String())}, func(f scan.Finding) { got = append(got, f) })
	if len(got) != maxPerFile {
		t.Fatalf("%d findings, want the cap %d", len(got), maxPerFile)
	}
	for _, f := range got {
		for _, p := range pans {
			if strings.Contains(f.Match+f.Message+f.Fingerprint, p[:10]) {
				t.Fatalf("finding shows more than the last four digits: %+v", f)
			}
		}
	}
}

func TestPublishedTestNumbersAreCards(t *testing.T) {
	for n := range testNumbers {
		if !luhn(n) || brandOf(n) == "" && !allSame(n[1:]) {
			t.Errorf("test number %s: luhn %v, brand %q", n, luhn(n), brandOf(n))
		}
	}
}

func FuzzDetect(f *testing.F) {
	f.Add("card\n4111 1111-1111 1111\n")
	f.Add("1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-6")
	f.Add("INSERT INTO t (a, `pan`) VALUES (1,'4111 1111 1111 1111'),(2,'x''y');\nCOPY t (pan) FROM stdin;\n4111111111111111\n\\.\n")
	f.Fuzz(func(t *testing.T, data string) {
		for _, p := range []string{"f.csv", "f.sql"} {
			New().Detect(context.Background(), &scan.File{Path: p, Data: []byte(data)}, func(f scan.Finding) {
				if f.Line < 1 {
					t.Fatalf("finding without a line: %+v", f)
				}
			})
		}
	})
}

// TestAttackExportShapes: one or two cards in the export shapes real tools
// write are found by the column that names them, and identifiers beside
// them are not taken for cards.
func TestAttackExportShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	visa, mc := pan(r, "4", 16), pan(r, "52", 16)
	id := pan(r, "4", 16) // a Luhn-valid identifier in a column that is not a card
	last4 := func(s string) string { return s[len(s)-4:] }
	for _, tt := range []struct {
		name, path, src string
		want            []string
	}{
		{"sql insert with a column list", "dump.sql",
			"INSERT INTO payments (id, order_ref, pan, exp) VALUES (1, '" + id + "', '" + visa + "', '12/29'), (2, '" + id + "', '" + mc + "', '01/30');\n",
			[]string{"1 Visa card ending " + last4(visa), "1 Mastercard card ending " + last4(mc)}},
		{"mysqldump rows on their own lines", "backup.sql",
			"INSERT INTO `payments` (`id`, `card_no`) VALUES\n(1,'" + visa + "'),\n(2,'" + mc + "');\n",
			[]string{"2 Visa card ending " + last4(visa), "3 Mastercard card ending " + last4(mc)}},
		{"pg_dump COPY block", "db.sql",
			"COPY public.payments (id, order_ref, card_number) FROM stdin;\n1\t" + id + "\t" + visa + "\n\\.\n",
			[]string{"2 Visa card ending " + last4(visa)}},
		{"csv with a quoted comma before the card", "customers.csv",
			"name,card_number\n\"Doe, Jane\"," + visa + "\n",
			[]string{"2 Visa card ending " + last4(visa)}},
		{"semicolon csv (Excel in most of Europe)", "export.csv",
			"order_id;card_number\n" + id + ";" + visa + "\n",
			[]string{"2 Visa card ending " + last4(visa)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, detect(t, tt.path, tt.src)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkOneLineOfManyNumbers: an export of 100,000 numbers on a single
// line costs its length, not its square (each number once looked back to
// its line's start, and the scan did not end in minutes).
func BenchmarkOneLineOfManyNumbers(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	var sb strings.Builder
	sb.WriteString("ref,card_number\n")
	for range 100_000 {
		sb.WriteString("x," + pan(r, "4", 16) + ",")
	}
	for _, p := range []string{"one.csv", "one.sql", "one.json"} {
		f := &scan.File{Path: p, Data: []byte(sb.String())}
		b.Run(p, func(b *testing.B) {
			b.SetBytes(int64(len(f.Data)))
			for b.Loop() {
				New().Detect(context.Background(), f, func(scan.Finding) {})
			}
		})
	}
}
