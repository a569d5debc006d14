package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

// ProfileKinds are the profiles --profile can record. All but "client" are
// the brokers', each fetched from a node's admin port (/debug/pprof) over
// HTTP: a profile of the broker process, not of the harness, without any
// profiling code in the broker beyond net/http/pprof. "client" is a CPU
// profile of the harness's own process over the measured phase: the load
// generator's producers and consumers, against any cluster.
var ProfileKinds = []string{"cpu", "mem", "mutex", "block", "trace", ClientProfile}

// ClientProfile is the profile kind of the harness's own CPU.
const ClientProfile = "client"

// brokerProfiles reports whether kinds ask for any broker profile.
func brokerProfiles(kinds []string) bool {
	for _, k := range kinds {
		if k != ClientProfile {
			return true
		}
	}
	return false
}

// ParseProfiles reads a comma-separated list of profile kinds.
func ParseProfiles(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		ok := false
		for _, known := range ProfileKinds {
			ok = ok || k == known
		}
		if !ok {
			return nil, fmt.Errorf("profile %q: want one or more of %s", k, strings.Join(ProfileKinds, ", "))
		}
		dup := false
		for _, o := range out {
			dup = dup || o == k
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out, nil
}

// profileRequest is the URL path and file suffix of one profile kind.
// cpu, trace, mutex and block cover the measured phase (seconds=N; for
// mutex and block pprof then returns the change over those seconds); mem
// is the heap in use at the end of it. Mutex and block profiles are empty
// unless the broker sets runtime.SetMutexProfileFraction and
// runtime.SetBlockProfileRate.
func profileRequest(kind string, seconds int) (path, suffix string) {
	switch kind {
	case "cpu":
		return fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), "cpu.pprof"
	case "mem":
		return "/debug/pprof/heap", "heap.pprof"
	case "mutex":
		return fmt.Sprintf("/debug/pprof/mutex?seconds=%d", seconds), "mutex.pprof"
	case "block":
		return fmt.Sprintf("/debug/pprof/block?seconds=%d", seconds), "block.pprof"
	case "trace":
		return fmt.Sprintf("/debug/pprof/trace?seconds=%d", seconds), "trace.out"
	}
	return "", ""
}

// profiler fetches profiles of every node during a scenario's measured
// phase and writes them into the run's folder.
type profiler struct {
	kinds  []string
	admins []string
	dir    string
	client *http.Client

	wg  sync.WaitGroup
	mu  sync.Mutex
	out []string // files written
	err []error
}

func newProfiler(kinds, admins []string, dir string) *profiler {
	return &profiler{kinds: kinds, admins: admins, dir: dir, client: &http.Client{}}
}

// start begins the profiles of one scenario: the timed ones at once, for
// the measured phase's length; the heap profile at its end.
func (p *profiler) start(ctx context.Context, slug string, measured time.Duration) {
	if p == nil {
		return
	}
	seconds := max(int(measured.Round(time.Second)/time.Second), 1)
	for _, kind := range p.kinds {
		if kind == ClientProfile {
			p.startClient(ctx, filepath.Join(p.dir, slug+".client.cpu.pprof"), measured)
		}
	}
	for i, admin := range p.admins {
		for _, kind := range p.kinds {
			if kind == ClientProfile {
				continue
			}
			path, suffix := profileRequest(kind, seconds)
			file := filepath.Join(p.dir, fmt.Sprintf("%s.broker-%d.%s", slug, i+1, suffix))
			delay := time.Duration(0)
			if kind == "mem" {
				delay = measured
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				err := p.fetch(ctx, delay, "http://"+admin+path, file, time.Duration(seconds)*time.Second+30*time.Second)
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.err = append(p.err, fmt.Errorf("%s profile of broker %d: %w", kind, i+1, err))
				} else {
					p.out = append(p.out, filepath.Base(file))
				}
			}()
		}
	}
}

// startClient records this process's CPU profile into file for the
// measured phase (or until ctx ends).
func (p *profiler) startClient(ctx context.Context, file string, measured time.Duration) {
	p.wg.Go(func() {
		err := func() error {
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				os.Remove(file)
				return err
			}
			t := time.NewTimer(measured)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			pprof.StopCPUProfile()
			return f.Close()
		}()
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.err = append(p.err, fmt.Errorf("client cpu profile: %w", err))
		} else {
			p.out = append(p.out, filepath.Base(file))
		}
	})
}

func (p *profiler) fetch(ctx context.Context, delay time.Duration, url, file string, timeout time.Duration) error {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	// Traces of busy brokers are large; 1 GiB bounds a runaway one.
	_, err = io.Copy(f, io.LimitReader(resp.Body, 1<<30))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// wait waits for the scenario's profiles and returns the files written and
// any failures.
func (p *profiler) wait() ([]string, error) {
	if p == nil {
		return nil, nil
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	out, errs := p.out, p.err
	p.out, p.err = nil, nil
	if len(errs) == 0 {
		return out, nil
	}
	return out, errors.Join(errs...)
}
