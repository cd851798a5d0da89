package ops

import (
	"fmt"
	"io"
	"strings"
)

// progress is a one-line progress bar on a terminal: redrawn in place
// with a carriage return, ended with a newline. A nil writer draws nothing.
type progress struct {
	w     io.Writer
	total int
	drawn bool
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total}
}

const progressWidth = 30

func (p *progress) set(done int) {
	if p.w == nil || p.total == 0 {
		return
	}
	filled := progressWidth * done / p.total
	fmt.Fprintf(p.w, "\rreplayed %d/%d [%s%s] %3d%%", done, p.total,
		strings.Repeat("=", filled), strings.Repeat(" ", progressWidth-filled), 100*done/p.total)
	p.drawn = true
}

func (p *progress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
