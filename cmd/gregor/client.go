package main

import (
	"errors"
	"flag"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultBootstrap is where the console tools look for a cluster when
// --bootstrap is not given: a development broker started by "gregor serve"
// on this machine. It is an address, not a host name, so that nothing
// depends on how "localhost" resolves.
const defaultBootstrap = "127.0.0.1:9092"

// addBootstrapFlag registers --bootstrap on fs.
func addBootstrapFlag(fs *flag.FlagSet) *string {
	return fs.String("bootstrap", defaultBootstrap, "comma-separated `host:port` list of brokers to bootstrap from")
}

// seedBrokers splits a --bootstrap value into addresses.
func seedBrokers(bootstrap string) ([]string, error) {
	var seeds []string
	for s := range strings.SplitSeq(bootstrap, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, usagef("--bootstrap: no broker addresses in %q", bootstrap)
	}
	return seeds, nil
}

// clientOpts are the kgo options every console tool shares.
func clientOpts(bootstrap string) ([]kgo.Opt, error) {
	seeds, err := seedBrokers(bootstrap)
	if err != nil {
		return nil, err
	}
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		// A recognisable client id shows up in broker logs and quotas.
		kgo.ClientID("gregor-cli"),
	}, nil
}

// brokerError is an error code a broker returned, rendered with Kafka's name
// for it (TOPIC_ALREADY_EXISTS) and the broker's own message when it sent
// one, because the generic description rarely says which value was wrong.
type brokerError struct {
	err error  // a *kerr.Error
	msg string // the broker's ErrorMessage, may be empty
}

func (e *brokerError) Error() string {
	var ke *kerr.Error
	if e.msg != "" && errors.As(e.err, &ke) {
		return ke.Message + ": " + e.msg
	}
	return e.err.Error() // kerr's form: "NAME: description"
}

func (e *brokerError) Unwrap() error { return e.err }

// withBrokerMessage attaches a response's ErrorMessage to its error code.
func withBrokerMessage(err error, msg string) error {
	if err == nil {
		return nil
	}
	return &brokerError{err: err, msg: msg}
}
