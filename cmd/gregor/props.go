package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf16"
)

// maxPropertiesBytes bounds a config file read into memory. Kafka's
// server.properties is a few kilobytes; anything near this size is a wrong
// path (a log segment, a binary), and failing beats reading gigabytes.
const maxPropertiesBytes = 16 << 20

// PropertiesError is a syntax error in a .properties file. It names the file
// and the line where the offending logical line starts, because a key=value
// spread over continuation lines is reported where the user would look for it.
type PropertiesError struct {
	File string // name given to parseProperties; "" for none
	Line int    // 1-based line number where the logical line starts
	Msg  string
}

func (e *PropertiesError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// loadProperties reads and parses a Java .properties file (Kafka's
// server.properties format). Errors name the file, and the line for syntax
// errors.
func loadProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPropertiesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxPropertiesBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a properties file?", path, maxPropertiesBytes)
	}
	return parseProperties(path, data)
}

// parseProperties parses the text of a Java .properties file into a map; name
// is only used in error messages. It follows java.util.Properties.load, so a
// file that works with Kafka's own scripts means the same here:
//
//   - natural lines end with \n, \r or \r\n;
//   - a line whose first non-blank character is # or ! is a comment, and a
//     comment is never continued by a trailing backslash;
//   - an odd number of backslashes at the end of a line joins it with the
//     next one, whose leading blanks are dropped; after a line that is only
//     a backslash, the next one starts a logical line (a blank line is
//     skipped, a comment is a comment), because nothing precedes it;
//   - the key ends at the first unescaped '=', ':' or blank; blanks around
//     the separator are skipped, and a key alone has the empty value;
//   - escapes: \t \n \r \f, \uXXXX (surrogate pairs combine), and a
//     backslash before any other character stands for that character
//     (\\ \= \: \# \! and "\ ");
//   - a repeated key keeps its last value.
//
// Where it departs from Java, it does so to catch mistakes that Java would
// silently accept: the input is read as UTF-8 (not ISO-8859-1, since files
// are written in UTF-8 today), unescaped trailing blanks are trimmed from
// values (an invisible space after "9092" is almost always an accident; write
// "\ " to keep one), an empty key is an error, and so are malformed \u
// escapes and lone surrogates (Java also rejects malformed \u).
func parseProperties(name string, data []byte) (map[string]string, error) {
	props := make(map[string]string)
	text := string(data)
	text = strings.TrimPrefix(text, "\uFEFF") // editors on some systems add a BOM

	lineNo := 0
	var logical strings.Builder
	for len(text) > 0 {
		line := nextLine(&text)
		lineNo++
		start := lineNo

		trimmed := strings.TrimLeft(line, " \t\f")
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == '!' {
			continue
		}
		if trimmed == `\` && len(text) > 0 {
			// A line that is only a joining backslash adds nothing, and
			// Java reads the next line as the start of a logical line:
			// a blank one is skipped and one starting with # or ! is a
			// comment.
			continue
		}

		logical.Reset()
		logical.WriteString(trimmed)
		for continues(logical.String()) && len(text) > 0 {
			s := logical.String()
			logical.Reset()
			logical.WriteString(s[:len(s)-1]) // drop the joining backslash
			next := nextLine(&text)
			lineNo++
			logical.WriteString(strings.TrimLeft(next, " \t\f"))
		}
		s := logical.String()
		if continues(s) { // continuation at end of input: Java drops the backslash
			s = s[:len(s)-1]
			if s == "" {
				// A lone backslash on the last line adds nothing.
				// (Java reads it as an empty key when the line ends
				// in LF and as nothing when it ends in CRLF; an
				// empty key is refused here anyway.)
				continue
			}
		}

		key, value, err := splitProperty(s)
		if err != nil {
			return nil, &PropertiesError{File: name, Line: start, Msg: err.Error()}
		}
		props[key] = value
	}
	return props, nil
}

// nextLine cuts the first natural line (without its terminator) off *text.
func nextLine(text *string) string {
	s := *text
	i := strings.IndexAny(s, "\r\n")
	if i < 0 {
		*text = ""
		return s
	}
	line := s[:i]
	if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
		i++
	}
	*text = s[i+1:]
	return line
}

// continues reports whether a line ends with an odd number of backslashes,
// i.e. with a backslash that is not itself escaped.
func continues(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty splits one logical line (leading blanks already removed) into
// its unescaped key and value.
func splitProperty(line string) (key, value string, err error) {
	end := 0
	for end < len(line) {
		c := line[end]
		if c == '\\' {
			end += 2 // the escaped character is part of the key
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			break
		}
		end++
	}
	if end > len(line) {
		end = len(line)
	}
	rawKey, rest := line[:end], line[end:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}

	key, err = unescapeProperty(rawKey)
	if err != nil {
		return "", "", err
	}
	if key == "" {
		return "", "", errors.New("empty key")
	}
	value, err = unescapeProperty(rest)
	if err != nil {
		return "", "", fmt.Errorf("key %q: %w", key, err)
	}
	return key, value, nil
}

// unescapeProperty resolves backslash escapes and trims trailing blanks that
// were not escaped.
func unescapeProperty(s string) (string, error) {
	if !strings.ContainsAny(s, "\\ \t\f") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	keep := 0 // length of b up to and including the last non-blank or escaped rune
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			if c != ' ' && c != '\t' && c != '\f' {
				keep = b.Len()
			}
			continue
		}
		i++
		if i >= len(s) {
			break // a lone trailing backslash (only possible at end of input) means nothing
		}
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, n, err := decodeUnicodeEscape(s[i+1:])
			if err != nil {
				return "", err
			}
			b.WriteRune(r)
			i += n
		default:
			b.WriteByte(c)
		}
		keep = b.Len()
	}
	return b.String()[:keep], nil
}

// decodeUnicodeEscape decodes the XXXX after a "\u", and, when that is a high
// surrogate, the "\uXXXX" low surrogate that must follow it (Java strings are
// UTF-16, so characters outside the BMP are written as two escapes). It
// returns the rune and how many bytes of s it consumed.
func decodeUnicodeEscape(s string) (rune, int, error) {
	r1, ok := parseHex4(s)
	if !ok {
		return 0, 0, fmt.Errorf("malformed \\uXXXX escape %q", "\\u"+firstBytes(s, 4))
	}
	switch {
	case !utf16.IsSurrogate(r1):
		return r1, 4, nil
	case r1 >= 0xDC00:
		return 0, 0, fmt.Errorf("lone low surrogate \\u%04X", r1)
	}
	if len(s) >= 6 && s[4] == '\\' && s[5] == 'u' {
		if r2, ok := parseHex4(s[6:]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
			return utf16.DecodeRune(r1, r2), 10, nil
		}
	}
	return 0, 0, fmt.Errorf("high surrogate \\u%04X not followed by a \\uDC00-\\uDFFF escape", r1)
}

func parseHex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

func firstBytes(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// keyValueFlag is a repeatable "key=value" flag (--set, --config). It keeps
// every occurrence in order so that later ones win when applied, the way a
// shell user expects "--set a=1 --set a=2" to mean a=2.
type keyValueFlag struct {
	pairs [][2]string
}

var _ flag.Value = (*keyValueFlag)(nil)

// String renders the pairs as given, for flag's usage and error messages.
func (f *keyValueFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, len(f.pairs))
	for i, kv := range f.pairs {
		parts[i] = kv[0] + "=" + kv[1]
	}
	return strings.Join(parts, ",")
}

// Set parses one "key=value". The value is everything after the first '='
// and is kept verbatim (it may itself contain '='); the key must be non-empty
// and blank-free, because a key with a stray space would silently configure
// nothing.
func (f *keyValueFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q is not key=value", s)
	}
	if k == "" {
		return fmt.Errorf("%q has an empty key", s)
	}
	if strings.ContainsAny(k, " \t\r\n\f") {
		return fmt.Errorf("key %q contains blanks", k)
	}
	f.pairs = append(f.pairs, [2]string{k, v})
	return nil
}

// Map returns the pairs as a map, later occurrences winning.
func (f *keyValueFlag) Map() map[string]string {
	m := make(map[string]string, len(f.pairs))
	f.applyTo(m)
	return m
}

// applyTo writes the pairs over m in order, so later ones win.
func (f *keyValueFlag) applyTo(m map[string]string) {
	for _, kv := range f.pairs {
		m[kv[0]] = kv[1]
	}
}

// loadConfig builds the effective configuration of a subcommand: the
// properties file at path (none when path is ""), then every --set over it.
// Command-line settings win because they are the more specific, more recent
// intent (the same precedence as Kafka's --override).
func loadConfig(path string, sets *keyValueFlag) (map[string]string, error) {
	cfg := make(map[string]string)
	if path != "" {
		fileCfg, err := loadProperties(path)
		if err != nil {
			return nil, err
		}
		cfg = fileCfg
	}
	if sets != nil {
		sets.applyTo(cfg)
	}
	return cfg, nil
}

// sortedKeys returns m's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
