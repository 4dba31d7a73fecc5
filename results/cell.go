package results

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Finish computes c's derived fields from its raw counts: ResetRate (Stale /
// Requests), ResetRateCI95 (the Wilson 95% interval of the same), and ConnsPer1k
// (NewConns per 1,000 requests). With no requests all three are zero. NotMeasured
// says why, if so, the cell did not measure the race (ReuseVerdict). Call it once the
// counts are final; calling it again recomputes the same values.
func (c *Cell) Finish() {
	c.NotMeasured = ReuseVerdict(c.Requests, c.ClosingResponses, c.Status)
	c.ResetRate = 0
	c.ConnsPer1k = 0
	c.ResetRateCI95 = Wilson(c.Stale, c.Requests)
	if c.Requests > 0 {
		c.ResetRate = float64(c.Stale) / float64(c.Requests)
		c.ConnsPer1k = float64(c.NewConns) * 1000 / float64(c.Requests)
	}
}

// Total returns the number of failed requests of every class, stale or not.
func (f Failures) Total() int64 {
	return f.ResetWrite + f.ResetRead + f.EOF + f.Timeout + f.Other
}

// maxCellIDReadable caps the readable part of a cell ID so that "<id>.hlog" stays well
// inside a 255-byte file name; the hash suffix keeps truncated IDs distinct.
const maxCellIDReadable = 200

// CellID returns a stable, filesystem-safe identifier for one cell, used as its ID in
// summary.json and as the stem of its .hlog file. It reads as the five spec fields and
// the repeat, each made safe, joined by '.', then an 8-hex-digit hash:
//
//	CellID("read-probe+retry-only:max=1", "builtin", "uniform:±10ms", "1ms", "sweep", 0)
//	  == "read-probe-plus-retry-only_max-1.builtin.uniform_pm10ms.1ms.sweep.r0.<hash>"
//
// Each field is lowercased; '±' becomes "pm", '+' "-plus-", 'µ' "u", ':' and ','
// '_', '=' '-', and any other character outside [a-z0-9._-] '-'; a run of the same
// separator ('-', '_', '.') collapses to one; separators are trimmed from the field's
// ends except a leading '-' (the sign in "offset:-5ms"); an empty field reads "none".
// The result contains only [a-z0-9._-], starts with a letter or digit and never
// contains "..".
//
// The hash is the first 8 hex digits of the SHA-256 of the raw fields and the decimal
// repeat joined by NUL bytes, so cells whose fields differ only in ways the readable
// part loses (case, punctuation, truncation) still get different IDs.
//
// settings are what else sets the cell apart where it is not the default ("get" for a GET
// cell, "t-1s" for a cell whose T an include entry set): each is a further field, read
// after the load, and hashed after the repeat. A cell without any keeps the ID it had
// before settings existed, so runs stored then still compare.
func CellID(strategy, upstream, skew, latency, load string, repeat int, settings ...string) string {
	raw := append([]string{strategy, upstream, skew, latency, load, strconv.Itoa(repeat)}, settings...)
	sum := sha256.Sum256([]byte(strings.Join(raw, "\x00")))

	parts := make([]string, 0, len(raw))
	for _, f := range append(raw[:5:5], settings...) {
		parts = append(parts, safeIDPart(f))
	}
	parts = append(parts, "r"+strconv.Itoa(repeat))
	readable := strings.TrimLeft(strings.Join(parts, "."), "-_.") // IDs start alphanumeric
	if len(readable) > maxCellIDReadable {
		readable = strings.TrimRight(readable[:maxCellIDReadable], "-_.")
	}
	return readable + "." + hex.EncodeToString(sum[:4])
}

// safeIDPart maps one field into [a-z0-9._-] as CellID documents.
func safeIDPart(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		case r == '±':
			b.WriteString("pm")
		case r == '+':
			b.WriteString("-plus-")
		case r == 'µ' || r == 'μ': // micro sign and Greek mu, as in "10µs"
			b.WriteString("u")
		case r == ':', r == ',':
			b.WriteByte('_')
		default: // '=' and everything else
			b.WriteByte('-')
		}
	}
	// Collapse runs of the same separator, then trim what could blur the '.' between
	// fields or dangle at an end. A leading '-' stays: in "offset:-5ms" it is a sign.
	out := make([]byte, 0, b.Len())
	for _, c := range []byte(b.String()) {
		if isIDSeparator(c) && len(out) > 0 && out[len(out)-1] == c {
			continue
		}
		out = append(out, c)
	}
	part := strings.TrimRight(strings.TrimLeft(string(out), "._"), "-_.")
	if part == "" {
		return "none"
	}
	return part
}

func isIDSeparator(c byte) bool { return c == '-' || c == '_' || c == '.' }
