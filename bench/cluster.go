package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClusterConfig describes an embedded cluster: gregor serve processes on
// loopback, each a broker and a voter of the metadata quorum, on fresh data
// directories.
type ClusterConfig struct {
	// Binary is the gregor executable. When the harness runs as
	// `gregor bench` it is the running binary itself.
	Binary string
	// Brokers is the number of nodes (default 1).
	Brokers int
	// Dir is where the cluster's temporary directory (data, configs,
	// logs) is made; it is removed by Close.
	Dir string
	// Properties are extra server.properties lines for every node.
	Properties []string
	// StartTimeout bounds the wait for every node to be healthy
	// (default 60 s).
	StartTimeout time.Duration
	// StopTimeout bounds each node's clean shutdown before it is killed
	// (default 30 s).
	StopTimeout time.Duration
}

// Cluster is a running embedded cluster.
type Cluster struct {
	cfg   ClusterConfig
	dir   string
	nodes []*clusterNode
	once  sync.Once
	err   error
}

type clusterNode struct {
	id          int
	addr, admin string
	cmd         *exec.Cmd
	done        chan struct{} // closed when the process has exited
	waitErr     error         // set before done closes
	logPath     string
	log         *os.File
}

// StartCluster starts the nodes and waits until each answers 200 on
// /healthz (registered and unfenced). On any failure it stops what it
// started and says why, with the tail of the failing node's log.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Brokers <= 0 {
		cfg.Brokers = 1
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Binary == "" {
		return nil, errors.New("embedded cluster: no gregor binary")
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("embedded cluster: gregor binary: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.Dir, "gregor-bench-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, dir: dir}
	ports, err := freePorts(3 * cfg.Brokers)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var voters []string
	for i := range cfg.Brokers {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, ports[3*i+1]))
	}
	for i := range cfg.Brokers {
		n := &clusterNode{id: i + 1, addr: fmt.Sprintf("127.0.0.1:%d", ports[3*i]), admin: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
			done: make(chan struct{})}
		nodeDir := filepath.Join(dir, fmt.Sprintf("node-%d", n.id))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			c.Close()
			return nil, err
		}
		props := []string{
			fmt.Sprintf("node.id=%d", n.id),
			"process.roles=broker,controller",
			"controller.quorum.voters=" + strings.Join(voters, ","),
			fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://127.0.0.1:%d", n.addr, ports[3*i+1]),
			"log.dirs=" + filepath.Join(nodeDir, "data"),
			"admin.listener=" + n.admin,
			// The harness creates its topics; a misspelt one must fail.
			"auto.create.topics.enable=false",
		}
		props = append(props, cfg.Properties...)
		propsPath := filepath.Join(nodeDir, "server.properties")
		if err := os.WriteFile(propsPath, []byte(strings.Join(props, "\n")+"\n"), 0o644); err != nil {
			c.Close()
			return nil, err
		}
		n.logPath = filepath.Join(nodeDir, "gregor.log")
		if n.log, err = os.Create(n.logPath); err != nil {
			c.Close()
			return nil, err
		}
		n.cmd = exec.Command(cfg.Binary, "serve", "--config", propsPath, "--log-level", "warn")
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		// Its own process group keeps a terminal's Ctrl-C from reaching
		// the brokers directly: the harness stops them in order, after
		// saving what it measured. Pdeathsig stops them should the
		// harness itself be killed.
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := n.cmd.Start(); err != nil {
			n.log.Close()
			c.Close()
			return nil, fmt.Errorf("starting %s serve: %w", cfg.Binary, err)
		}
		go func() { n.waitErr = n.cmd.Wait(); close(n.done) }()
		c.nodes = append(c.nodes, n)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	for _, n := range c.nodes {
		if err := n.waitHealthy(wctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// waitHealthy polls /healthz every 50 ms until it answers 200, the process
// exits or ctx ends.
func (n *clusterNode) waitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	url := "http://" + n.admin + "/healthz"
	for {
		select {
		case <-n.done:
			return fmt.Errorf("gregor node %d exited before it was healthy (%v); its log ends:\n%s", n.id, n.waitErr, tailFile(n.logPath, 20))
		case <-ctx.Done():
			return fmt.Errorf("gregor node %d not healthy at %s: %w; its log ends:\n%s", n.id, url, context.Cause(ctx), tailFile(n.logPath, 20))
		case <-tick.C:
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}

// Bootstrap lists the nodes' client addresses.
func (c *Cluster) Bootstrap() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr)
	}
	return out
}

// AdminAddrs lists the nodes' admin (HTTP) addresses, where /debug/pprof
// is served.
func (c *Cluster) AdminAddrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.admin)
	}
	return out
}

// PIDs lists the nodes' process ids.
func (c *Cluster) PIDs() []int {
	var out []int
	for _, n := range c.nodes {
		out = append(out, n.cmd.Process.Pid)
	}
	return out
}

// Exited reports a node that has stopped on its own, with its log's tail,
// or nil while every node runs.
func (c *Cluster) Exited() error {
	for _, n := range c.nodes {
		select {
		case <-n.done:
			return fmt.Errorf("gregor node %d exited (%v); its log ends:\n%s", n.id, n.waitErr, tailFile(n.logPath, 20))
		default:
		}
	}
	return nil
}

// Close stops every node: SIGINT (a clean, controlled shutdown), then
// SIGKILL for a node still running after StopTimeout. It removes the
// cluster's directory and is safe to call more than once.
func (c *Cluster) Close() error {
	c.once.Do(func() {
		var errs []error
		for _, n := range c.nodes {
			select {
			case <-n.done:
				continue
			default:
			}
			n.cmd.Process.Signal(os.Interrupt)
		}
		for _, n := range c.nodes {
			t := time.NewTimer(c.cfg.StopTimeout)
			select {
			case <-n.done:
			case <-t.C:
				n.cmd.Process.Kill()
				<-n.done
				errs = append(errs, fmt.Errorf("gregor node %d did not stop within %v and was killed", n.id, c.cfg.StopTimeout))
			}
			t.Stop()
			n.log.Close()
		}
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
		c.err = errors.Join(errs...)
	})
	return c.err
}

// freePorts returns n loopback ports that were free a moment ago. Another
// process could take one before a node binds it; the node then fails to
// start, loudly.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tailFile returns the last n lines of a file, indented, for error
// messages.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(bytes.TrimSpace(b)), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
