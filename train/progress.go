package train

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows how far an epoch has come.
type progress interface {
	Add(jets int) error
	Finish() error
}

// isTerminal reports whether w is a terminal, where a progress bar that
// redraws itself with carriage returns belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newProgress returns a progress bar for an epoch of total jets on a
// terminal, and otherwise (a batch job's log file) a line every 5 % of the
// epoch with the rate and the time left.
func newProgress(w io.Writer, label string, total int) progress {
	if isTerminal(w) {
		return progressbar.NewOptions64(int64(total),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionSetItsString("jets"),
			progressbar.OptionShowIts(),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	return &progressLines{w: w, label: label, total: total, start: time.Now(), now: time.Now}
}

// progressLines writes one line per 5 % of an epoch, for logs that are
// not terminals.
type progressLines struct {
	w          io.Writer
	label      string
	total      int
	done, next int // jets so far; the twentieth reached last
	start      time.Time
	now        func() time.Time
}

// Add counts jets and writes a line for each 5 % step they complete.
func (p *progressLines) Add(jets int) error {
	p.done += jets
	if p.total <= 0 {
		return nil
	}
	step := min(20, p.done*20/p.total)
	if step <= p.next {
		return nil
	}
	p.next = step
	return p.line()
}

// Finish writes the last line if the epoch ended between two steps.
func (p *progressLines) Finish() error {
	if p.next >= 20 || p.done == 0 {
		return nil
	}
	p.next = 20
	return p.line()
}

func (p *progressLines) line() error {
	elapsed := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(max(p.total-p.done, 0))/rate) * time.Second).Round(time.Second).String()
	}
	_, err := fmt.Fprintf(p.w, "%s: %3d%% %d/%d jets, %.0f jets/s, ETA %s\n", p.label, p.done*100/max(p.total, 1), p.done, p.total, rate, eta)
	return err
}
