package revocation

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Health reports whether every CRL source in use holds a CRL that is not stale; problems says,
// one sentence each, which ones do not. OCSP is not part of it: a responder is asked per login
// and its failures show in the metrics.
func (c *Checker) Health() (ok bool, problems []string) {
	if !c.cfg.Mode.usesCRL() {
		return true, nil
	}
	now := c.cfg.Now()
	for _, a := range c.order {
		for _, s := range a.sources() {
			l, lastErr := s.state()
			switch {
			case l == nil && lastErr != nil:
				problems = append(problems, fmt.Sprintf("revocation data is missing: %v", lastErr))
			case l != nil && !l.fresh(now):
				problems = append(problems, fmt.Sprintf("revocation data is stale: %v", staleError(s, l, lastErr)))
			}
		}
	}
	return len(problems) == 0, problems
}

// Collectors are the Checker's metrics, for the server's registry: per CA and CRL source, the
// age of the CRL in use and the time until its nextUpdate; and the OCSP queries by outcome.
func (c *Checker) Collectors() []prometheus.Collector {
	return []prometheus.Collector{crlCollector{c}, c.ocspQueries}
}

// crlCollector reads the CRLs' times when scraped, so the gauges are never older than the scrape.
type crlCollector struct{ c *Checker }

func (cc crlCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.c.crlAge
	ch <- cc.c.crlNext
}

func (cc crlCollector) Collect(ch chan<- prometheus.Metric) {
	now := cc.c.cfg.Now()
	for _, a := range cc.c.order {
		for _, s := range a.sources() {
			l, _ := s.state()
			if l == nil {
				continue
			}
			// A file name need not be UTF-8, which a label value must be.
			ca, src := strings.ToValidUTF8(a.name, "?"), strings.ToValidUTF8(s.String(), "?")
			ch <- prometheus.MustNewConstMetric(cc.c.crlAge, prometheus.GaugeValue, now.Sub(l.thisUpdate).Seconds(), ca, src)
			ch <- prometheus.MustNewConstMetric(cc.c.crlNext, prometheus.GaugeValue, l.nextUpdate.Sub(now).Seconds(), ca, src)
		}
	}
}
