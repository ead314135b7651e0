package drivers

import (
	"fmt"
	"sort"
	"strings"
)

// Registry resolves drivers by the names a plan uses. Each kind is kept under
// its own interface, so registering a driver under the wrong kind does not
// compile.
type Registry struct {
	middleware map[string]Middleware
	probes     map[string]Probe
	redirects  map[string]Redirector
	storage    map[string]Storage
	notifiers  map[string]SettingsChecker
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		middleware: map[string]Middleware{},
		probes:     map[string]Probe{},
		redirects:  map[string]Redirector{},
		storage:    map[string]Storage{},
		notifiers:  map[string]SettingsChecker{},
	}
}

// RegisterNotifier adds the settings check of a notification sender, so a
// plan's notify section is refused before a run when it is wrong.
func (r *Registry) RegisterNotifier(name string, c SettingsChecker) { r.notifiers[name] = c }

// RegisterMiddleware adds a middleware driver under name.
func (r *Registry) RegisterMiddleware(name string, d Middleware) { r.middleware[name] = d }

// RegisterProbe adds a probe driver under name.
func (r *Registry) RegisterProbe(name string, d Probe) { r.probes[name] = d }

// RegisterRedirect adds a redirect driver under name.
func (r *Registry) RegisterRedirect(name string, d Redirector) { r.redirects[name] = d }

// RegisterStorage adds a storage driver under name.
func (r *Registry) RegisterStorage(name string, d Storage) { r.storage[name] = d }

// Middleware returns the middleware driver called name.
func (r *Registry) Middleware(name string) (Middleware, error) {
	if d, ok := r.middleware[name]; ok {
		return d, nil
	}
	return nil, r.unknown(KindMiddleware, name)
}

// Probe returns the probe driver called name.
func (r *Registry) Probe(name string) (Probe, error) {
	if d, ok := r.probes[name]; ok {
		return d, nil
	}
	return nil, r.unknown(KindProbe, name)
}

// Redirector returns the redirect driver called name.
func (r *Registry) Redirector(name string) (Redirector, error) {
	if d, ok := r.redirects[name]; ok {
		return d, nil
	}
	return nil, r.unknown(KindRedirect, name)
}

// Storage returns the storage driver called name.
func (r *Registry) Storage(name string) (Storage, error) {
	if d, ok := r.storage[name]; ok {
		return d, nil
	}
	return nil, r.unknown(KindStorage, name)
}

// Replicator returns the middleware driver called name as a Replicator: a
// plan protects a database by replication only with a driver that can.
func (r *Registry) Replicator(name string) (Replicator, error) {
	d, err := r.Middleware(name)
	if err != nil {
		return nil, err
	}
	rep, ok := d.(Replicator)
	if !ok {
		return nil, Unsupported(fmt.Errorf("middleware driver %q does not replicate (no seed, lag, promote, fence, reseed, switchover)", name))
	}
	return rep, nil
}

// Names lists the registered drivers of one kind, sorted.
func (r *Registry) Names(kind Kind) []string {
	var names []string
	switch kind {
	case KindMiddleware:
		for n := range r.middleware {
			names = append(names, n)
		}
	case KindProbe:
		for n := range r.probes {
			names = append(names, n)
		}
	case KindRedirect:
		for n := range r.redirects {
			names = append(names, n)
		}
	case KindStorage:
		for n := range r.storage {
			names = append(names, n)
		}
	case KindNotify:
		for n := range r.notifiers {
			names = append(names, n)
		}
	case KindReplicator:
		for n, d := range r.middleware {
			if _, ok := d.(Replicator); ok {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names
}

// CheckDriver reports whether a driver of this kind is registered under name
// and, where the driver can tell, whether it accepts the settings. The plan
// package calls it through its own interface, so plan never imports drivers.
func (r *Registry) CheckDriver(kind, name string, settings map[string]any) error {
	var d any
	var ok bool
	switch Kind(kind) {
	case KindMiddleware:
		d, ok = r.middleware[name]
	case KindProbe:
		d, ok = r.probes[name]
	case KindRedirect:
		d, ok = r.redirects[name]
	case KindStorage:
		d, ok = r.storage[name]
	case KindNotify:
		d, ok = r.notifiers[name]
	case KindReplicator:
		if _, err := r.Replicator(name); err != nil {
			if _, known := r.middleware[name]; known {
				return fmt.Errorf("middleware driver %q does not replicate (replicating drivers: %s)", name, strings.Join(r.Names(KindReplicator), ", "))
			}
			return err
		}
		return nil
	default:
		return fmt.Errorf("unknown driver kind %q", kind)
	}
	if !ok {
		return r.unknown(Kind(kind), name)
	}
	if c, ok := d.(SettingsChecker); ok {
		return c.CheckSettings(settings)
	}
	return nil
}

func (r *Registry) unknown(kind Kind, name string) error {
	known := r.Names(kind)
	if len(known) == 0 {
		return fmt.Errorf("unknown %s driver %q (none registered)", kind, name)
	}
	return fmt.Errorf("unknown %s driver %q (known: %s)", kind, name, strings.Join(known, ", "))
}
