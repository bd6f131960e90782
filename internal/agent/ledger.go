package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// ledger is the agent's durable memory of steps: which it has started
// (written and synced BEFORE a step starts, so none runs twice), how each
// ended, and whether a server took that result. It is what lets a server
// that lost track of a step — it restarted, or this agent vanished
// mid-step — settle the step without a person: at every connect the agent
// reports the results no server has taken yet (see agent.replayLedger).
//
// The file is one line per fact, appended:
//
//	stp_…                               the step started (the only kind before results were kept)
//	{"v":2}                             steps after this line also record results and acks
//	{"result":{…wire.StepResult…}}      the step ended so (synced)
//	{"ack":"stp_…"}                     a server took its result (not synced: losing one only resends)
//
// A step started after the {"v":2} line that has no result when the
// ledger is opened was interrupted: the agent stopped while it ran, and
// the step's process group died with it (see proc_linux.go). Opening
// records that as its result, so a server learns it.
type ledger struct {
	mu      sync.Mutex
	path    string
	now     func() time.Time
	seen    map[string]bool
	order   []string
	tracked map[string]bool // started after the {"v":2} line
	results map[string]wire.StepResult
	rorder  []string // IDs in results, oldest first
	acked   map[string]bool
}

const (
	ledgerKeep = 10000 // step IDs kept after compaction
	resultKeep = 256   // results (with their output) kept
	// maxLedgerLine bounds one line: a result carries at most the agent's
	// output cap (128 KiB by default) and its JSON escaping.
	maxLedgerLine = 8 << 20
)

type ledgerLine struct {
	V      int              `json:"v,omitempty"`
	Result *wire.StepResult `json:"result,omitempty"`
	Ack    string           `json:"ack,omitempty"`
}

func openLedger(dir string) (*ledger, error) { return openLedgerAt(dir, time.Now) }

func openLedgerAt(dir string, now func() time.Time) (*ledger, error) {
	l := &ledger{path: filepath.Join(dir, ledgerFile), now: now, seen: map[string]bool{}, tracked: map[string]bool{},
		results: map[string]wire.StepResult{}, acked: map[string]bool{}}
	versioned := false
	if f, err := os.Open(l.path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), maxLedgerLine)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "":
			case strings.HasPrefix(line, "{"):
				var ll ledgerLine
				if json.Unmarshal([]byte(line), &ll) != nil {
					continue // a torn write: the fact it held is lost, nothing else
				}
				switch {
				case ll.V >= 2:
					versioned = true
				case ll.Result != nil:
					l.keepResult(*ll.Result)
				case ll.Ack != "":
					l.acked[ll.Ack] = true
				}
			case !l.seen[line]:
				l.seen[line] = true
				l.order = append(l.order, line)
				l.tracked[line] = versioned
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read step ledger: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open step ledger: %w", err)
	}
	if !versioned {
		if err := l.appendLine(ledgerLine{V: 2}, true); err != nil {
			return nil, err
		}
	}
	// Steps that started and never ended: the agent stopped while they ran.
	for _, id := range l.order {
		if _, done := l.results[id]; done || !l.tracked[id] {
			continue
		}
		at := l.now()
		res := wire.StepResult{StepID: id, ExitCode: -1, StartedAt: at, FinishedAt: at, Error: interruptedError}
		if err := l.finish(res); err != nil {
			return nil, err
		}
	}
	if len(l.order) > ledgerKeep {
		if err := l.compact(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// interruptedError is the result of a step the agent stopped during.
const interruptedError = "the agent stopped while this step ran, and the step's processes were killed with it; what it changed before that is unknown"

// write appends b to the ledger file, synced when sync is set. The file is
// opened for each write rather than held: writes come once per step, and an
// agent process running a whole fleet in-process (agent --count, bench
// fleet) would otherwise hold one descriptor per agent on top of its
// connections, past the usual 20,000-file limit at 10,000 agents.
func (l *ledger) write(b []byte, sync bool) error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open step ledger: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write step ledger: %w", err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync step ledger: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close step ledger: %w", err)
	}
	return nil
}

func (l *ledger) has(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[id]
}

// result returns the recorded result of a step, if it is still kept.
func (l *ledger) result(id string) (wire.StepResult, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.results[id]
	return r, ok
}

// unreported returns the kept results no server has taken yet, oldest first.
func (l *ledger) unreported() []wire.StepResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []wire.StepResult
	for _, id := range l.rorder {
		if !l.acked[id] {
			out = append(out, l.results[id])
		}
	}
	return out
}

// add appends id and syncs the file before returning.
func (l *ledger) add(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The leading newline ends any line a failed earlier write left
	// unfinished, so this ID can never merge into it (blank lines are skipped).
	if err := l.write([]byte("\n"+id+"\n"), true); err != nil {
		return err
	}
	l.seen[id] = true
	l.tracked[id] = true
	l.order = append(l.order, id)
	if len(l.order) > 2*ledgerKeep {
		if err := l.compact(); err != nil {
			return err
		}
	}
	return nil
}

// finish records how a step ended, synced: from now on the agent can tell
// any server, also after its own restart.
func (l *ledger) finish(res wire.StepResult) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keepResult(res)
	return l.appendLine(ledgerLine{Result: &res}, true)
}

// ack records that a server took the step's result, so it is not replayed.
func (l *ledger) ack(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acked[id] {
		return nil
	}
	l.acked[id] = true
	return l.appendLine(ledgerLine{Ack: id}, false)
}

func (l *ledger) keepResult(res wire.StepResult) {
	if _, ok := l.results[res.StepID]; !ok {
		l.rorder = append(l.rorder, res.StepID)
	}
	l.results[res.StepID] = res
	for len(l.rorder) > resultKeep {
		delete(l.results, l.rorder[0])
		delete(l.acked, l.rorder[0])
		l.rorder = l.rorder[1:]
	}
}

func (l *ledger) appendLine(ll ledgerLine, sync bool) error {
	b, err := json.Marshal(ll)
	if err != nil {
		return err
	}
	return l.write(append(append([]byte{'\n'}, b...), '\n'), sync)
}

// compact keeps the most recent ledgerKeep IDs and the kept results and
// acks, replacing the file atomically. Step IDs embed the operation, so an ID old
// enough to be dropped belongs to an operation the server finished long ago.
func (l *ledger) compact() error {
	if len(l.order) > ledgerKeep {
		l.order = l.order[len(l.order)-ledgerKeep:]
	}
	l.seen = make(map[string]bool, len(l.order))
	var b strings.Builder
	for _, id := range l.order { // untracked (older) IDs first, before the version line
		l.seen[id] = true
		if !l.tracked[id] {
			b.WriteString(id + "\n")
		}
	}
	b.WriteString("{\"v\":2}\n")
	for _, id := range l.order {
		if l.tracked[id] {
			b.WriteString(id + "\n")
		}
	}
	for _, id := range l.rorder {
		res := l.results[id]
		line, err := json.Marshal(ledgerLine{Result: &res})
		if err != nil {
			return err
		}
		b.Write(append(line, '\n'))
		if l.acked[id] {
			line, _ := json.Marshal(ledgerLine{Ack: id})
			b.Write(append(line, '\n'))
		}
	}
	if err := writeFileAtomic(l.path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("compact step ledger: %w", err)
	}
	return nil
}
