package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// dashboardFile is the Grafana dashboard of README's "Operating it".
const dashboardFile = "../../deploy/grafana/mcert.json"

// dashboard is what the test reads of Grafana's dashboard JSON model.
type dashboard struct {
	Title      string           `json:"title"`
	UID        string           `json:"uid"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []dashboardVariable `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *dashboardDatasource     `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID      string               `json:"refId"`
		Expr       string               `json:"expr"`
		Datasource *dashboardDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

type dashboardDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardVariable struct {
	Name       string               `json:"name"`
	Type       string               `json:"type"`
	Query      json.RawMessage      `json:"query"` // a string, or an object with a query
	Datasource *dashboardDatasource `json:"datasource"`
}

// The dashboard's panels ask Prometheus through its "Data source" variable, so that it works
// with whichever Prometheus an operator imports it into.
var dashboardDatasourceRef = dashboardDatasource{Type: "prometheus", UID: "${datasource}"}

// targetLabels are the labels Prometheus gives every series it scrapes, which the server
// itself does not export.
var targetLabels = map[string]bool{"job": true, "instance": true}

// TestGrafanaDashboardQueriesExist checks deploy/grafana/mcert.json against what a real server
// serves at /metrics: that every metric a panel's query names is one the server exports, that
// every label it matches or groups by is on that metric, and that the dashboard is one Grafana
// imports: every panel titled, on the Prometheus data source variable, with a query and its
// own id.
func TestGrafanaDashboardQueriesExist(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s is not a dashboard's JSON: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("the dashboard has title %q and uid %q; it needs both", d.Title, d.UID)
	}
	families := exportedFamilies(t)

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !slices.ContainsFunc(d.Templating.List, func(v dashboardVariable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"`
	}) {
		t.Error(`the dashboard has no "datasource" variable of the Prometheus data sources`)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v dashboardVariable) bool { return v.Name == "instance" && v.Type == "query" }) {
		t.Error(`the dashboard has no "instance" variable`)
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		what := fmt.Sprintf("variable %q", v.Name)
		if v.Datasource == nil || *v.Datasource != dashboardDatasourceRef {
			t.Errorf("%s: datasource %+v, want %+v", what, v.Datasource, dashboardDatasourceRef)
		}
		q := variableQuery(t, what, v.Query)
		checkVariables(t, what, q, vars)
		checkLabelValues(t, what, q, families)
	}

	ids := map[int]string{}
	var walk func(panels []dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			what := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			switch other, dup := ids[p.ID]; {
			case p.ID <= 0:
				t.Errorf("%s: no id", what)
			case dup:
				t.Errorf("%s: its id is panel %q's too", what, other)
			}
			ids[p.ID] = p.Title
			if p.Title == "" {
				t.Errorf("%s: no title", what)
			}
			if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("%s: gridPos %+v is not within Grafana's 24 columns", what, g)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || *p.Datasource != dashboardDatasourceRef {
				t.Errorf("%s: datasource %+v, want %+v", what, p.Datasource, dashboardDatasourceRef)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", what)
			}
			refIDs := map[string]bool{}
			for _, tg := range p.Targets {
				what := fmt.Sprintf("%s, query %s", what, tg.RefID)
				if tg.RefID == "" || refIDs[tg.RefID] {
					t.Errorf("%s: refId empty or repeated", what)
				}
				refIDs[tg.RefID] = true
				if tg.Datasource != nil && *tg.Datasource != dashboardDatasourceRef {
					t.Errorf("%s: datasource %+v, want %+v", what, tg.Datasource, dashboardDatasourceRef)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: no expr", what)
					continue
				}
				checkVariables(t, what, tg.Expr, vars)
				q, err := parsePromQL(tg.Expr)
				if err != nil {
					t.Errorf("%s: %v in %s", what, err, tg.Expr)
					continue
				}
				checkQuery(t, what, q, families)
			}
		}
	}
	walk(d.Panels)
	if len(ids) == 0 {
		t.Error("the dashboard has no panels")
	}
}

// family is one metric family of /metrics: its type and the labels of its series.
type family struct {
	typ    dto.MetricType
	labels map[string]bool
}

// exportedFamilies scrapes a production-like server (a card CA with OCSP and a CRL file)
// after a health check and a card login, so that the labelled series exist, and returns its
// metric families by name.
func exportedFamilies(t *testing.T) map[string]family {
	t.Helper()
	p := newCardPKI(t, newClock().Now)
	crlFile := filepath.Join(t.TempDir(), "moica.crl")
	if err := os.WriteFile(crlFile, p.crl(newClock().Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := p.cardServer(t, "ocsp,crl", crlFile)
	b := s.browser(t)
	b.do("GET", "/healthz", nil).want(t, 200)
	b.do("POST", "/api/v1/card/login", pkcs7Body(t, b, p.card("王小明", "6789", cardOptions{}), "A123456789")).want(t, 200)

	r := s.admin(t)("GET", "/metrics", nil).want(t, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics content type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	families := map[string]family{}
	for name, mf := range mfs {
		f := family{typ: mf.GetType(), labels: map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				f.labels[l.GetName()] = true
			}
		}
		families[name] = f
	}
	return families
}

// seriesLabels are the labels of the series a query names, such as
// mcert_http_request_duration_seconds_bucket, or an error if the server exports none of them.
func seriesLabels(families map[string]family, name string) (map[string]bool, error) {
	with := func(f family, extra string) map[string]bool {
		labels := map[string]bool{extra: true}
		for l := range f.labels {
			labels[l] = true
		}
		return labels
	}
	if f, ok := families[name]; ok {
		switch f.typ {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return nil, fmt.Errorf("%s is a histogram: query its _bucket, _sum or _count", name)
		case dto.MetricType_SUMMARY:
			return with(f, "quantile"), nil
		}
		return f.labels, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		f, ok := families[strings.TrimSuffix(name, suffix)]
		if !ok || !strings.HasSuffix(name, suffix) {
			continue
		}
		switch histogram := f.typ == dto.MetricType_HISTOGRAM || f.typ == dto.MetricType_GAUGE_HISTOGRAM; {
		case histogram && suffix == "_bucket":
			return with(f, "le"), nil
		case histogram || f.typ == dto.MetricType_SUMMARY && suffix != "_bucket":
			return f.labels, nil
		}
	}
	return nil, fmt.Errorf("the server exports no metric %s", name)
}

// checkQuery fails unless every metric q names is exported, with the labels q uses of it.
func checkQuery(t *testing.T, what string, q promQuery, families map[string]family) {
	t.Helper()
	labels := map[string]map[string]bool{}
	for _, sel := range q.selectors {
		l, err := seriesLabels(families, sel.name)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		labels[sel.name] = l
		for _, name := range sel.labels {
			if !l[name] && !targetLabels[name] {
				t.Errorf("%s: %s has no label %q", what, sel.name, name)
			}
		}
	}
	for _, g := range q.groupings {
		for _, of := range g.of {
			for _, name := range g.labels {
				if l, ok := labels[of]; ok && !l[name] && !targetLabels[name] {
					t.Errorf("%s: groups %s by %q, a label it does not have", what, of, name)
				}
			}
		}
	}
}

// variableQuery is the PromQL of a query variable, whether Grafana stored it as a string or as
// an object.
func variableQuery(t *testing.T, what string, raw json.RawMessage) string {
	t.Helper()
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct{ Query string }
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Errorf("%s: query %s is neither a string nor an object with a query", what, raw)
	}
	return o.Query
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// checkLabelValues checks a variable's label_values(selector, label) as a panel's query.
func checkLabelValues(t *testing.T, what, query string, families map[string]family) {
	t.Helper()
	m := labelValuesQuery.FindStringSubmatch(strings.TrimSpace(query))
	if m == nil {
		t.Errorf("%s: query %q is not label_values(metric, label), the form this test checks", what, query)
		return
	}
	q, err := parsePromQL(m[1])
	if err != nil {
		t.Errorf("%s: %v in %s", what, err, query)
		return
	}
	q.groupings = append(q.groupings, promGrouping{labels: []string{m[2]}, of: q.names()})
	checkQuery(t, what, q, families)
}

var grafanaVariable = regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)|\[\[([a-zA-Z_][a-zA-Z0-9_]*)`)

// checkVariables fails if expr uses a dashboard variable that the dashboard does not define;
// Grafana's own, such as $__rate_interval, begin with two underscores.
func checkVariables(t *testing.T, what, expr string, vars map[string]bool) {
	t.Helper()
	for _, m := range grafanaVariable.FindAllStringSubmatch(expr, -1) {
		name := m[1] + m[2]
		if !vars[name] && !strings.HasPrefix(name, "__") {
			t.Errorf("%s: uses $%s, which the dashboard does not define", what, name)
		}
	}
}

// promQuery is what the test reads of a PromQL expression: the series it selects and the
// labels it groups them by.
type promQuery struct {
	selectors []promSelector
	groupings []promGrouping
}

// promSelector is a metric name and the labels its {…} matches on.
type promSelector struct {
	name   string
	labels []string
}

// promGrouping is a by (…), without (…), on (…), ignoring (…), group_left (…) or
// group_right (…) list, and the metrics it applies to.
type promGrouping struct {
	labels []string
	of     []string
}

func (q promQuery) names() []string {
	var names []string
	for _, s := range q.selectors {
		if !slices.Contains(names, s.name) {
			names = append(names, s.name)
		}
	}
	return names
}

// promToken is one token of a PromQL expression.
type promToken struct {
	kind byte // 'a' identifier, '"' string, '0' number or duration, '[' a range or subquery, '$' a Grafana variable, or the character of a bracket, a comma or an operator
	text string
}

var (
	promIdent    = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promNumber   = regexp.MustCompile(`^((\d+(ms|s|m|h|d|w|y))+|0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)`)
	promVariable = regexp.MustCompile(`^\$(\{[^}]*\}|[a-zA-Z0-9_]+)`)
	promOperator = regexp.MustCompile(`^(=~|!~|==|!=|<=|>=|[-+*/%^<>=@])`)
	promMatchers = map[string]bool{"=": true, "!=": true, "=~": true, "!~": true}
)

// tokenizePromQL splits expr into tokens, without the comments; a range or subquery, [...],
// is one token, as is a string.
func tokenizePromQL(expr string) ([]promToken, error) {
	var tokens []promToken
	for s := expr; s != ""; {
		var m string
		kind := s[0]
		switch c := s[0]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			s = s[1:]
			continue
		case c == '#':
			_, s, _ = strings.Cut(s, "\n")
			continue
		case c == '"' || c == '\'' || c == '`':
			end := 1
			for end < len(s) && s[end] != c {
				if s[end] == '\\' && c != '`' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, fmt.Errorf("a string not closed: %s", s)
			}
			m, kind = s[:end+1], '"'
		case c == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("a [ not closed: %s", s)
			}
			m = s[:end+1]
		case strings.IndexByte("(){},", c) >= 0:
			m = s[:1]
		case promIdent.MatchString(s):
			m, kind = promIdent.FindString(s), 'a'
		case promNumber.MatchString(s):
			m, kind = promNumber.FindString(s), '0'
		case promVariable.MatchString(s):
			m, kind = promVariable.FindString(s), '$'
		case promOperator.MatchString(s):
			m = promOperator.FindString(s)
		default:
			return nil, fmt.Errorf("unexpected %q", s)
		}
		tokens = append(tokens, promToken{kind, m})
		s = s[len(m):]
	}
	return tokens, nil
}

// promAggregators are PromQL's aggregation operators; promFunctions are those and its
// functions, with start() and end() of @.
var promAggregators, promFunctions = map[string]bool{}, map[string]bool{}

func init() {
	for _, f := range strings.Fields("sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio") {
		promAggregators[f], promFunctions[f] = true, true
	}
	for _, f := range strings.Fields(`
		abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week
		day_of_year days_in_month delta deriv double_exponential_smoothing exp floor histogram_avg
		histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
		histogram_sum holt_winters hour idelta increase info irate label_join label_replace ln log2
		log10 minute month predict_linear rate resets round scalar sgn sort sort_desc sort_by_label
		sort_by_label_desc sqrt time timestamp vector year avg_over_time min_over_time max_over_time
		sum_over_time count_over_time quantile_over_time stddev_over_time stdvar_over_time
		last_over_time present_over_time mad_over_time acos acosh asin asinh atan atanh cos cosh sin
		sinh tan tanh deg pi rad start end`) {
		promFunctions[f] = true
	}
}

// parsePromQL reads the metric names of expr, the labels each is matched on, and the labels it
// groups by, without parsing PromQL in full: an identifier is a metric unless it is a function
// (followed by a parenthesis), a keyword, a label inside {…} or one of a grouping's list; what it
// cannot place, such as a selector with no metric name, is an error.
func parsePromQL(expr string) (promQuery, error) {
	var q promQuery
	tokens, err := tokenizePromQL(expr)
	if err != nil {
		return q, err
	}
	// match[i] is the index of the parenthesis that closes or opens the one at i.
	match := make([]int, len(tokens))
	var open []int
	for i, tok := range tokens {
		switch tok.kind {
		case '(':
			open = append(open, i)
		case ')':
			if len(open) == 0 {
				return q, fmt.Errorf("a ) not opened")
			}
			j := open[len(open)-1]
			open = open[:len(open)-1]
			match[i], match[j] = j, i
		}
	}
	if len(open) > 0 {
		return q, fmt.Errorf("a ( not closed")
	}
	at := func(i int) promToken {
		if i < 0 || i >= len(tokens) {
			return promToken{}
		}
		return tokens[i]
	}
	// labelList reads the (a, b, …) at i, returning the labels and the index after it.
	labelList := func(i int) ([]string, int, error) {
		if at(i).kind != '(' {
			return nil, i, fmt.Errorf("%s not followed by (labels)", at(i-1).text)
		}
		var labels []string
		for i++; at(i).kind != ')'; i++ {
			if at(i).kind != 'a' {
				return nil, i, fmt.Errorf("%q in a list of labels", at(i).text)
			}
			labels = append(labels, at(i).text)
			if at(i+1).kind == ',' {
				i++
			}
		}
		return labels, i + 1, nil
	}
	type scoped struct {
		labels []string
		lo, hi int // token indexes of the selectors the grouping applies to
	}
	var groupings []scoped
	var selectorAt []int
	for i := 0; i < len(tokens); {
		tok := tokens[i]
		switch word := strings.ToLower(tok.text); {
		case tok.kind == '{':
			return q, fmt.Errorf("a selector with no metric name")
		case tok.kind != 'a':
			i++
		case word == "by" || word == "without":
			labels, next, err := labelList(i + 1)
			if err != nil {
				return q, err
			}
			switch {
			case at(i-1).kind == ')': // sum(…) by (…)
				groupings = append(groupings, scoped{labels, match[i-1], i - 1})
			case at(next).kind == '(': // sum by (…) (…)
				groupings = append(groupings, scoped{labels, next, match[next]})
			default:
				return q, fmt.Errorf("%s (…) neither after nor before an aggregation's (…)", word)
			}
			i = next
		case word == "on" || word == "ignoring" || word == "group_left" || word == "group_right":
			if strings.HasPrefix(word, "group_") && at(i+1).kind != '(' {
				i++
				continue
			}
			labels, next, err := labelList(i + 1)
			if err != nil {
				return q, err
			}
			groupings = append(groupings, scoped{labels, -1, len(tokens)})
			i = next
		case word == "and" || word == "or" || word == "unless" || word == "atan2" || word == "bool" ||
			word == "offset" || word == "inf" || word == "nan":
			i++
		case promAggregators[word] && (strings.EqualFold(at(i+1).text, "by") || strings.EqualFold(at(i+1).text, "without")):
			i++ // sum by (…) (…)
		case at(i+1).kind == '(':
			if !promFunctions[word] {
				return q, fmt.Errorf("no PromQL function %s", tok.text)
			}
			i++
		default:
			sel := promSelector{name: tok.text}
			i++
			if at(i).kind == '{' {
				for i++; at(i).kind != '}'; i++ {
					if at(i).kind != 'a' || !promMatchers[at(i+1).text] || at(i+2).kind != '"' {
						return q, fmt.Errorf("%s: a label matcher of no form the test reads at %q", sel.name, at(i).text)
					}
					sel.labels = append(sel.labels, at(i).text)
					i += 2
					if at(i+1).kind == ',' {
						i++
					}
				}
				i++
			}
			selectorAt = append(selectorAt, i-1)
			q.selectors = append(q.selectors, sel)
		}
	}
	for _, g := range groupings {
		var of []string
		for k, sel := range q.selectors {
			if selectorAt[k] > g.lo && selectorAt[k] < g.hi && !slices.Contains(of, sel.name) {
				of = append(of, sel.name)
			}
		}
		q.groupings = append(q.groupings, promGrouping{labels: g.labels, of: of})
	}
	return q, nil
}

// TestGrafanaPromQLNames checks the reading of metric and label names out of PromQL that
// TestGrafanaDashboardQueriesExist relies on.
func TestGrafanaPromQLNames(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       promQuery
		err        string
	}{
		{
			name: "a counter's rate by a label", expr: `sum by (route) (rate(mcert_http_requests_total{job=~"$job", status=~"5.."}[$__rate_interval]))`,
			want: promQuery{
				selectors: []promSelector{{"mcert_http_requests_total", []string{"job", "status"}}},
				groupings: []promGrouping{{[]string{"route"}, []string{"mcert_http_requests_total"}}},
			},
		},
		{
			name: "a histogram's quantile", expr: `histogram_quantile(0.95, sum by (route, le) (rate(h_bucket[5m])))`,
			want: promQuery{
				selectors: []promSelector{{"h_bucket", nil}},
				groupings: []promGrouping{{[]string{"route", "le"}, []string{"h_bucket"}}},
			},
		},
		{
			name: "by after the aggregation applies to its own argument", expr: `sum(rate(a_total[5m])) by (x) / sum(b)`,
			want: promQuery{
				selectors: []promSelector{{"a_total", nil}, {"b", nil}},
				groupings: []promGrouping{{[]string{"x"}, []string{"a_total"}}},
			},
		},
		{
			name: "strings, comments, numbers and keywords are no metrics",
			expr: "label_replace(up, \"dst\", 'x_total', `src`, \"(.*)\") > bool 1e-3 # not_a_metric\n offset 5m",
			want: promQuery{selectors: []promSelector{{"up", nil}}},
		},
		{
			name: "on applies to both sides", expr: `a / on (instance) group_left b{c="d"}`,
			want: promQuery{
				selectors: []promSelector{{"a", nil}, {"b", []string{"c"}}},
				groupings: []promGrouping{{[]string{"instance"}, []string{"a", "b"}}},
			},
		},
		{name: "a misspelt function", expr: `rat(a[5m])`, err: "no PromQL function rat"},
		{name: "a selector with no name", expr: `{__name__="a"}`, err: "no metric name"},
		{name: "a string not closed", expr: `a{b="c}`, err: "not closed"},
		{name: "a parenthesis not closed", expr: `sum(a`, err: "not closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePromQL(tc.expr)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one saying %q", err, tc.err)
				}
			case err != nil:
				t.Errorf("error %v", err)
			case !reflect.DeepEqual(got, tc.want):
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
