package loadgen

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleReport is a find-max run: it climbs, fails at the top, and comes
// back down, so run order differs from rate order.
func sampleReport() *Report {
	return &Report{
		Pipeline: "alerts",
		Cluster:  "embedded",
		SLO:      250 * time.Millisecond,
		Started:  time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600)),
		Settings: map[string]string{"gomaxprocs": "8", "commit.interval": "100ms"},
		Steps: []Step{
			{
				Target: 10000, Offered: 9998.6, Achieved: 9990.2, Duration: 30 * time.Second, Outputs: 300000,
				P50: 850 * time.Microsecond, P90: 2100 * time.Microsecond, P99: 12300 * time.Microsecond,
				P999: 48 * time.Millisecond, Max: 120 * time.Millisecond,
				CPUPerRecord: 42500 * time.Nanosecond, PeakRSS: 129394278, LagEnd: 120, Verdict: VerdictOK,
			},
			{
				Target: 40000, Offered: 38123.4, Achieved: 30511, Duration: 30 * time.Second, Outputs: 900000,
				P50: 40 * time.Millisecond, P90: 180 * time.Millisecond, P99: 1250 * time.Millisecond,
				P999: 2 * time.Second, Max: 3100 * time.Millisecond,
				LagEnd: 1234567, Verdict: VerdictSLO,
			},
			{
				Target: 20000, Offered: 20000, Achieved: 19876, Duration: 30 * time.Second, Outputs: 0,
				CPUPerRecord: 51 * time.Microsecond, LagEnd: 9876, Verdict: VerdictLag,
			},
		},
		FindMax:        true,
		MaxSustainable: 9998.6,
	}
}

// wantRows are sampleReport's steps as formatted, in run order, one string
// per column of stepColumns.
var wantRows = [][]string{
	{"10,000", "9,999", "9,990", "850µs", "2.1ms", "12.3ms", "48ms", "120ms", "42.5µs", "123.4 MiB", "120", "ok"},
	{"40,000", "38,123", "30,511", "40ms", "180ms", "1.25s", "2s", "3.1s", "-", "-", "1,234,567", "slo"},
	{"20,000", "20,000", "19,876", "-", "-", "-", "-", "-", "51µs", "-", "9,876", "lag"},
}

func TestReportWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")

	for _, want := range []string{"alerts", "embedded", "250ms", "2025-03-04T04:06:07Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("header lacks %q:\n%s", want, out)
		}
	}
	ci := strings.Index(out, "commit.interval = 100ms")
	gi := strings.Index(out, "gomaxprocs = 8")
	if ci < 0 || gi < 0 || ci > gi {
		t.Errorf("settings missing or not sorted by name:\n%s", out)
	}

	// The column header, then the rows in run order; "123.4 MiB" splits
	// into two fields.
	hdr := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "target/s") {
			hdr = i
			break
		}
	}
	if hdr < 0 || hdr+len(wantRows) >= len(lines) {
		t.Fatalf("no table header or too few rows:\n%s", out)
	}
	wantHdr := []string{"target/s", "offered/s", "achieved/s", "p50", "p90", "p99", "p99.9", "max", "CPU/rec", "peak", "RSS", "lag", "verdict"}
	if got := strings.Fields(lines[hdr]); !reflect.DeepEqual(got, wantHdr) {
		t.Errorf("header fields = %q, want %q", got, wantHdr)
	}
	for i, want := range wantRows {
		want = strings.Fields(strings.Join(want, " "))
		if got := strings.Fields(lines[hdr+1+i]); !reflect.DeepEqual(got, want) {
			t.Errorf("row %d fields = %q, want %q", i, got, want)
		}
	}

	// Right alignment: every row ends each numeric column at the same
	// rune offset as the header, measured here on the lag column.
	lagEnd := func(l string, field string) int {
		idx := strings.LastIndex(l, field)
		return len([]rune(l[:idx+len(field)]))
	}
	hdrEnd := lagEnd(lines[hdr], "lag")
	for i, want := range wantRows {
		if got := lagEnd(lines[hdr+1+i], want[10]); got != hdrEnd {
			t.Errorf("row %d: lag column ends at %d, header at %d:\n%s", i, got, hdrEnd, out)
		}
	}

	if last := lines[len(lines)-1]; last != "max sustainable: 9,999 records/s (p99 <= SLO, lag bounded)" {
		t.Errorf("last line = %q", last)
	}
}

func TestReportWriteTextNoneSustainable(t *testing.T) {
	r := sampleReport()
	r.MaxSustainable = 0
	for name, write := range map[string]func(io.Writer) error{"text": r.WriteText, "markdown": r.WriteMarkdown} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(b.String(), "max sustainable: none of the steps met the SLO\n") {
			t.Errorf("%s: no 'none' line:\n%s", name, b.String())
		}
	}
}

func TestReportWriteMarkdown(t *testing.T) {
	r := sampleReport()
	r.Settings["batch_size|x"] = "a*b"
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"- **pipeline:** alerts\n",
		"- **cluster:** embedded\n",
		"- **SLO:** p99 <= 250ms\n",
		"- **started:** 2025-03-04T04:06:07Z\n",
		"  - batch\\_size\\|x: a\\*b\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}

	var table [][]string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(l, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		table = append(table, cells)
	}
	if len(table) != 2+len(wantRows) {
		t.Fatalf("table has %d lines, want %d:\n%s", len(table), 2+len(wantRows), out)
	}
	if !reflect.DeepEqual(table[0], stepColumns) {
		t.Errorf("table header = %q", table[0])
	}
	delim := regexp.MustCompile(`^:?-{3,}:?$`)
	for i, c := range table[1] {
		if !delim.MatchString(c) {
			t.Errorf("delimiter cell %d = %q", i, c)
		}
	}
	for i, want := range wantRows {
		if got := table[2+i]; !reflect.DeepEqual(got, want) {
			t.Errorf("row %d = %q, want %q", i, got, want)
		}
	}
	if !strings.HasSuffix(out, "\nmax sustainable: 9,999 records/s (p99 <= SLO, lag bounded)\n") {
		t.Errorf("no max-sustainable line:\n%s", out)
	}
}

func TestReportWriteJSONRoundTrip(t *testing.T) {
	want := sampleReport()
	var b bytes.Buffer
	if err := want.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\n  \"pipeline\": \"alerts\"") {
		t.Errorf("not indented:\n%s", b.String())
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	got.Started = got.Started.UTC()
	want.Started = want.Started.UTC()
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, *want)
	}
}

func TestReportWriteJSONNaN(t *testing.T) {
	r := sampleReport()
	r.Steps[0].Offered = nanValue()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err == nil {
		t.Error("a NaN rate encoded without error")
	}
	if b.Len() != 0 {
		t.Errorf("wrote %d bytes despite the error", b.Len())
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestReportNil(t *testing.T) {
	var r *Report
	for name, write := range map[string]func(io.Writer) error{
		"text": r.WriteText, "markdown": r.WriteMarkdown, "json": r.WriteJSON, "svg": r.WriteSVG,
	} {
		if err := write(io.Discard); !errors.Is(err, errNilReport) {
			t.Errorf("%s: err = %v, want errNilReport", name, err)
		}
	}
}

// svgInfo is what checkSVG learned from a chart.
type svgInfo struct {
	polylines [][][2]float64 // points of each polyline, in document order
	strokes   []string       // stroke of each polyline
	texts     []string       // character data of every <text>
	rings     int            // red not-ok rings
	markers   []svgMarker    // every other circle, polygon and rect, in document order
}

// svgMarker is a marker of the chart: its element, its centre, fill and
// stroke.
type svgMarker struct {
	element      string
	x, y         float64
	fill, stroke string
}

// plotted are the markers inside the plot's frame (the legend's are below
// it).
func (info svgInfo) plotted() []svgMarker {
	var out []svgMarker
	for _, m := range info.markers {
		if m.y <= plotBot+10 {
			out = append(out, m)
		}
	}
	return out
}

// checkSVG fails t unless out is a well-formed, self-contained SVG document
// without non-finite numbers.
func checkSVG(t *testing.T, out string) svgInfo {
	t.Helper()
	for _, bad := range []string{"NaN", "Inf", "<script", "<style", "href", "@import", "url("} {
		if strings.Contains(out, bad) {
			t.Errorf("SVG contains %q", bad)
		}
	}
	if n := strings.Count(out, "http"); n != 1 || !strings.Contains(out, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Errorf("SVG has %d occurrences of http, want only the xmlns", n)
	}

	var info svgInfo
	dec := xml.NewDecoder(strings.NewReader(out))
	depth, roots := 0, 0
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v\n%s", err, out)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root element = %v", tok.Name)
				}
				attrs := map[string]string{}
				for _, a := range tok.Attr {
					attrs[a.Name.Local] = a.Value
				}
				if attrs["viewBox"] != "0 0 900 500" {
					t.Errorf("viewBox = %q", attrs["viewBox"])
				}
			}
			depth++
			switch tok.Name.Local {
			case "polyline":
				var pts [][2]float64
				for _, a := range tok.Attr {
					switch a.Name.Local {
					case "points":
						for _, p := range strings.Fields(a.Value) {
							x, y, ok := strings.Cut(p, ",")
							fx, err1 := strconv.ParseFloat(x, 64)
							fy, err2 := strconv.ParseFloat(y, 64)
							if !ok || err1 != nil || err2 != nil {
								t.Fatalf("bad point %q", p)
							}
							pts = append(pts, [2]float64{fx, fy})
						}
					case "stroke":
						info.strokes = append(info.strokes, a.Value)
					}
				}
				info.polylines = append(info.polylines, pts)
			case "circle", "polygon", "rect":
				m := svgMarker{element: tok.Name.Local}
				attrs := map[string]string{}
				for _, a := range tok.Attr {
					attrs[a.Name.Local] = a.Value
				}
				m.fill, m.stroke = attrs["fill"], attrs["stroke"]
				f := func(k string) float64 {
					v, _ := strconv.ParseFloat(attrs[k], 64)
					return v
				}
				switch m.element {
				case "circle":
					m.x, m.y = f("cx"), f("cy")
				case "rect":
					m.x, m.y = f("x")+f("width")/2, f("y")+f("height")/2
				case "polygon":
					// The centre of the bounding box: a triangle's tip is
					// further from its point than its base.
					lo, hi := [2]float64{math.Inf(1), math.Inf(1)}, [2]float64{math.Inf(-1), math.Inf(-1)}
					for _, p := range strings.Fields(attrs["points"]) {
						x, y, _ := strings.Cut(p, ",")
						fx, _ := strconv.ParseFloat(x, 64)
						fy, _ := strconv.ParseFloat(y, 64)
						lo = [2]float64{min(lo[0], fx), min(lo[1], fy)}
						hi = [2]float64{max(hi[0], fx), max(hi[1], fy)}
					}
					m.x, m.y = (lo[0]+hi[0])/2, (lo[1]+hi[1])/2
				}
				switch {
				case m.element == "circle" && m.stroke == colourBad:
					info.rings++
				case m.element == "rect" && m.fill == "#ffffff":
					// The background.
				case m.element == "rect" && m.fill == "none":
					// The frame.
				default:
					info.markers = append(info.markers, m)
				}
			case "text":
				inText = true
				info.texts = append(info.texts, "")
			}
		case xml.EndElement:
			depth--
			if tok.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				info.texts[len(info.texts)-1] += string(tok)
			}
		}
	}
	if roots != 1 {
		t.Errorf("%d root elements", roots)
	}
	for _, pl := range info.polylines {
		for _, p := range pl {
			if p[0] < 0 || p[0] > 900 || p[1] < 0 || p[1] > 500 {
				t.Errorf("point %v outside the viewBox", p)
			}
		}
	}
	return info
}

func writeSVG(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func hasText(texts []string, s string) bool {
	for _, t := range texts {
		if t == s {
			return true
		}
	}
	return false
}

func TestReportWriteSVG(t *testing.T) {
	r := sampleReport()
	r.Pipeline = `prior<auth> & "co"`
	info := checkSVG(t, writeSVG(t, r))

	// p50, p99, p99.9, achieved.
	if len(info.polylines) != 4 {
		t.Fatalf("%d polylines, want 4", len(info.polylines))
	}
	wantStrokes := []string{colourP50, colourP99, colourP999, colourAchieved}
	if !reflect.DeepEqual(info.strokes, wantStrokes) {
		t.Errorf("strokes = %q, want %q", info.strokes, wantStrokes)
	}
	// The step without outputs has no latency points, but an achieved one.
	for i, n := range []int{2, 2, 2, 3} {
		if got := len(info.polylines[i]); got != n {
			t.Errorf("polyline %d has %d points, want %d", i, got, n)
		}
	}
	// Plotted by offered rate, not run order.
	for i, pl := range info.polylines {
		for j := 1; j < len(pl); j++ {
			if pl[j][0] <= pl[j-1][0] {
				t.Errorf("polyline %d goes back in x: %v", i, pl)
			}
		}
	}
	// Higher latency is higher up the chart.
	if p50, p99 := info.polylines[0], info.polylines[1]; p99[0][1] >= p50[0][1] {
		t.Errorf("p99 (y %v) not above p50 (y %v)", p99[0][1], p50[0][1])
	}
	if info.rings != 2+1 { // two not-ok steps, plus the legend's sample ring
		t.Errorf("%d red rings, want 3", info.rings)
	}

	for _, want := range []string{
		`prior<auth> & "co": latency and throughput against offered rate (embedded)`,
		"SLO 250ms", "1ms", "10ms", "100ms", "1s", "0", "offered rate (records/s)",
		"p50", "p99", "p99.9", "achieved = offered",
	} {
		if !hasText(info.texts, want) {
			t.Errorf("no text %q in %q", want, info.texts)
		}
	}
}

func TestReportWriteSVGEdgeCases(t *testing.T) {
	t.Run("no steps", func(t *testing.T) {
		r := sampleReport()
		r.Steps = nil
		info := checkSVG(t, writeSVG(t, r))
		if !hasText(info.texts, "no steps") {
			t.Errorf("no 'no steps' text in %q", info.texts)
		}
		if len(info.polylines) != 0 {
			t.Errorf("%d polylines", len(info.polylines))
		}
	})
	t.Run("no outputs", func(t *testing.T) {
		r := sampleReport()
		r.Steps = r.Steps[2:]
		info := checkSVG(t, writeSVG(t, r))
		if m := info.plotted(); len(m) != 1 || m[0].fill != colourAchieved {
			t.Errorf("markers %+v, want the achieved one only", m)
		}
		for _, absent := range []string{"p50", "p99", "p99.9"} {
			if hasText(info.texts, absent) {
				t.Errorf("legend names %s, which has no point", absent)
			}
		}
	})
	t.Run("equal latencies", func(t *testing.T) {
		r := sampleReport()
		for i := range r.Steps {
			s := &r.Steps[i]
			s.Outputs = 10
			s.P50, s.P90, s.P99, s.P999, s.Max = time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond
		}
		checkSVG(t, writeSVG(t, r))
	})
	t.Run("zero and odd values", func(t *testing.T) {
		r := &Report{Steps: []Step{
			{Outputs: 1, Verdict: VerdictOK},
			{Offered: nanValue(), Achieved: -5, Outputs: 1, P50: -time.Second, Max: 1 << 62, Verdict: "?"},
		}}
		checkSVG(t, writeSVG(t, r))
	})
}

func TestFormatRate(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{-0.4, "0"},
		{0.5, "1"},
		{999, "999"},
		{999.5, "1,000"},
		{1000, "1,000"},
		{12345, "12,345"},
		{12345.49, "12,345"},
		{123456, "123,456"},
		{1234567.8, "1,234,568"},
		{-1234, "-1,234"},
		{nanValue(), "-"},
	} {
		if got := formatRate(c.in); got != c.want {
			t.Errorf("formatRate(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want string
	}{
		{0, "0"}, {7, "7"}, {100, "100"}, {1000, "1,000"}, {-999999, "-999,999"},
		{9223372036854775807, "9,223,372,036,854,775,807"},
	} {
		if got := formatCount(c.in); got != c.want {
			t.Errorf("formatCount(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{5, "5ns"},
		{999, "999ns"},
		{time.Microsecond, "1µs"},
		{1234, "1.23µs"},
		{850 * time.Microsecond, "850µs"},
		{999400, "999µs"},
		{999600, "1ms"},
		{time.Millisecond, "1ms"},
		{9994 * time.Microsecond, "9.99ms"},
		{9996 * time.Microsecond, "10ms"},
		{12300 * time.Microsecond, "12.3ms"},
		{12345 * time.Microsecond, "12.3ms"},
		{99960 * time.Microsecond, "100ms"},
		{250 * time.Millisecond, "250ms"},
		{time.Second, "1s"},
		{1250 * time.Millisecond, "1.25s"},
		{1500 * time.Millisecond, "1.5s"},
		{90 * time.Second, "90s"},
		{1234 * time.Second, "1234s"},
		{-12300 * time.Microsecond, "-12.3ms"},
	} {
		if got := formatDuration(c.in); got != c.want {
			t.Errorf("formatDuration(%v) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := formatDuration(-1 << 63); !strings.HasPrefix(got, "-") || !strings.HasSuffix(got, "s") {
		t.Errorf("formatDuration(MinInt64) = %q", got)
	}
}

func TestFormatUnknownAndBytes(t *testing.T) {
	if got := formatCPU(0); got != "-" {
		t.Errorf("formatCPU(0) = %q, want -", got)
	}
	if got := formatCPU(42500); got != "42.5µs" {
		t.Errorf("formatCPU(42.5µs) = %q", got)
	}
	for _, c := range []struct {
		in   int64
		want string
	}{
		{0, "-"},
		{-1, "-"},
		{1 << 20, "1.0 MiB"},
		{1 << 19, "0.5 MiB"},
		{129394278, "123.4 MiB"},
		{3 << 30, "3072.0 MiB"},
	} {
		if got := formatMiB(c.in); got != c.want {
			t.Errorf("formatMiB(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestReportNiceScale(t *testing.T) {
	for _, c := range []struct {
		in, top, step float64
	}{
		{0, 10, 2},
		{3, 10, 2},
		{10, 10, 2},
		{11, 20, 5},
		{1000, 1000, 200},
		{38123.4, 50000, 10000},
		{20001, 25000, 5000},
		{100001, 200000, 50000},
	} {
		top, step := niceScale(c.in)
		if top != c.top || step != c.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.in, top, step, c.top, c.step)
		}
		if n := top / step; n < 4 || n > 5 {
			t.Errorf("niceScale(%v) gives %v intervals", c.in, n)
		}
	}
}

// Regression (issue 23): the chart of a one-step run (a fixed-rate run)
// had its point on the frame's right edge, p99 hidden under p99.9 (same
// marker, same place) and a legend entry for every series, drawn or not.
// Now the point sits inside the frame, each percentile has a marker of
// its own that stays visible when they coincide, and the legend names what
// is drawn only.
func TestReportWriteSVGOneStep(t *testing.T) {
	r := sampleReport()
	r.FindMax = false
	r.MaxSustainable = 0
	r.Steps = r.Steps[:1]
	s := &r.Steps[0]
	s.P99 = s.P999 // as a short step measures them
	info := checkSVG(t, writeSVG(t, r))

	if len(info.polylines) != 0 {
		t.Errorf("%d polylines: a single point is no line", len(info.polylines))
	}
	byColour := map[string]svgMarker{}
	for _, m := range info.plotted() {
		c := m.fill
		if c == "none" {
			c = m.stroke
		}
		if _, dup := byColour[c]; dup {
			t.Errorf("two markers of colour %s for one step", c)
		}
		byColour[c] = m
		const margin = 20
		if m.x < plotLeft+margin || m.x > plotRight-margin || m.y < plotTop+margin || m.y > plotBot-margin {
			t.Errorf("marker %+v on or near the frame (x %v..%v, y %v..%v)", m, plotLeft, plotRight, plotTop, plotBot)
		}
	}
	p50, p99, p999, ach := byColour[colourP50], byColour[colourP99], byColour[colourP999], byColour[colourAchieved]
	if p50.element != "circle" || p99.element != "polygon" || p999.element != "polygon" || ach.element != "rect" {
		t.Fatalf("markers %+v: want a p50 dot, a p99 triangle, a p99.9 diamond and an achieved square", info.plotted())
	}
	// p99 and p99.9 are at one place: the diamond drawn over the triangle
	// is hollow, so both show.
	if math.Abs(p99.y-p999.y) > 3 || p999.fill != "none" || p999.stroke != colourP999 {
		t.Errorf("p99 %+v and p99.9 %+v: want p99.9 a hollow marker around p99", p99, p999)
	}
	for _, want := range []string{"p50", "p99", "p99.9", "achieved (right axis)", "SLO"} {
		if !hasText(info.texts, want) {
			t.Errorf("legend lacks %q", want)
		}
	}
	if hasText(info.texts, "not ok") || info.rings != 0 {
		t.Errorf("a legend entry or ring for not ok (%d rings), and the step is ok", info.rings)
	}

	r.SLO = 0
	if info := checkSVG(t, writeSVG(t, r)); hasText(info.texts, "SLO") {
		t.Error("legend names the SLO, and none is drawn")
	}
}

// Regression (issue 23): a fixed-rate run printed and wrote "max
// sustainable" as if it had searched for a maximum. Only a find-max run
// does; a fixed-rate run says whether its rate held, in every format, and
// its JSON has no maxSustainable.
func TestReportFixedRateClaimsNoMaximum(t *testing.T) {
	r := sampleReport()
	r.FindMax = false
	r.MaxSustainable = 0
	r.Steps = []Step{r.Steps[0], r.Steps[0], r.Steps[0]}
	for i := range r.Steps {
		r.Steps[i].Target = 2000
	}
	r.Steps[2].Verdict = VerdictLag
	want := "fixed rate 2,000 records/s: 2 of 3 steps ok (p99 <= SLO, lag bounded); no maximum searched for (--find-max does)\n"
	for name, write := range map[string]func(io.Writer) error{"text": r.WriteText, "markdown": r.WriteMarkdown, "json": r.WriteJSON} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if strings.Contains(strings.ToLower(out), "max sustainable") || strings.Contains(out, "maxSustainable") {
			t.Errorf("%s claims a maximum:\n%s", name, out)
		}
		if name != "json" && (!strings.HasSuffix(out, want) || !strings.Contains(out, "fixed rate\n")) {
			t.Errorf("%s: want the run's mode and the last line %q:\n%s", name, want, out)
		}
		if name == "json" && !strings.Contains(out, `"findMax": false`) {
			t.Errorf("json does not say the run did not search:\n%s", out)
		}
	}
}

// A fixed-rate run repeated at one rate (--repeat) is markers, not lines:
// its steps' offered rates differ by a few records/s, and a line through
// them would zigzag up and down over one spot of the x axis.
func TestReportWriteSVGFixedRateRepeats(t *testing.T) {
	r := sampleReport()
	r.FindMax = false
	r.MaxSustainable = 0
	step := r.Steps[0]
	r.Steps = nil
	for i, offered := range []float64{1999, 2001, 1998} {
		s := step
		s.Target, s.Offered, s.Achieved = 2000, offered, offered-5
		s.P99 += time.Duration(i) * time.Millisecond
		r.Steps = append(r.Steps, s)
	}
	info := checkSVG(t, writeSVG(t, r))
	if len(info.polylines) != 0 {
		t.Errorf("%d polylines through repeats of one rate", len(info.polylines))
	}
	if n := len(info.plotted()); n != 3*4 {
		t.Errorf("%d markers, want 4 for each of 3 steps", n)
	}
}
