package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcert/mcert/provider"
)

// metrics are one server's Prometheus metrics. Each server has its own registry, not the
// package-level default, so that the many servers of one test process do not collide.
type metrics struct {
	registry         *prometheus.Registry
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	ceremonies       *prometheus.CounterVec
	ceremonyDuration *prometheus.HistogramVec
}

func newMetrics(extra ...prometheus.Collector) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(extra...)
	f := promauto.With(reg)
	return &metrics{
		registry: reg,
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mcert_http_requests_total",
			Help: "HTTP requests by route pattern (never the raw path), method and status.",
		}, []string{"route", "method", "status"}),
		requestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcert_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		ceremonies: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mcert_ceremonies_total",
			Help: "Card logins, phone bindings and relying-party logins by step and outcome: ok or the error code.",
		}, []string{"ceremony", "outcome"}),
		ceremonyDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcert_ceremony_duration_seconds",
			Help:    "Time to answer one step of a ceremony.",
			Buckets: prometheus.DefBuckets,
		}, []string{"ceremony"}),
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observe counts one answered request; ceremony is "" for requests that are none.
func (m *metrics) observe(route, method string, status int, ceremony, outcome string, took time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.requestDuration.WithLabelValues(route, method).Observe(took.Seconds())
	if ceremony != "" {
		m.ceremonies.WithLabelValues(ceremony, outcome).Inc()
		m.ceremonyDuration.WithLabelValues(ceremony).Observe(took.Seconds())
	}
}

// ceremonies names the routes (as routeOf names them) whose POST is a step of a ceremony.
var ceremonies = map[string]string{
	"/api/v1/card/login":                 "card_login",
	"/api/v1/phone/bind/begin":           "bind_begin",
	"/api/v1/phone/bind/finish":          "bind_finish",
	"/api/v1/phone/login/begin":          "login_begin",
	"/api/v1/phone/login/finish":         "login_finish",
	"/api/v1/phone/login/deny":           "login_deny",
	provider.PathPrefix + "bc-authorize": "ciba_start",
}

// cibaGrantType is the token grant of OpenID CIBA.
const cibaGrantType = "urn:openid:params:grant-type:ciba"

const tokenRoute = provider.PathPrefix + "token"

// ceremonyOf names the ceremony step a request was, once answered, or "" for none. A CIBA poll
// is told from a code exchange by its grant type, which the provider has parsed into the
// request's form by then.
func ceremonyOf(r *http.Request, route string) string {
	switch {
	case r.Method != http.MethodPost:
		return ""
	case route == tokenRoute && r.PostForm.Get("grant_type") == cibaGrantType:
		return "ciba_token"
	}
	return ceremonies[route]
}

// outcome is "ok" for a success, else the error code the answer carried (see errorCodeKey),
// else the status class such as "4xx".
func outcome(status int, code string) string {
	switch {
	case status >= 200 && status < 300:
		return "ok"
	case code != "":
		return code
	}
	return strconv.Itoa(status/100) + "xx"
}

// knownMethods bounds the method label: the method is the client's to choose.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// methodLabel is the request's method as the client sent it: HEAD, though served as GET.
func methodLabel(r *http.Request) string {
	switch {
	case isHead(r):
		return http.MethodHead
	case knownMethods[r.Method]:
		return r.Method
	}
	return "other"
}
