package main

import (
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestParsePropertiesLines checks single logical lines against what
// java.util.Properties.load makes of them (with the documented departures:
// trailing blanks trimmed, UTF-8 input).
func TestParsePropertiesLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"equals", "a=b", map[string]string{"a": "b"}},
		{"colon", "a:b", map[string]string{"a": "b"}},
		{"space separator", "a b", map[string]string{"a": "b"}},
		{"tab separator", "a\tb", map[string]string{"a": "b"}},
		{"blanks around equals", "  a   =   b  ", map[string]string{"a": "b"}},
		{"blanks then colon", "a  :  b", map[string]string{"a": "b"}},
		{"space then value with equals", "a b=c", map[string]string{"a": "b=c"}},
		{"only the first separator counts", "a=b=c:d", map[string]string{"a": "b=c:d"}},
		{"second separator is value", "a==b", map[string]string{"a": "=b"}},
		{"colon after equals is value", "a=:b", map[string]string{"a": ":b"}},
		{"key alone", "a", map[string]string{"a": ""}},
		{"key with separator only", "a=", map[string]string{"a": ""}},
		{"key with blank value", "a =   ", map[string]string{"a": ""}},
		{"dotted kafka key", "log.dirs=/var/lib/gregor", map[string]string{"log.dirs": "/var/lib/gregor"}},
		{"listener URL with colons", "listeners=PLAINTEXT://127.0.0.1:9092", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092"}},
		{"hash inside value is not a comment", "a=b # c", map[string]string{"a": "b # c"}},
		{"comment hash", "# a=b", map[string]string{}},
		{"comment bang", "! a=b", map[string]string{}},
		{"indented comment", "   \t# a=b", map[string]string{}},
		{"blank line", "   \t\f", map[string]string{}},
		{"escaped equals in key", `a\=b=c`, map[string]string{"a=b": "c"}},
		{"escaped colon in key", `a\:b:c`, map[string]string{"a:b": "c"}},
		{"escaped space in key", `my\ key = v`, map[string]string{"my key": "v"}},
		{"escaped hash starts key", `\#a=b`, map[string]string{"#a": "b"}},
		{"escaped backslash", `path=C:\\dir\\x`, map[string]string{"path": `C:\dir\x`}},
		{"tab and newline escapes", `a=x\ty\nz`, map[string]string{"a": "x\ty\nz"}},
		{"carriage return and form feed escapes", `a=\r\f`, map[string]string{"a": "\r\f"}},
		{"unknown escape is the char", `a=\q\"`, map[string]string{"a": `q"`}},
		{"unicode escape", `a=caf\u00e9`, map[string]string{"a": "café"}},
		{"unicode escape upper hex", `a=\u00C9`, map[string]string{"a": "É"}},
		{"unicode escape in key", `k\u0041=v`, map[string]string{"kA": "v"}},
		{"surrogate pair", `a=\uD83D\uDE00`, map[string]string{"a": "😀"}},
		{"raw UTF-8", "a=日本", map[string]string{"a": "日本"}},
		{"escaped trailing space kept", `a=b\ `, map[string]string{"a": "b "}},
		{"escaped leading space kept", `a=\ b`, map[string]string{"a": " b"}},
		{"trailing blanks trimmed", "a=b \t ", map[string]string{"a": "b"}},
		{"inner blanks kept", "a=b  c", map[string]string{"a": "b  c"}},
		{"even backslashes do not continue", `a=b\\`, map[string]string{"a": `b\`}},
		{"continuation at end of input", `a=b\`, map[string]string{"a": "b"}},
		{"BOM", "\uFEFFa=b", map[string]string{"a": "b"}},
		{"duplicate key: last wins", "a=1\na=2", map[string]string{"a": "2"}},
		{"CRLF", "a=1\r\nb=2\r\n", map[string]string{"a": "1", "b": "2"}},
		{"CR only", "a=1\rb=2", map[string]string{"a": "1", "b": "2"}},
		{"continuation", "a=b\\\n   c", map[string]string{"a": "bc"}},
		{"continuation keeps inner blank", "a=b \\\n   c", map[string]string{"a": "b c"}},
		{"continuation CRLF", "a=b\\\r\n  c\r\nd=e", map[string]string{"a": "bc", "d": "e"}},
		{"continuation over several lines", "a=1,\\\n  2,\\\n  3", map[string]string{"a": "1,2,3"}},
		{"continued line starting with hash is not a comment", "a=b\\\n  #c", map[string]string{"a": "b#c"}},
		{"continuation within key", "ab\\\n  cd=e", map[string]string{"abcd": "e"}},
		{"empty line ends continuation", "a=b\\\n\nc=d", map[string]string{"a": "b", "c": "d"}},
		{"comment is never continued", "# a=b\\\nc=d", map[string]string{"c": "d"}},
		{"odd backslashes continue", "a=b\\\\\\\nc", map[string]string{"a": `b\c`}},
		// Java's LineReader: after a line that is only a backslash, the
		// logical line is still empty, so the next line is read as the
		// start of one.
		{"lone backslash before a comment", "\\\n#x\n", map[string]string{}},
		{"lone backslash before an indented comment", "  \\\n  !x\na=b", map[string]string{"a": "b"}},
		{"lone backslash before a blank line", "\\\n\na=b\n", map[string]string{"a": "b"}},
		{"lone backslash before blanks", "\\\n \t\n", map[string]string{}},
		{"lone backslashes before a key", "\\\n\\\n  a=b", map[string]string{"a": "b"}},
		{"lone backslash on the last line, CRLF", "a=1\r\n\\\r\n", map[string]string{"a": "1"}},
		{"lone indented backslash on the last line", "a=1\n  \\", map[string]string{"a": "1"}},
		{"backslash after a key still joins a comment-like line", "a\\\n#x", map[string]string{"a#x": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProperties("t.properties", []byte(tt.in))
			if err != nil {
				t.Fatalf("parseProperties(%q): %v", tt.in, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("parseProperties(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantMsg  string
	}{
		{"empty key", "=value", 1, "empty key"},
		{"empty key after colon", "  : value", 1, "empty key"},
		{"short unicode escape", "a=1\nb=\\u12", 2, "malformed"},
		{"bad hex in unicode escape", "a=\\u12G4", 1, "malformed"},
		{"bad unicode escape in key", "\\uzzzz=1", 1, "malformed"},
		{"lone high surrogate", "a=\\uD83D", 1, "surrogate"},
		{"high surrogate then text", "a=\\uD83Dx", 1, "surrogate"},
		{"lone low surrogate", "a=\\uDE00", 1, "surrogate"},
		// A logical line is reported where it starts, not where it ends.
		{"error on a continued line", "# c\n\na=1,\\\n  \\u00", 3, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseProperties("server.properties", []byte(tt.in))
			var pe *PropertiesError
			if !errors.As(err, &pe) {
				t.Fatalf("parseProperties(%q) error = %v, want *PropertiesError", tt.in, err)
			}
			if pe.Line != tt.wantLine || pe.File != "server.properties" || !strings.Contains(pe.Msg, tt.wantMsg) {
				t.Errorf("error = %+v, want line %d containing %q", pe, tt.wantLine, tt.wantMsg)
			}
			wantPrefix := "server.properties:" + strconv.Itoa(tt.wantLine) + ": "
			if !strings.HasPrefix(err.Error(), wantPrefix) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), wantPrefix)
			}
		})
	}
}

// TestParsePropertiesServerFile parses a file shaped like Kafka's shipped
// config/server.properties.
func TestParsePropertiesServerFile(t *testing.T) {
	const file = `# Licensed to the Apache Software Foundation (ASF) ...
#
############################# Server Basics #############################

# The role of this server. Setting this puts us in KRaft mode
process.roles=broker,controller

# The node id associated with this instance's roles
node.id=1

controller.quorum.bootstrap.servers=127.0.0.1:9093

listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
    SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

num.network.threads=3
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
log.retention.hours=168
log.segment.bytes=1073741824
`
	got, err := parseProperties("server.properties", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"process.roles":                       "broker,controller",
		"node.id":                             "1",
		"controller.quorum.bootstrap.servers": "127.0.0.1:9093",
		"listeners":                           "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
		"inter.broker.listener.name":          "PLAINTEXT",
		"listener.security.protocol.map":      "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
		"num.network.threads":                 "3",
		"log.dirs":                            "/tmp/kraft-combined-logs",
		"num.partitions":                      "1",
		"log.retention.hours":                 "168",
		"log.segment.bytes":                   "1073741824",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestLoadPropertiesErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.properties")
	if _, err := loadProperties(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("loadProperties(missing) error = %v, want it to name %s", err, missing)
	}
	bad := filepath.Join(dir, "bad.properties")
	if err := os.WriteFile(bad, []byte("ok=1\n=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadProperties(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2: ") {
		t.Errorf("loadProperties(bad) error = %v, want prefix %s:2:", err, bad)
	}
}

func TestKeyValueFlag(t *testing.T) {
	var kv keyValueFlag
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&kv, "set", "")
	args := []string{"--set", "a=1", "-set=b=x=y", "--set", "a=2", "--set", "empty="}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "2", "b": "x=y", "empty": ""}
	if got := kv.Map(); !maps.Equal(got, want) {
		t.Errorf("Map() = %q, want %q", got, want)
	}
	if got, want := kv.String(), "a=1,b=x=y,a=2,empty="; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, bad := range []string{"novalue", "=v", "a b=c", " a=c"} {
		var kv keyValueFlag
		if err := kv.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil, want an error", bad)
		}
	}
	// flag calls String on a zero value to find defaults for usage text.
	if got := (*keyValueFlag)(nil).String(); got != "" {
		t.Errorf("nil String() = %q", got)
	}
}

// TestLoadConfigSetOverridesFile is the precedence rule: file, then --set in
// order.
func TestLoadConfigSetOverridesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(path, []byte("node.id=1\nlog.dirs=/a\nnum.partitions=3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var sets keyValueFlag
	for _, s := range []string{"log.dirs=/b", "node.id=2", "log.dirs=/c", "extra=x"} {
		if err := sets.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := loadConfig(path, &sets)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"node.id": "2", "log.dirs": "/c", "num.partitions": "3", "extra": "x"}
	if !maps.Equal(got, want) {
		t.Errorf("loadConfig = %q, want %q", got, want)
	}

	// No file: only the --set values.
	got, err = loadConfig("", &sets)
	if err != nil {
		t.Fatal(err)
	}
	if want := sets.Map(); !maps.Equal(got, want) {
		t.Errorf("loadConfig without file = %q, want %q", got, want)
	}
	// Neither.
	if got, err := loadConfig("", nil); err != nil || len(got) != 0 {
		t.Errorf("loadConfig(\"\", nil) = %q, %v", got, err)
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "nope"), &sets); err == nil {
		t.Error("loadConfig with a missing file succeeded")
	}
}

func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{"a=b", "a\\\n b", `\u0041=\uD83D\uDE00`, "# c\n!d\n", "a\\", `\`, "=", "a=\\u"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseProperties("fuzz", data)
		if err != nil {
			var pe *PropertiesError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a *PropertiesError with a line", err)
			}
			return
		}
		for k := range m {
			if k == "" {
				t.Fatal("empty key accepted")
			}
		}
	})
}
