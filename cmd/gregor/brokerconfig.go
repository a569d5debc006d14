package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gregor/batch"
	"gregor/broker"
	"gregor/netio"
	"gregor/raft"
	"gregor/segment"
)

// serveConfig is everything gregor serve runs with: the broker's config and
// the admin HTTP server's address. The admin server belongs to the command,
// not to the broker library (which only writes its metrics), so its address
// is not in broker.Config.
type serveConfig struct {
	broker broker.Config
	// adminListener is admin.listener, the host:port of /metrics,
	// /healthz and /debug/pprof; "" when disabled.
	adminListener string
	// clientListener and controllerListener, when set (by tests), are
	// listening already and used instead of binding the configured
	// addresses, as broker.Options' are.
	clientListener, controllerListener net.Listener
}

// defaultAdminListener is next to the default client (9092) and controller
// (9093) ports, and on loopback because pprof must not be open to the
// network by default.
const defaultAdminListener = "127.0.0.1:9094"

// brokerConfig maps the keys of Kafka's server.properties, with Kafka's
// meaning, onto the broker's config, starting from broker.DefaultConfig; no
// properties at all give DefaultConfig itself (one combined node, clients on
// 127.0.0.1:9092, the controller on 127.0.0.1:9093, data in ./data) and the
// admin server on 127.0.0.1:9094.
//
// Every problem is reported, not only the first, so that one run of
// "gregor serve" shows everything wrong with a file: each bad value as
// key="value" and why, and one error naming every unknown key (a misspelled
// key silently configuring nothing is the classic server.properties bug).
// Kafka keys that mean nothing for Gregor (thread pools, socket buffers, the
// replication factors of internal topics Gregor does not have) are accepted
// so that a Kafka file works unchanged; each comes back as a warning.
//
// Where Gregor departs from Kafka:
//
//   - listeners has exactly one client listener (any name but the controller
//     listener's) and one controller listener, both PLAINTEXT. A
//     broker-only node (process.roles=broker) must have the controller
//     listener too, unlike Kafka: it follows the metadata log as a raft
//     non-voter, and raft pushes the log to it on that address.
//   - Without controller.quorum.voters, a node with the controller role
//     forms a quorum of its own (node.id@its controller listener). That is
//     the zero-config development node; a warning says so when other
//     settings suggest a real deployment.
//   - The quorum is static (Kafka's controller.quorum.voters), not dynamic
//     (KIP-853). controller.quorum.bootstrap.servers is taken only where it
//     names the node's own controller listener alone, as Kafka 4's
//     config/server.properties does: the single-voter quorum of kafka-storage
//     format --standalone, which is the quorum of its own above. Bootstrap
//     servers naming other controllers are refused.
//   - process.roles=controller alone is refused: the broker library always
//     serves clients and registers as a broker.
//   - Where Gregor's config uses zero for "the default", a Kafka value of
//     zero that means something else is mapped onto its equivalent:
//     log.index.interval.bytes=0 (index every batch) becomes 1;
//     log.retention.ms=0, log.flush.interval.ms=0,
//     log.cleaner.backoff.ms=0 and log.segment.delete.delay.ms=0 become 1 ms;
//     log.retention.bytes=0 becomes 1 (keep nothing but the active segment).
//     Zeros with no such equivalent (message.max.bytes=0, say) are errors.
//   - Kafka refuses to advertise the meta-address 0.0.0.0 (in
//     advertised.listeners, or in listeners when that is not set); Gregor
//     refuses :: as well, which no client can dial either.
//   - metadata.log.dir holds the quorum's log in its __cluster_metadata-0
//     directory, as Kafka does, but in raft-wal's format.
//   - admin.listener, network.engine, fetch.sendfile.enable and
//     produce.decompression.max.bytes are Gregor's own keys.
func brokerConfig(props map[string]string) (cfg serveConfig, warnings []string, err error) {
	cfg, warnings, _, err = parseServeConfig(props)
	return cfg, warnings, err
}

// serveConfigKeys lists the keys brokerConfig understands, sorted. It comes
// from the parser itself (which records every key it looks up), so the
// usage text and the tests cannot drift from what is parsed.
func serveConfigKeys() []string {
	_, _, known, _ := parseServeConfig(nil)
	return sortedKeys(known)
}

// ignoredKeys are Kafka broker keys that have no meaning for Gregor, with the
// reason given in the warning. They are accepted so that Kafka's own
// server.properties files work unchanged.
var ignoredKeys = map[string]string{
	"num.network.threads":                              "connections are served by goroutines the Go runtime schedules",
	"num.io.threads":                                   "requests are handled by goroutines the Go runtime schedules",
	"background.threads":                               "background work runs on goroutines",
	"socket.send.buffer.bytes":                         "the kernel's socket buffer autotuning is used",
	"socket.receive.buffer.bytes":                      "the kernel's socket buffer autotuning is used",
	"socket.listen.backlog.size":                       "the kernel's somaxconn is used",
	"transaction.state.log.replication.factor":         "Gregor has no transactions",
	"transaction.state.log.min.isr":                    "Gregor has no transactions",
	"share.coordinator.state.topic.replication.factor": "Gregor has no share groups",
	"share.coordinator.state.topic.min.isr":            "Gregor has no share groups",
	"log.local.retention.ms":                           "Gregor has no tiered storage, so local retention is log.retention.ms",
	"log.local.retention.bytes":                        "Gregor has no tiered storage, so local retention is log.retention.bytes",
	"leader.imbalance.per.broker.percentage":           "as in KRaft, whose controller ignores it too, auto.leader.rebalance.enable moves every partition not led by its preferred replica",
}

// rejectedKeys are Kafka keys that Gregor recognizes but cannot honour;
// setting one is an error that says why, which beats "unknown key".
var rejectedKeys = map[string]string{
	"zookeeper.connect": "ZooKeeper mode is not supported: configure a KRaft-style quorum (process.roles, controller.quorum.voters)",
}

// Kafka's security protocols; Gregor speaks only PLAINTEXT.
var securityProtocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// propReader reads typed values out of the properties, recording which keys
// were looked up (so that the rest are unknown) and every bad value.
type propReader struct {
	props map[string]string
	known map[string]bool
	errs  []error
}

// lookup returns key's value, trimmed as Kafka trims every value. Every key
// the parser understands must be looked up unconditionally, present or not:
// that is what makes it known.
func (r *propReader) lookup(key string) (string, bool) {
	r.known[key] = true
	v, ok := r.props[key]
	return strings.TrimSpace(v), ok
}

func (r *propReader) bad(key, value, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", key, value, fmt.Sprintf(format, args...)))
}

// integer returns key's value if it is present and an integer in [lo, hi].
// ok is false when the key is absent or bad (and then reported).
func (r *propReader) integer(key string, lo, hi int64) (n int64, ok bool) {
	v, present := r.lookup(key)
	if !present {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		r.bad(key, v, "out of range: want %d to %d", lo, hi)
	case err != nil:
		r.bad(key, v, "not an integer")
	case n < lo && (hi == math.MaxInt64 || hi == math.MaxInt32):
		r.bad(key, v, "want at least %d", lo)
	case n < lo || n > hi:
		r.bad(key, v, "want %d to %d", lo, hi)
	default:
		return n, true
	}
	return 0, false
}

// setInt32 and friends store a present, valid value; absent or bad ones
// leave the default in place.
func (r *propReader) setInt32(key string, lo int64, p *int32) {
	if n, ok := r.integer(key, lo, math.MaxInt32); ok {
		*p = int32(n)
	}
}

func (r *propReader) setInt(key string, lo int64, p *int) {
	if n, ok := r.integer(key, lo, math.MaxInt32); ok {
		*p = int(n)
	}
}

func (r *propReader) setInt64(key string, lo int64, p *int64) {
	r.setInt64Max(key, lo, math.MaxInt64, p)
}

func (r *propReader) setInt64Max(key string, lo, hi int64, p *int64) {
	if n, ok := r.integer(key, lo, hi); ok {
		*p = n
	}
}

// setMs stores a duration given in milliseconds, at least lo; the upper
// bound keeps the conversion to time.Duration from overflowing.
func (r *propReader) setMs(key string, lo int64, p *time.Duration) {
	if n, ok := r.integer(key, lo, math.MaxInt64/int64(time.Millisecond)); ok {
		*p = time.Duration(n) * time.Millisecond
	}
}

// setBool takes Kafka's spelling of booleans: true or false in any case.
// strconv.ParseBool's 1, t and F are not Kafka's and would hide typos.
func (r *propReader) setBool(key string, p *bool) {
	v, ok := r.lookup(key)
	switch {
	case !ok:
	case strings.EqualFold(v, "true"):
		*p = true
	case strings.EqualFold(v, "false"):
		*p = false
	default:
		r.bad(key, v, "want true or false")
	}
}

func (r *propReader) setOneOf(key string, p *string, values ...string) {
	v, ok := r.lookup(key)
	if !ok {
		return
	}
	if !slices.Contains(values, v) {
		r.bad(key, v, "want one of %s", strings.Join(values, ", "))
		return
	}
	*p = v
}

// splitList splits a Kafka list value: comma-separated, blanks around items
// trimmed, empty items dropped (as Kafka's parseCsvList does).
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// listener is one entry of listeners or advertised.listeners.
type listener struct {
	name string // upper case, as Kafka normalizes listener names
	host string // "" for every interface
	port int
}

func (l listener) addr() string { return net.JoinHostPort(l.host, strconv.Itoa(l.port)) }

// parseListeners parses "NAME://host:port,…" (IPv6 hosts in brackets, an
// empty host for every interface).
func parseListeners(v string) ([]listener, error) {
	items := splitList(v)
	if len(items) == 0 {
		return nil, errors.New("no listener given")
	}
	var out []listener
	for _, item := range items {
		name, hostPort, ok := strings.Cut(item, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("entry %q: want NAME://host:port", item)
		}
		host, portStr, err := net.SplitHostPort(hostPort)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %v", item, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("entry %q: port %q: want 0 to 65535", item, portStr)
		}
		l := listener{name: strings.ToUpper(name), host: host, port: port}
		if slices.ContainsFunc(out, func(o listener) bool { return o.name == l.name }) {
			return nil, fmt.Errorf("listener name %s appears twice", l.name)
		}
		out = append(out, l)
	}
	return out, nil
}

// unspecifiedHost reports whether host means "every interface": it can be
// listened on but not dialled or advertised.
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// nonroutable is Kafka's refusal of a meta-address (0.0.0.0, or :: here
// too) as an advertised host: it names no host a client can dial.
func nonroutable(host string) string {
	return fmt.Sprintf("advertised.listeners cannot use the nonroutable meta-address %s. Use a routable IP address.", host)
}

// parseServeConfig is brokerConfig that also returns every key it looked up.
func parseServeConfig(props map[string]string) (serveConfig, []string, map[string]bool, error) {
	r := &propReader{props: props, known: map[string]bool{}}
	var warnings []string
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }
	c := broker.DefaultConfig()

	// Identity. broker.id is the pre-KRaft name of node.id; Kafka accepts
	// both as long as they agree.
	nodeID, nodeOK := r.integer("node.id", 0, math.MaxInt32)
	brokerID, brokerOK := r.integer("broker.id", 0, math.MaxInt32)
	switch {
	case nodeOK && brokerOK && nodeID != brokerID:
		r.errs = append(r.errs, fmt.Errorf("node.id=%d and broker.id=%d: they are synonyms and must agree", nodeID, brokerID))
	case nodeOK:
		c.NodeID = int32(nodeID)
	case brokerOK:
		c.NodeID = int32(brokerID)
	}
	c.Quorum.NodeID = c.NodeID
	if v, ok := r.lookup("cluster.id"); ok {
		if v == "" {
			r.bad("cluster.id", v, "must not be empty")
		} else {
			c.ClusterID = v
		}
	}
	c.Controller.ClusterID = c.ClusterID
	if v, ok := r.lookup("broker.rack"); ok {
		c.Rack = v
	}

	// Roles.
	voter := c.Quorum.IsVoter()
	if v, ok := r.lookup("process.roles"); ok {
		roles, err := parseRoles(v)
		if err != nil {
			r.bad("process.roles", v, "%v", err)
		} else {
			c.Quorum.Roles = roles
			voter = c.Quorum.IsVoter()
		}
	}

	// Listeners.
	ctrlNames := []string{"CONTROLLER"}
	if v, ok := r.lookup("controller.listener.names"); ok {
		if names := splitList(v); len(names) == 0 {
			r.bad("controller.listener.names", v, "no listener name given")
		} else {
			ctrlNames = nil
			for _, n := range names {
				ctrlNames = append(ctrlNames, strings.ToUpper(n))
			}
		}
	}
	protoMap := map[string]string{}
	protoMapV, protoMapOK := r.lookup("listener.security.protocol.map")
	if protoMapOK {
		for _, item := range splitList(protoMapV) {
			name, proto, ok := strings.Cut(item, ":")
			name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
			if !ok || name == "" || !slices.Contains(securityProtocols, proto) {
				r.bad("listener.security.protocol.map", protoMapV, "entry %q: want NAME:PROTOCOL with PROTOCOL one of %s", item, strings.Join(securityProtocols, ", "))
				continue
			}
			protoMap[name] = proto
		}
	}
	listeners := []listener{{"PLAINTEXT", "127.0.0.1", 9092}, {ctrlNames[0], "127.0.0.1", 9093}}
	listenersV, listenersOK := r.lookup("listeners")
	if listenersOK {
		if ls, err := parseListeners(listenersV); err != nil {
			r.bad("listeners", listenersV, "%v", err)
		} else {
			listeners = ls
		}
	}
	var client, ctrl []listener
	for _, l := range listeners {
		if slices.Contains(ctrlNames, l.name) {
			ctrl = append(ctrl, l)
		} else {
			client = append(client, l)
		}
	}
	switch {
	case len(client) == 0:
		r.bad("listeners", listenersV, "no client listener: Gregor needs one besides the controller listener (%s)", strings.Join(ctrlNames, ", "))
	case len(client) > 1:
		r.bad("listeners", listenersV, "Gregor serves clients on one listener, not %d", len(client))
	default:
		c.Listener = client[0].addr()
	}
	switch {
	case len(ctrl) == 0:
		r.bad("listeners", listenersV, "no controller listener (controller.listener.names: %s); a broker-only node needs one too, for its raft non-voter", strings.Join(ctrlNames, ", "))
	case len(ctrl) > 1:
		r.bad("listeners", listenersV, "Gregor has one controller listener, not %d", len(ctrl))
	default:
		c.Quorum.Addr = ctrl[0].addr()
		if !voter && unspecifiedHost(ctrl[0].host) {
			// hashicorp/raft's TCP transport advertises the address it binds.
			r.bad("listeners", listenersV, "a broker-only node's controller listener needs a concrete host: raft tells the quorum that address")
		}
	}
	for i, l := range listeners {
		proto, mapped := protoMap[l.name]
		switch {
		case mapped:
		case slices.Contains(securityProtocols, l.name):
			proto = l.name
		case slices.Contains(ctrlNames, l.name):
			proto = "PLAINTEXT"
		default:
			r.bad("listeners", listenersV, "listener %s is not in listener.security.protocol.map", l.name)
			continue
		}
		if proto != "PLAINTEXT" {
			r.bad("listeners", listenersV, "listener %s uses %s: Gregor speaks only PLAINTEXT", l.name, proto)
		}
		if l.port != 0 && slices.ContainsFunc(listeners[:i], func(o listener) bool { return o.port == l.port }) {
			r.bad("listeners", listenersV, "port %d is used by two listeners", l.port)
		}
	}
	if v, ok := r.lookup("inter.broker.listener.name"); ok && len(client) == 1 && !strings.EqualFold(v, client[0].name) {
		r.bad("inter.broker.listener.name", v, "Gregor's brokers talk to each other on the client listener, %s", client[0].name)
	}
	if v, ok := r.lookup("security.inter.broker.protocol"); ok && v != "PLAINTEXT" {
		r.bad("security.inter.broker.protocol", v, "Gregor speaks only PLAINTEXT")
	}
	// What clients are told: the client listener's entry in
	// advertised.listeners, else the client listener itself, as Kafka's
	// effective advertised listeners are. Kafka refuses the meta-address
	// 0.0.0.0 there and advertises the host's name for an empty host.
	advertisedV, advertisedOK := r.lookup("advertised.listeners")
	var advertised, ctrlAdvertised *listener
	if advertisedOK {
		if ls, err := parseListeners(advertisedV); err != nil {
			r.bad("advertised.listeners", advertisedV, "%v", err)
		} else {
			for _, l := range ls {
				switch {
				case slices.Contains(ctrlNames, l.name):
					// Kafka 3.9+ may advertise the controller listener
					// (dynamic quorums); Gregor's quorum is static, but
					// the address may name it in
					// controller.quorum.bootstrap.servers.
					ctrlAdvertised = &l
				case len(client) == 1 && l.name == client[0].name:
					if l.port == 0 {
						r.bad("advertised.listeners", advertisedV, "%s: clients need a concrete port", l.name)
						continue
					}
					advertised = &l
				default:
					r.bad("advertised.listeners", advertisedV, "listener %s is not in listeners", l.name)
				}
			}
		}
	}
	if len(client) == 1 {
		l, key, value := client[0], "listeners", listenersV
		if advertised != nil {
			l, key, value = *advertised, "advertised.listeners", advertisedV
			c.AdvertisedHost, c.AdvertisedPort = l.host, l.port
		}
		switch {
		case l.host == "":
			// Every interface: a peer dials the host's own name (Kafka:
			// its canonical host name).
			if h, err := os.Hostname(); err != nil || h == "" {
				r.bad(key, value, "%s has no host and this host's name is unknown (%v): set advertised.listeners", l.name, err)
			} else {
				c.AdvertisedHost = h
			}
		case unspecifiedHost(l.host) && advertised != nil:
			r.bad(key, value, "%s", nonroutable(l.host))
		case unspecifiedHost(l.host):
			r.bad(key, value, "%s (without advertised.listeners, clients are told the %s listener's address: set advertised.listeners=%s://<host>:%d)",
				nonroutable(l.host), l.name, l.name, l.port)
		}
	}

	// The quorum.
	votersV, votersOK := r.lookup("controller.quorum.voters")
	bootstrapV, bootstrapOK := r.lookup("controller.quorum.bootstrap.servers")
	switch {
	case votersOK:
		if voters, err := raft.ParseVoters(votersV); err != nil {
			r.bad("controller.quorum.voters", votersV, "%v", strings.TrimPrefix(err.Error(), "raft: "))
		} else {
			c.Quorum.Voters = voters
		}
		if bootstrapOK {
			warn("controller.quorum.bootstrap.servers=%q ignored: controller.quorum.voters is set and Gregor's quorum is static", bootstrapV)
		}
	case bootstrapOK && voter && len(ctrl) == 1 && bootstrapsSelf(bootstrapV, ctrl[0], ctrlAdvertised):
		// Kafka's own server.properties: a combined node whose quorum
		// is itself alone, as "kafka-storage format --standalone" sets
		// up. That is the quorum a node forms without voters.
		c.Quorum.Voters = []raft.Voter{{ID: c.NodeID, Addr: selfVoterAddr(c.Quorum.Addr)}}
	case bootstrapOK:
		alone := ""
		if voter {
			alone = fmt.Sprintf("; for this node alone: %d@%s", c.NodeID, selfVoterAddr(c.Quorum.Addr))
		}
		r.bad("controller.quorum.bootstrap.servers", bootstrapV, "Gregor's quorum is static, so it takes bootstrap servers only on a node "+
			"with the controller role that names its own controller listener alone (a single-node quorum, as kafka-storage format --standalone "+
			"sets up); set controller.quorum.voters on every node instead (id@host:port of each controller%s)", alone)
	case !voter:
		r.errs = append(r.errs, errors.New("controller.quorum.voters: required on a broker-only node, to find the controllers"))
	default:
		c.Quorum.Voters = []raft.Voter{{ID: c.NodeID, Addr: selfVoterAddr(c.Quorum.Addr)}}
		if nodeOK || brokerOK || listenersOK {
			warn("controller.quorum.voters is not set: node %d forms a single-node quorum of its own (%d@%s); set it on every node of a multi-node cluster",
				c.NodeID, c.NodeID, c.Quorum.Voters[0].Addr)
		}
	}
	if votersOK && voter && len(ctrl) == 1 && ctrl[0].port != 0 {
		for _, v := range c.Quorum.Voters {
			if _, port, _ := net.SplitHostPort(v.Addr); v.ID == c.NodeID && port != strconv.Itoa(ctrl[0].port) {
				warn("controller.quorum.voters lists node %d at %s but its controller listener is on port %d", c.NodeID, v.Addr, ctrl[0].port)
			}
		}
	}

	// Storage.
	dirsV, dirsOK := r.lookup("log.dirs")
	dirV, dirOK := r.lookup("log.dir")
	dirsKey := "log.dirs"
	if !dirsOK && dirOK { // log.dirs wins over log.dir, as in Kafka
		dirsKey, dirsV, dirsOK = "log.dir", dirV, true
	}
	if dirsOK {
		if dirs := splitList(dirsV); len(dirs) == 0 {
			r.bad(dirsKey, dirsV, "no directory given")
		} else {
			c.Storage.LogDirs = dirs
		}
	}
	metaDir := c.Storage.LogDirs[0]
	if v, ok := r.lookup("metadata.log.dir"); ok {
		if v == "" {
			r.bad("metadata.log.dir", v, "must not be empty")
		} else {
			metaDir = v
		}
	}
	c.Quorum.Dir = filepath.Join(metaDir, segment.MetadataTopic+"-0")
	r.setInt("num.recovery.threads.per.data.dir", 1, &c.Storage.RecoveryThreadsPerDataDir)

	lc := &c.Storage.Log
	if n, ok := r.integer("log.segment.bytes", 14, math.MaxInt32); ok {
		lc.SegmentBytes = n
	}
	rollMs, rollMsOK := r.integer("log.roll.ms", 1, math.MaxInt64)
	rollHours, rollHoursOK := r.integer("log.roll.hours", 1, math.MaxInt32)
	switch { // ms over hours, as in Kafka
	case rollMsOK:
		lc.SegmentMs = rollMs
	case rollHoursOK:
		lc.SegmentMs = rollHours * int64(time.Hour/time.Millisecond)
	}
	jitterMs, jitterMsOK := r.integer("log.roll.jitter.ms", 0, math.MaxInt64)
	jitterHours, jitterHoursOK := r.integer("log.roll.jitter.hours", 0, math.MaxInt32)
	switch {
	case jitterMsOK:
		lc.SegmentJitterMs = jitterMs
	case jitterHoursOK:
		lc.SegmentJitterMs = jitterHours * int64(time.Hour/time.Millisecond)
	}
	// 24 bytes is segment's floor: room for two time index entries.
	r.setInt("log.index.size.max.bytes", 24, &lc.SegmentIndexBytes)
	if n, ok := r.integer("log.index.interval.bytes", 0, math.MaxInt32); ok {
		lc.IndexIntervalBytes = max(int(n), 1) // Kafka's 0, an entry per batch, is 1 here
	}
	retMs, retMsOK := r.integer("log.retention.ms", math.MinInt64, math.MaxInt64)
	retMin, retMinOK := r.integer("log.retention.minutes", math.MinInt32, math.MaxInt32)
	retHours, retHoursOK := r.integer("log.retention.hours", math.MinInt32, math.MaxInt32)
	retSet := true
	switch { // ms over minutes over hours, as in Kafka
	case retMsOK:
	case retMinOK:
		retMs = retMin * int64(time.Minute/time.Millisecond)
	case retHoursOK:
		retMs = retHours * int64(time.Hour/time.Millisecond)
	default:
		retSet = false
	}
	if retSet {
		lc.RetentionMs = segment.KafkaRetention(retMs)
	}
	if n, ok := r.integer("log.retention.bytes", math.MinInt64, math.MaxInt64); ok {
		lc.RetentionBytes = segment.KafkaRetention(n)
	}
	r.setInt64("log.flush.interval.messages", 1, &lc.FlushMessages)
	if n, ok := r.integer("log.flush.interval.ms", 0, math.MaxInt64); ok {
		lc.FlushMs = max(n, 1) // Kafka's 0 (flush at every check) is 1 ms here
	}
	if v, ok := r.lookup("log.cleanup.policy"); ok {
		if p, err := cleanupPolicy(v); err != nil {
			r.bad("log.cleanup.policy", v, "%v", err)
		} else {
			lc.CleanupPolicy = p
		}
	}
	r.setBool("log.cleaner.enable", &c.Storage.Cleaner.Enable)
	// The compaction defaults of every topic (their topic configs'
	// synonyms). segment.Config reads zero as the default: Kafka's 0 is
	// the nearest value that is not zero, which behaves the same.
	if n, ok := r.integer("log.cleaner.delete.retention.ms", 0, math.MaxInt64); ok {
		lc.DeleteRetentionMs = max(n, 1)
	}
	if n, ok := r.integer("log.cleaner.min.compaction.lag.ms", 0, math.MaxInt64); ok {
		lc.MinCompactionLagMs = n
	}
	r.setInt64("log.cleaner.max.compaction.lag.ms", 1, &lc.MaxCompactionLagMs)
	if n, ok := r.integer("log.segment.delete.delay.ms", 0, math.MaxInt64); ok {
		lc.FileDeleteDelayMs = max(n, 1)
	}
	if v, ok := r.lookup("log.cleaner.min.cleanable.ratio"); ok {
		if f, err := strconv.ParseFloat(v, 64); err != nil || !(f >= 0 && f <= 1) {
			r.bad("log.cleaner.min.cleanable.ratio", v, "want a number from 0 to 1")
		} else {
			lc.MinCleanableDirtyRatio = max(f, math.SmallestNonzeroFloat64)
		}
	}
	if n, ok := r.integer("log.cleaner.backoff.ms", 0, math.MaxInt64); ok {
		c.Storage.Cleaner.BackoffMs = max(n, 1) // Kafka's 0 (no wait) is 1 ms here
	}
	r.setInt64("log.cleaner.dedupe.buffer.size", segment.MinCleanerDedupeBufferSize, &c.Storage.Cleaner.DedupeBufferSize)
	r.setMs("log.retention.check.interval.ms", 1, &c.LogRetentionCheckInterval)
	r.setMs("log.flush.scheduler.interval.ms", 1, &c.LogFlushSchedulerInterval)
	r.setMs("log.flush.offset.checkpoint.interval.ms", 1, &c.LogFlushOffsetCheckpointInterval)

	// Topics and the controller.
	r.setInt32("num.partitions", 1, &c.Controller.NumPartitions)
	if n, ok := r.integer("default.replication.factor", 1, math.MaxInt16); ok {
		c.Controller.DefaultReplicationFactor = int16(n)
	}
	// Tiered storage (KIP-405) is off in Kafka by default and absent here.
	var tiered bool
	r.setBool("remote.log.storage.system.enable", &tiered)
	if tiered {
		r.bad("remote.log.storage.system.enable", "true", "Gregor has no tiered storage: its logs are on local disk only")
	}
	var prealloc bool
	r.setBool("log.preallocate", &prealloc)
	if prealloc {
		r.bad("log.preallocate", "true", "Gregor does not preallocate segment files")
	}
	r.setBool("auto.create.topics.enable", &c.AutoCreateTopicsEnable)
	r.setBool("fetch.sendfile.enable", &c.FetchSendfileEnable)
	r.setBool("unclean.leader.election.enable", &c.Controller.UncleanLeaderElectionEnable)
	r.setBool("auto.leader.rebalance.enable", &c.Controller.AutoLeaderRebalanceEnable)
	// Counted in milliseconds by the controller: bounded so that stays an int64.
	r.setInt64Max("leader.imbalance.check.interval.seconds", 1, math.MaxInt64/int64(time.Second), &c.Controller.LeaderImbalanceCheckIntervalSeconds)
	r.setInt32("message.max.bytes", 1, &c.MessageMaxBytes)
	r.setInt32("fetch.max.bytes", 1024, &c.FetchMaxBytes)
	r.setInt64("produce.decompression.max.bytes", 1<<20, &c.DecompressionMaxBytes)
	r.setOneOf("compression.type", &c.CompressionType, "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
	// Kafka's scales (KIP-390). zstd's 0 is its default level, as a zero
	// in Config is; gzip also takes -1, its default, but not 0.
	for _, l := range []struct {
		codec batch.Codec
		p     *int
	}{{batch.CodecGzip, &c.CompressionLevels.Gzip}, {batch.CodecLZ4, &c.CompressionLevels.LZ4}, {batch.CodecZstd, &c.CompressionLevels.Zstd}} {
		key := l.codec.LevelConfig()
		lo, hi := batch.LevelRange(l.codec)
		from := lo
		if l.codec == batch.CodecGzip {
			from = batch.GzipDefaultLevel
		}
		if n, ok := r.integer(key, int64(from), int64(hi)); ok {
			if batch.CheckLevel(l.codec, int(n)) != nil { // gzip's 0
				r.bad(key, strconv.FormatInt(n, 10), "want %d to %d, or %d", lo, hi, from)
			} else {
				*l.p = int(n)
			}
		}
	}
	r.setOneOf("log.message.timestamp.type", &c.LogMessageTimestampType, "CreateTime", "LogAppendTime")
	// Kafka's 0 (exactly the broker's clock) is 1 ms here: 0 is unset.
	if n, ok := r.integer("log.message.timestamp.before.max.ms", 0, math.MaxInt64); ok {
		c.LogMessageTimestampBeforeMaxMs = max(n, 1)
	}
	if n, ok := r.integer("log.message.timestamp.after.max.ms", 0, math.MaxInt64); ok {
		c.LogMessageTimestampAfterMaxMs = max(n, 1)
	}
	r.setInt("min.insync.replicas", 1, &c.MinInsyncReplicas)
	r.setMs("broker.heartbeat.interval.ms", 1, &c.BrokerHeartbeatInterval)
	r.setInt64("broker.session.timeout.ms", 1, &c.Controller.BrokerSessionTimeoutMs)
	if hb, session := c.BrokerHeartbeatInterval.Milliseconds(), c.Controller.BrokerSessionTimeoutMs; hb > session {
		// Every broker would be fenced between two of its heartbeats.
		r.errs = append(r.errs, fmt.Errorf("broker.heartbeat.interval.ms=%d exceeds broker.session.timeout.ms=%d", hb, session))
	}
	r.setMs("producer.id.expiration.ms", 1, &c.ProducerIDExpiration)
	r.setMs("request.timeout.ms", 1, &c.RequestTimeout)

	// Consumer groups and committed offsets.
	r.setInt32("group.min.session.timeout.ms", 1, &c.Group.GroupMinSessionTimeoutMs)
	r.setInt32("group.max.session.timeout.ms", 1, &c.Group.GroupMaxSessionTimeoutMs)
	r.setInt32("group.initial.rebalance.delay.ms", 0, &c.Group.GroupInitialRebalanceDelayMs)
	r.setInt32("group.max.size", 1, &c.Group.GroupMaxSize)
	r.setInt32("offset.metadata.max.bytes", 0, &c.Group.OffsetMetadataMaxBytes)
	if n, ok := r.integer("offsets.retention.minutes", 1, math.MaxInt64/60000); ok {
		c.Group.OffsetsRetentionMs = n * 60000
	}
	r.setInt32("offsets.topic.num.partitions", 1, &c.OffsetsTopicNumPartitions)
	if n, ok := r.integer("offsets.topic.replication.factor", 1, math.MaxInt16); ok {
		c.OffsetsTopicReplicationFactor = int16(n)
	}
	r.setInt64("offsets.topic.segment.bytes", 1, &c.OffsetsTopicSegmentBytes)
	r.setMs("offsets.retention.check.interval.ms", 1, &c.OffsetsRetentionCheckInterval)

	// Network. The smallest frame is 8 bytes: a request header's api key,
	// version and correlation id.
	r.setInt32("socket.request.max.bytes", 8, &c.Net.SocketRequestMaxBytes)
	r.setInt("max.connections", 1, &c.Net.MaxConnections)
	c.Net.MaxConnectionsPerIP = c.Net.MaxConnections // netio's default: as max.connections
	r.setInt("max.connections.per.ip", 1, &c.Net.MaxConnectionsPerIP)
	// Negative turns idle expiry off, as in Kafka.
	if n, ok := r.integer("connections.max.idle.ms", math.MinInt64/int64(time.Millisecond), math.MaxInt64/int64(time.Millisecond)); ok {
		if n == 0 {
			r.bad("connections.max.idle.ms", "0", "want at least 1, or negative for never")
		} else {
			c.Net.ConnectionsMaxIdle = max(time.Duration(n)*time.Millisecond, -1)
		}
	}
	r.setInt("queued.max.requests", 1, &c.Net.QueuedMaxRequests)
	r.setOneOf("network.engine", &c.Net.Engine, netio.EngineStd, netio.EngineNetpoll)

	admin := defaultAdminListener
	if v, ok := r.lookup("admin.listener"); ok {
		admin = v
		if v == "" || strings.EqualFold(v, "none") {
			admin = ""
		} else if host, portStr, err := net.SplitHostPort(v); err != nil {
			r.bad("admin.listener", v, "%v; want host:port, or none", err)
		} else if port, err := strconv.Atoi(portStr); err != nil || port < 0 || port > 65535 {
			r.bad("admin.listener", v, "port %q: want 0 to 65535", portStr)
		} else if port != 0 && slices.ContainsFunc(listeners, func(l listener) bool { return l.port == port }) {
			r.bad("admin.listener", v, "port %d is also in listeners", port)
		} else {
			admin = net.JoinHostPort(host, portStr)
		}
	}

	// Keys nothing above looked up.
	var unknown []string
	for _, k := range sortedKeys(props) {
		switch {
		case r.known[k]:
		case ignoredKeys[k] != "":
			warn("%s=%q ignored: %s", k, strings.TrimSpace(props[k]), ignoredKeys[k])
		case rejectedKeys[k] != "":
			r.bad(k, strings.TrimSpace(props[k]), "%s", rejectedKeys[k])
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		r.errs = append(r.errs, fmt.Errorf("unknown keys (misspelled, or not supported by Gregor): %s", strings.Join(unknown, ", ")))
	}
	// What DescribeConfigs reports as STATIC_BROKER_CONFIG: every key the
	// properties gave, as Kafka reports its file's.
	for k, v := range props {
		if r.known[k] {
			if c.StaticConfigs == nil {
				c.StaticConfigs = map[string]string{}
			}
			c.StaticConfigs[k] = strings.TrimSpace(v)
		}
	}
	// Cross-field rules (a voter must be among the voters, ...) are the
	// library's; only values that passed the checks above reach it, so it
	// does not repeat them.
	if err := c.Validate(); err != nil {
		r.errs = append(r.errs, err)
	}
	return serveConfig{broker: c, adminListener: admin}, warnings, r.known, errors.Join(r.errs...)
}

// parseRoles normalizes process.roles to "broker", "controller" or
// "broker,controller".
func parseRoles(v string) (string, error) {
	var broker, controller bool
	roles := splitList(v)
	if len(roles) == 0 {
		return "", errors.New("no role given")
	}
	for _, role := range roles {
		switch {
		case role == "broker" && !broker:
			broker = true
		case role == "controller" && !controller:
			controller = true
		case role == "broker" || role == "controller":
			return "", fmt.Errorf("role %s given twice", role)
		default:
			return "", fmt.Errorf("unknown role %q: want broker, controller or broker,controller", role)
		}
	}
	switch {
	case broker && controller:
		return "broker,controller", nil
	case broker:
		return "broker", nil
	default:
		return "controller", nil
	}
}

// cleanupPolicy normalizes log.cleanup.policy to segment's spelling.
func cleanupPolicy(v string) (string, error) {
	var del, compact bool
	items := splitList(v)
	if len(items) == 0 {
		return "", errors.New("no policy given: want delete, compact or compact,delete")
	}
	for _, p := range items {
		switch p {
		case "delete":
			del = true
		case "compact":
			compact = true
		default:
			return "", fmt.Errorf("unknown policy %q: want delete, compact or compact,delete", p)
		}
	}
	switch {
	case del && compact:
		return "compact,delete", nil
	case compact:
		return "compact", nil
	default:
		return "delete", nil
	}
}

// bootstrapsSelf reports whether controller.quorum.bootstrap.servers names
// this node's controller listener and nothing else: its advertised address,
// or its port on a host that is the listener's own (for a listener on every
// interface: localhost, a loopback address, the host's name or one of its
// interfaces' addresses). Nothing is looked up in DNS.
func bootstrapsSelf(servers string, ctrl listener, advertised *listener) bool {
	items := splitList(servers)
	if len(items) != 1 {
		return false
	}
	host, portStr, err := net.SplitHostPort(items[0])
	if err != nil {
		return false
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return false
	}
	if advertised != nil && strings.EqualFold(host, advertised.host) && port == advertised.port {
		return true
	}
	if port != ctrl.port || port == 0 {
		return false
	}
	ip := net.ParseIP(host)
	if !unspecifiedHost(ctrl.host) {
		lip := net.ParseIP(ctrl.host)
		switch {
		case strings.EqualFold(host, ctrl.host), ip != nil && ip.Equal(lip):
			return true
		case strings.EqualFold(host, "localhost"):
			// localhost reaches a listener on a loopback address.
			return lip != nil && lip.IsLoopback()
		}
		return false
	}
	if strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback() {
		return true
	}
	if h, err := os.Hostname(); err == nil && strings.EqualFold(host, h) {
		return true
	}
	if ip == nil {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// selfVoterAddr is the address peers dial for this node's controller
// listener: a listener on every interface is reached through loopback, the
// only address that is surely its own.
func selfVoterAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !unspecifiedHost(host) {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}
