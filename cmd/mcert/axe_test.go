package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axe-core (Deque Systems, MPL-2.0; testdata/axe/LICENSE) checks a page against WCAG 2.2 A and
// AA. It is kept in the repository so that the tests need nothing fetched at run time.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// checkAccessible runs axe-core on the page as it stands and fails the test for every
// violation, named with what the page was showing. The script is evaluated through the
// DevTools protocol, which the pages' Content-Security-Policy does not restrict.
func checkAccessible(t *testing.T, ctx context.Context, state string) {
	t.Helper()
	if !eval[bool](t, ctx, `typeof window.axe === "object"`) {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true")); err != nil {
			t.Fatalf("load axe-core: %v", err)
		}
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
		resultTypes: ["violations"],
	}).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe-core on %s: %v", state, err)
	}
	var violations []struct {
		ID, Help string
		Nodes    []string
	}
	if err := json.Unmarshal([]byte(out), &violations); err != nil {
		t.Fatalf("axe-core's answer on %s: %v", state, err)
	}
	for _, v := range violations {
		t.Errorf("axe-core, %s: %s (%s) at %s", state, v.ID, v.Help, strings.Join(v.Nodes, ", "))
	}
}
