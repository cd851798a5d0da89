package loadgen

import (
	"bytes"
	"cmp"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// errNilReport is returned by the writers rather than panicking, so that a
// caller printing a half-finished run still gets an error it can log.
var errNilReport = errors.New("loadgen: nil report")

var stepColumns = []string{
	"target/s", "offered/s", "achieved/s",
	"p50", "p90", "p99", "p99.9", "max",
	"CPU/rec", "peak RSS", "lag", "verdict",
}

// WriteText writes the report as an aligned plain-text table for a terminal:
// a header block, one row per step in the order run, and the max-sustainable
// line (a fixed-rate run's says whether the rate held instead).
func (r *Report) WriteText(w io.Writer) error {
	if r == nil {
		return errNilReport
	}
	var b bytes.Buffer

	head := r.headerFields()
	settings := r.sortedSettings()
	keyWidth := 0
	for _, f := range head {
		keyWidth = max(keyWidth, runeWidth(f.key))
	}
	if len(settings) > 0 {
		keyWidth = max(keyWidth, runeWidth("settings"))
	}
	for _, f := range head {
		fmt.Fprintf(&b, "%s  %s\n", padRight(f.key, keyWidth), oneLine(f.value))
	}
	for i, s := range settings {
		key := ""
		if i == 0 {
			key = "settings"
		}
		line := padRight(key, keyWidth) + "  " + oneLine(s.key) + " = " + oneLine(s.value)
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	b.WriteString("\n")

	rows := make([][]string, 0, len(r.Steps)+1)
	rows = append(rows, stepColumns)
	for _, s := range r.Steps {
		rows = append(rows, s.cells())
	}
	writeAligned(&b, rows)
	b.WriteString("\n")
	b.WriteString(r.maxSustainableLine() + "\n")

	_, err := w.Write(b.Bytes())
	return err
}

// WriteMarkdown writes the report as GitHub-flavoured Markdown: the header
// block as a bullet list, the steps as a table, then the max-sustainable
// line.
func (r *Report) WriteMarkdown(w io.Writer) error {
	if r == nil {
		return errNilReport
	}
	var b bytes.Buffer

	for _, f := range r.headerFields() {
		v := f.value
		if !f.generated {
			v = mdEscape(v)
		}
		fmt.Fprintf(&b, "- **%s:** %s\n", f.key, v)
	}
	if settings := r.sortedSettings(); len(settings) > 0 {
		b.WriteString("- **settings:**\n")
		for _, s := range settings {
			fmt.Fprintf(&b, "  - %s: %s\n", mdEscape(s.key), mdEscape(s.value))
		}
	}
	b.WriteString("\n")

	b.WriteString("|")
	for _, c := range stepColumns {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n|")
	for i := range stepColumns {
		if i == len(stepColumns)-1 {
			b.WriteString(" :--- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	for _, s := range r.Steps {
		b.WriteString("|")
		for _, c := range s.cells() {
			b.WriteString(" " + mdEscape(c) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	// The line's only "<" is in "<=", which GFM leaves as text because no
	// letter follows it.
	b.WriteString(r.maxSustainableLine() + "\n")

	_, err := w.Write(b.Bytes())
	return err
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	if r == nil {
		return errNilReport
	}
	// Marshal before writing so that a report json cannot encode (a NaN
	// rate) leaves nothing half-written behind.
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	_, err = w.Write(data)
	return err
}

// field is a key and value of the header block; generated values are ours
// (a formatted SLO or time) and need no Markdown escaping, which would only
// clutter them ("p99 \<= 250ms").
type field struct {
	key, value string
	generated  bool
}

func (r *Report) headerFields() []field {
	started := "-"
	if !r.Started.IsZero() {
		started = r.Started.UTC().Format(time.RFC3339)
	}
	slo := "-"
	if r.SLO > 0 {
		slo = "p99 <= " + formatDuration(r.SLO)
	}
	mode := "fixed rate"
	if r.FindMax {
		mode = "find-max"
	}
	return []field{
		{"pipeline", r.Pipeline, false},
		{"cluster", r.Cluster, false},
		{"run", mode, true},
		{"SLO", slo, true},
		{"started", started, true},
	}
}

func (r *Report) sortedSettings() []field {
	var out []field
	for _, k := range slices.Sorted(maps.Keys(r.Settings)) {
		out = append(out, field{k, r.Settings[k], false})
	}
	return out
}

// maxSustainableLine is the report's last line: what a find-max run
// found, or, for a fixed-rate run, whether the rate held, and that no
// maximum was searched for.
func (r *Report) maxSustainableLine() string {
	if !r.FindMax {
		ok := 0
		for _, s := range r.Steps {
			if s.Verdict == VerdictOK {
				ok++
			}
		}
		rate := "-"
		if len(r.Steps) > 0 {
			rate = formatRate(r.Steps[0].Target)
		}
		return fmt.Sprintf("fixed rate %s records/s: %d of %d steps ok (p99 <= SLO, lag bounded); no maximum searched for (--find-max does)",
			rate, ok, len(r.Steps))
	}
	if r.MaxSustainable > 0 && !math.IsInf(r.MaxSustainable, 0) {
		return "max sustainable: " + formatRate(r.MaxSustainable) +
			" records/s (p99 <= SLO, lag bounded)"
	}
	return "max sustainable: none of the steps met the SLO"
}

// cells renders a step in the order of stepColumns.
func (s Step) cells() []string {
	lat := func(d time.Duration) string {
		// Without outputs the percentiles are zero by convention, not
		// measured; printing "0s" would read as infinitely fast.
		if s.Outputs <= 0 {
			return "-"
		}
		return formatDuration(d)
	}
	verdict := oneLine(s.Verdict)
	if verdict == "" {
		verdict = "-"
	}
	return []string{
		formatRate(s.Target), formatRate(s.Offered), formatRate(s.Achieved),
		lat(s.P50), lat(s.P90), lat(s.P99), lat(s.P999), lat(s.Max),
		formatCPU(s.CPUPerRecord), formatMiB(s.PeakRSS), formatCount(s.LagEnd),
		verdict,
	}
}

// writeAligned writes rows as columns separated by two spaces; every column
// but the last is right-aligned so that figures line up on their units, the
// last (the verdict, a word) is left-aligned.
func writeAligned(b *bytes.Buffer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], runeWidth(c))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			if i == len(row)-1 {
				line.WriteString(c)
			} else {
				line.WriteString(strings.Repeat(" ", widths[i]-runeWidth(c)) + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// runeWidth counts runes rather than bytes: "µs" is two runes in three bytes
// and would otherwise throw the columns off.
func runeWidth(s string) int { return utf8.RuneCountInString(s) }

func padRight(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-runeWidth(s)))
}

// oneLine keeps a stray newline or tab in a setting from breaking the table
// layout.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// mdEscape backslash-escapes the characters that would otherwise start
// emphasis, links, HTML or a table cell boundary in GFM.
func mdEscape(s string) string {
	var b strings.Builder
	for _, r := range oneLine(s) {
		if strings.ContainsRune("\\`*_[]<>|#~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatRate renders a rate in records/s rounded to a whole number with
// thousands separators.
func formatRate(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	v = math.Round(v)
	if v == 0 {
		v = 0 // drop the sign of a negative zero
	}
	return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
}

// formatCount renders an integer count with thousands separators.
func formatCount(n int64) string {
	return groupThousands(strconv.FormatInt(n, 10))
}

func groupThousands(digits string) string {
	sign := ""
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	if len(digits) <= 3 {
		return sign + digits
	}
	var b strings.Builder
	b.WriteString(sign)
	head := len(digits) % 3
	if head == 0 {
		head = 3
	}
	b.WriteString(digits[:head])
	for i := head; i < len(digits); i += 3 {
		b.WriteByte(',')
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// formatDuration renders d with three significant digits in the largest unit
// (ns, µs, ms, s) that keeps the figure at or above 1, dropping trailing
// zeros after the point so that decades read "1ms", "10ms", "1s".
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		if d == math.MinInt64 {
			d++ // -MinInt64 does not fit; a nanosecond is far below the precision shown
		}
		return "-" + formatDuration(-d)
	}
	if d < time.Microsecond {
		return strconv.FormatInt(int64(d), 10) + "ns"
	}
	units := []struct {
		scale  float64
		suffix string
	}{{1e3, "µs"}, {1e6, "ms"}, {1e9, "s"}}
	v := float64(d)
	for i, u := range units {
		x := v / u.scale
		var s string
		// The bounds are where rounding to three significant digits would
		// carry into the next power of ten ("9.995" prints as "10.0"), so
		// that 999.6µs moves up to "1ms" instead of printing "1000µs".
		switch {
		case x < 9.995:
			s = strconv.FormatFloat(x, 'f', 2, 64)
		case x < 99.95:
			s = strconv.FormatFloat(x, 'f', 1, 64)
		case x < 999.5 || i == len(units)-1:
			s = strconv.FormatFloat(x, 'f', 0, 64)
		default:
			continue
		}
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s + u.suffix
	}
	panic("unreachable: the last unit always formats")
}

// formatCPU renders CPU time per record; zero means not measured.
func formatCPU(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return formatDuration(d)
}

// formatMiB renders a byte count in MiB with one decimal; zero or less means
// not measured.
func formatMiB(n int64) string {
	if n <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}

// The chart's fixed geometry, in viewBox units.
const (
	svgWidth  = 900
	svgHeight = 500
	plotLeft  = 80.0
	plotRight = 800.0
	plotTop   = 50.0
	plotBot   = 400.0
)

// Series colours; red is kept for the not-ok rings so that they stand out.
const (
	colourP50      = "#1f77b4"
	colourP99      = "#ff7f0e"
	colourP999     = "#9467bd"
	colourAchieved = "#7f7f7f"
	colourSLO      = "#333333"
	colourBad      = "#d62728"
	colourGrid     = "#e5e5e5"
	colourAxis     = "#000000"
)

// WriteSVG writes a self-contained SVG chart of the steps against offered
// rate: latency percentiles on a log scale (left axis) and achieved rate on
// the same linear scale as the x axis (right axis).
func (r *Report) WriteSVG(w io.Writer) error {
	if r == nil {
		return errNilReport
	}
	var c svgCanvas
	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, svgHeight, svgWidth, svgHeight)
	c.printf(`<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, svgHeight)
	c.text(svgWidth/2, 28, "middle", 16, "", "",
		fmt.Sprintf("%s: latency and throughput against offered rate (%s)", r.Pipeline, r.Cluster))

	if len(r.Steps) == 0 {
		c.text(svgWidth/2, svgHeight/2, "middle", 14, "", "", "no steps")
		c.printf("</svg>\n")
		_, err := w.Write(c.b.Bytes())
		return err
	}

	// A find-max run can come back down, so run order is not rate order;
	// lines drawn in run order would double back on themselves.
	steps := slices.Clone(r.Steps)
	slices.SortStableFunc(steps, func(a, b Step) int { return cmp.Compare(a.Offered, b.Offered) })

	top := 0.0
	for _, s := range steps {
		top = max(top, finiteOr0(s.Offered), finiteOr0(s.Achieved))
	}
	// A tenth of headroom keeps the highest step off the frame's right
	// edge (and top edge, for the achieved rate), where the point of a
	// one-step run always sat.
	rateMax, rateStep := niceScale(top * 1.1)
	loExp, hiExp := latencyDecades(steps, r.SLO)

	xOf := func(rate float64) float64 {
		return clamp(plotLeft+finiteOr0(rate)/rateMax*(plotRight-plotLeft), plotLeft, plotRight)
	}
	yRate := func(rate float64) float64 {
		return clamp(plotBot-finiteOr0(rate)/rateMax*(plotBot-plotTop), plotTop, plotBot)
	}
	yLat := func(d time.Duration) float64 {
		f := (math.Log10(float64(d)) - float64(loExp)) / float64(hiExp-loExp)
		return clamp(plotBot-f*(plotBot-plotTop), plotTop, plotBot)
	}

	// Grid and tick labels.
	ticks := int(math.Round(rateMax / rateStep))
	for i := 0; i <= ticks; i++ {
		v := rateStep * float64(i)
		x, y := xOf(v), yRate(v)
		c.line(x, plotTop, x, plotBot, colourGrid, 1, "")
		c.text(x, plotBot+16, "middle", 11, "", "", formatRate(v))
		c.text(plotRight+6, y+4, "start", 11, colourAchieved, "", formatRate(v))
	}
	for e := loExp; e <= hiExp; e++ {
		d := time.Duration(pow10(e))
		y := yLat(d)
		c.line(plotLeft, y, plotRight, y, colourGrid, 1, "")
		c.text(plotLeft-6, y+4, "end", 11, "", "", formatDuration(d))
	}

	// Axes and their titles.
	c.printf(`<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="%s" stroke-width="1"/>`+"\n",
		num(plotLeft), num(plotTop), num(plotRight-plotLeft), num(plotBot-plotTop), colourAxis)
	c.text((plotLeft+plotRight)/2, plotBot+38, "middle", 12, "", "", "offered rate (records/s)")
	midY := (plotTop + plotBot) / 2
	c.text(20, midY, "middle", 12, "", fmt.Sprintf("rotate(-90 20 %s)", num(midY)), "end-to-end latency (log scale)")
	c.text(885, midY, "middle", 12, colourAchieved, fmt.Sprintf("rotate(-90 885 %s)", num(midY)), "achieved rate (records/s)")

	// Ideal throughput and the SLO.
	c.line(plotLeft, plotBot, plotRight, plotTop, colourAchieved, 1, "2 3")
	if r.SLO > 0 {
		y := yLat(r.SLO)
		c.line(plotLeft, y, plotRight, y, colourSLO, 1.5, "8 4")
		c.text(plotRight-4, y-5, "end", 11, colourSLO, "", "SLO "+formatDuration(r.SLO))
	}

	// Latency series: a step without outputs measured no latency, so it has
	// no point rather than a point at zero. Lines first, then the markers,
	// widest first: percentiles that are equal (a short step's p99 and
	// p99.9 often are) share a position, and each marker still shows
	// around or inside the others.
	// A fixed-rate run's steps are repeats of one rate: a line through
	// them would zigzag over a sliver of the x axis, so they are markers
	// only. A find-max run's rates differ by design, and its lines show
	// the trend.
	join := r.FindMax
	p99At := make(map[int]svgPoint)
	var drawn []svgSeries
	for _, ser := range latencySeries() {
		var pts []svgPoint
		for i, s := range steps {
			d := ser.get(s)
			if s.Outputs <= 0 || d <= 0 {
				continue
			}
			p := svgPoint{xOf(s.Offered), yLat(d), fmt.Sprintf("%s at %s records/s: %s", ser.name, formatRate(s.Offered), formatDuration(d))}
			pts = append(pts, p)
			if ser.name == "p99" {
				p99At[i] = p
			}
		}
		if len(pts) == 0 {
			continue
		}
		ser.pts = pts
		drawn = append(drawn, ser)
		if join {
			c.polyline(pts, ser.colour)
		}
	}

	// Achieved rate.
	achieved := make([]svgPoint, len(steps))
	for i, s := range steps {
		achieved[i] = svgPoint{xOf(s.Offered), yRate(s.Achieved),
			fmt.Sprintf("achieved %s records/s at offered %s records/s", formatRate(s.Achieved), formatRate(s.Offered))}
	}
	if join {
		c.polyline(achieved, colourAchieved)
	}
	for _, p := range achieved {
		c.marker(markerSquare, p, colourAchieved)
	}
	for i := len(drawn) - 1; i >= 0; i-- {
		for _, p := range drawn[i].pts {
			c.marker(drawn[i].shape, p, drawn[i].colour)
		}
	}

	// Rings on the marker that explains the verdict: p99 for an SLO miss,
	// the achieved rate for growing lag (or when there is no p99 to ring).
	notOK := false
	for i, s := range steps {
		if s.Verdict == VerdictOK {
			continue
		}
		notOK = true
		p, ok := p99At[i]
		if s.Verdict != VerdictSLO || !ok {
			p = achieved[i]
		}
		c.printf(`<circle cx="%s" cy="%s" r="7" fill="none" stroke="%s" stroke-width="2"><title>%s</title></circle>`+"\n",
			num(p.x), num(p.y), colourBad, esc(fmt.Sprintf("verdict %s at offered %s records/s", s.Verdict, formatRate(s.Offered))))
	}

	c.legend(470, drawn, join, r.SLO > 0, notOK)
	c.printf("</svg>\n")
	_, err := w.Write(c.b.Bytes())
	return err
}

type svgCanvas struct{ b bytes.Buffer }

// svgPoint is a marker position with its hover text.
type svgPoint struct {
	x, y float64
	tip  string
}

func (c *svgCanvas) printf(format string, args ...any) { fmt.Fprintf(&c.b, format, args...) }

func (c *svgCanvas) line(x1, y1, x2, y2 float64, stroke string, width float64, dash string) {
	c.printf(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"`,
		num(x1), num(y1), num(x2), num(y2), stroke, num(width))
	if dash != "" {
		c.printf(` stroke-dasharray="%s"`, dash)
	}
	c.printf("/>\n")
}

func (c *svgCanvas) text(x, y float64, anchor string, size int, fill, transform, s string) {
	c.printf(`<text x="%s" y="%s" text-anchor="%s" font-size="%d"`, num(x), num(y), anchor, size)
	if fill != "" {
		c.printf(` fill="%s"`, fill)
	}
	if transform != "" {
		c.printf(` transform="%s"`, transform)
	}
	c.printf(">%s</text>\n", esc(s))
}

// polyline joins pts; a single point is no line, and its marker shows it.
func (c *svgCanvas) polyline(pts []svgPoint, stroke string) {
	if len(pts) < 2 {
		return
	}
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(num(p.x) + "," + num(p.y))
	}
	c.printf(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", b.String(), stroke)
}

// svgSeries is a latency series of the chart: its name, colour, marker
// and value of a step, and the points drawn.
type svgSeries struct {
	name, colour string
	shape        markerShape
	get          func(Step) time.Duration
	pts          []svgPoint
}

// latencySeries are the chart's latency series, lowest first. Each has its
// own marker shape, so that one hidden under another's colour is still
// told apart: p50 a small dot, p99 a triangle, p99.9 a hollow diamond
// around both.
func latencySeries() []svgSeries {
	return []svgSeries{
		{name: "p50", colour: colourP50, shape: markerDot, get: func(s Step) time.Duration { return s.P50 }},
		{name: "p99", colour: colourP99, shape: markerTriangle, get: func(s Step) time.Duration { return s.P99 }},
		{name: "p99.9", colour: colourP999, shape: markerDiamond, get: func(s Step) time.Duration { return s.P999 }},
	}
}

type markerShape int

const (
	markerDot markerShape = iota
	markerTriangle
	markerDiamond
	markerSquare
)

// marker draws shape at p in colour, with p's hover text when it has one.
func (c *svgCanvas) marker(shape markerShape, p svgPoint, colour string) {
	title := ""
	if p.tip != "" {
		title = "<title>" + esc(p.tip) + "</title>"
	}
	x, y := p.x, p.y
	switch shape {
	case markerDot:
		c.printf(`<circle cx="%s" cy="%s" r="3" fill="%s">%s</circle>`+"\n", num(x), num(y), colour, title)
	case markerTriangle:
		c.printf(`<polygon points="%s,%s %s,%s %s,%s" fill="%s">%s</polygon>`+"\n",
			num(x), num(y-6), num(x-5.5), num(y+4), num(x+5.5), num(y+4), colour, title)
	case markerDiamond:
		c.printf(`<polygon points="%s,%s %s,%s %s,%s %s,%s" fill="none" stroke="%s" stroke-width="2">%s</polygon>`+"\n",
			num(x), num(y-8.5), num(x+8.5), num(y), num(x), num(y+8.5), num(x-8.5), num(y), colour, title)
	case markerSquare:
		c.printf(`<rect x="%s" y="%s" width="7" height="7" fill="%s">%s</rect>`+"\n", num(x-3.5), num(y-3.5), colour, title)
	}
}

// legend names what the chart draws, and only that: the latency series
// with points (with their lines when joined), the SLO line when there is
// an SLO, the not-ok ring when a step has one.
func (c *svgCanvas) legend(y float64, series []svgSeries, joined, slo, notOK bool) {
	x := plotLeft
	// 6.5 units a character approximates sans-serif at 12 units; an
	// overestimate only widens the gaps.
	advance := func(label string) { x += 30 + 6.5*float64(runeWidth(label)) + 22 }
	for _, s := range series {
		if joined {
			c.line(x, y, x+24, y, s.colour, 2, "")
		}
		c.marker(s.shape, svgPoint{x: x + 12, y: y}, s.colour)
		c.text(x+30, y+4, "start", 12, "", "", s.name)
		advance(s.name)
	}
	label := "achieved (right axis)"
	if joined {
		c.line(x, y, x+24, y, colourAchieved, 2, "")
	}
	c.marker(markerSquare, svgPoint{x: x + 12, y: y}, colourAchieved)
	c.text(x+30, y+4, "start", 12, "", "", label)
	advance(label)

	label = "achieved = offered"
	c.line(x, y, x+24, y, colourAchieved, 1, "2 3")
	c.text(x+30, y+4, "start", 12, "", "", label)
	advance(label)

	if slo {
		label = "SLO"
		c.line(x, y, x+24, y, colourSLO, 1.5, "8 4")
		c.text(x+30, y+4, "start", 12, "", "", label)
		advance(label)
	}

	if notOK {
		label = "not ok"
		c.printf(`<circle cx="%s" cy="%s" r="7" fill="none" stroke="%s" stroke-width="2"/>`+"\n", num(x+12), num(y), colourBad)
		c.text(x+30, y+4, "start", 12, "", "", label)
	}
}

// niceScale rounds v up to 1, 2, 2.5 or 5 times a power of ten and picks a
// tick step giving five or six labels. Below 10 records/s whole-number tick
// labels would repeat, so the scale never goes below 0..10.
func niceScale(v float64) (top, step float64) {
	if !(v > 10) || math.IsInf(v, 0) {
		v = 10
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for {
		for _, c := range []struct{ m, div float64 }{{1, 5}, {2, 4}, {2.5, 5}, {5, 5}} {
			// The slack absorbs Log10/Pow rounding so that exactly 1000
			// stays 1000 rather than becoming 2000.
			if v <= c.m*p*(1+1e-9) {
				return c.m * p, c.m * p / c.div
			}
		}
		p *= 10
	}
}

// latencyDecades returns the latency axis as powers of ten of nanoseconds:
// a decade below the smallest latency plotted to a decade above the largest,
// never narrower than 1ms..1s so that charts of different runs compare at a
// glance. The SLO counts as plotted so that its line is always on the chart.
func latencyDecades(steps []Step, slo time.Duration) (lo, hi int) {
	lo, hi = 6, 9
	note := func(d time.Duration) {
		if d <= 0 {
			return
		}
		lo = min(lo, max(0, floorExp(int64(d))-1))
		hi = max(hi, min(18, ceilExp(int64(d))+1))
	}
	note(slo)
	for _, s := range steps {
		if s.Outputs <= 0 {
			continue
		}
		note(s.P50)
		note(s.P99)
		note(s.P999)
		note(s.Max)
	}
	return lo, hi
}

// floorExp is floor(log10(n)) for n >= 1, in integers to avoid float
// rounding at exact powers of ten.
func floorExp(n int64) int {
	e := 0
	for ; n >= 10; n /= 10 {
		e++
	}
	return e
}

func ceilExp(n int64) int {
	e := floorExp(n)
	if pow10(e) < n {
		e++
	}
	return e
}

func pow10(e int) int64 {
	p := int64(1)
	for range e {
		p *= 10
	}
	return p
}

func finiteOr0(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func clamp(v, lo, hi float64) float64 {
	if math.IsNaN(v) {
		return lo
	}
	return min(max(v, lo), hi)
}

// num formats a coordinate; a non-finite value would make the SVG invalid,
// so it becomes 0 as a last resort.
func num(v float64) string {
	return strconv.FormatFloat(finiteOr0(v), 'f', 1, 64)
}

// esc escapes text for SVG character data and attribute values; EscapeText
// also replaces characters XML cannot carry.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder never fails
	return b.String()
}
