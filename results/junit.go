package results

import (
	"encoding/xml"
	"io"
)

// JUnit XML, the subset CI systems read: one testsuite per rule, one testcase per rule
// and cell, a failure element for each failed check.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the gate result as JUnit XML.
func WriteJUnit(w io.Writer, g *GateResult) error {
	out := junitSuites{Name: "idlerace gate"}
	index := map[string]int{}
	for _, c := range g.Checks {
		i, ok := index[c.Rule]
		if !ok {
			i = len(out.Suites)
			index[c.Rule] = i
			out.Suites = append(out.Suites, junitSuite{Name: c.Rule})
		}
		tc := junitCase{Name: c.Cell, Classname: "idlerace.gate." + c.Metric, Time: "0", SystemOut: c.Message}
		if !c.Pass {
			tc.Failure = &junitFailure{Message: c.Message, Type: c.Kind, Text: c.Message}
			out.Suites[i].Failures++
			out.Failures++
		}
		out.Suites[i].Tests++
		out.Tests++
		out.Suites[i].Cases = append(out.Suites[i].Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
