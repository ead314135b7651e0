package plan

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Restart order is derived from roles, not written by hand (the seed's
// restore step 7): database, deployment manager, node agents, then for each
// product in the plan's order its messaging, support and application
// servers, then web servers and anything else. Every component waits for
// all components of the nearest lower rank that has any, and for its after:
// entries. Tiers cut that DAG by longest path: the members of a tier start
// in parallel.

// rankOf places a component in the chain of ranks. ok is false for a role or
// product the plan does not know.
func rankOf(c *Component, products []string) (rank int, ok bool) {
	switch c.Role {
	case RoleDatabase:
		return 0, true
	case RoleDmgr:
		return 1, true
	case RoleNodeAgent:
		return 2, true
	case RoleMessaging, RoleSupport, RoleApp:
		k := -1
		for i, p := range products {
			if p == c.Product {
				k = i
				break
			}
		}
		if k < 0 {
			return 0, false
		}
		off := map[Role]int{RoleMessaging: 0, RoleSupport: 1, RoleApp: 2}[c.Role]
		return 3 + 3*k + off, true
	case RoleWebServer:
		return 3 + 3*len(products), true
	case RoleOther:
		return 4 + 3*len(products), true
	}
	return 0, false
}

// graph is the start-order DAG. Nodes 0..n-1 are components; the rest are
// one barrier per non-empty rank that depends on every member of its rank,
// so "all of the previous rank" costs one edge per component, not n².
type graph struct {
	names   []string // component names, file order, first of duplicates only
	comps   []*Component
	index   map[string]int
	deps    [][]int // node -> nodes it starts after
	barrier []bool
	afters  []afterEdge
	errs    []string
}

type afterEdge struct {
	from, to int
	path     string // field path of the after: entry
}

// buildGraph builds the DAG. Strict mode records every reason the plan
// cannot be ordered in errs; lenient mode (used by validation, which
// reports those reasons itself) skips what it cannot place.
func buildGraph(p *Plan, lenient bool) *graph {
	g := &graph{index: map[string]int{}}
	pathOf := map[int]int{} // node -> index in p.Components
	for i := range p.Components {
		c := &p.Components[i]
		if c.Name == "" {
			if !lenient {
				g.errs = append(g.errs, fmt.Sprintf("components[%d] has no name", i))
			}
			continue
		}
		if _, dup := g.index[c.Name]; dup {
			if !lenient {
				g.errs = append(g.errs, fmt.Sprintf("component %q is defined twice", c.Name))
			}
			continue
		}
		pathOf[len(g.names)] = i
		g.index[c.Name] = len(g.names)
		g.names = append(g.names, c.Name)
		g.comps = append(g.comps, c)
	}
	n := len(g.names)
	g.deps = make([][]int, n)
	g.barrier = make([]bool, n)

	ranks := map[int][]int{}
	for i, c := range g.comps {
		r, ok := rankOf(c, p.Products)
		if !ok {
			if !lenient {
				if knownRole(c.Role) {
					g.errs = append(g.errs, fmt.Sprintf("component %q: product %q is not one of the plan's products", c.Name, c.Product))
				} else {
					g.errs = append(g.errs, fmt.Sprintf("component %q: unknown role %q", c.Name, c.Role))
				}
			}
			r, _ = rankOf(&Component{Role: RoleOther}, p.Products)
		}
		ranks[r] = append(ranks[r], i)
	}
	order := make([]int, 0, len(ranks))
	for r := range ranks {
		order = append(order, r)
	}
	sort.Ints(order)
	prev := -1 // barrier node of the previous non-empty rank
	for _, r := range order {
		members := ranks[r]
		if prev >= 0 {
			for _, m := range members {
				g.deps[m] = append(g.deps[m], prev)
			}
		}
		b := len(g.deps)
		g.deps = append(g.deps, append([]int(nil), members...))
		g.barrier = append(g.barrier, true)
		prev = b
	}

	for i, c := range g.comps {
		for j, a := range c.After {
			to, ok := g.index[a]
			if !ok || to == i {
				if !lenient {
					g.errs = append(g.errs, fmt.Sprintf("component %q: after: %q is not another component", c.Name, a))
				}
				continue
			}
			g.deps[i] = append(g.deps[i], to)
			g.afters = append(g.afters, afterEdge{from: i, to: to, path: fmt.Sprintf("components[%d].after[%d]", pathOf[i], j)})
		}
	}
	return g
}

type cycle struct {
	path  string   // the after: entry that closes it
	names []string // a → b → … → a, read "starts after"
}

// cycles finds one cycle in each strongly connected part of the graph.
func (g *graph) cycles() []cycle {
	comp := g.scc()
	size := map[int]int{}
	for _, c := range comp {
		size[c]++
	}
	reported := map[int]bool{}
	var out []cycle
	for _, e := range g.afters {
		c := comp[e.from]
		if comp[e.to] != c || size[c] < 2 || reported[c] {
			continue
		}
		reported[c] = true
		// from starts after to; find how to comes back round to from.
		back := g.shortestPath(e.to, e.from, func(n int) bool { return comp[n] == c })
		names := []string{g.names[e.from]}
		for _, n := range back {
			if !g.barrier[n] {
				names = append(names, g.names[n])
			}
		}
		out = append(out, cycle{path: e.path, names: names})
	}
	return out
}

// scc labels every node with its strongly connected component (Tarjan).
func (g *graph) scc() []int {
	n := len(g.deps)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	comp := make([]int, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	next, label := 0, 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range g.deps[v] {
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = label
				if w == v {
					break
				}
			}
			label++
		}
	}
	for v := 0; v < n; v++ {
		if index[v] < 0 {
			visit(v)
		}
	}
	return comp
}

// shortestPath returns the nodes from start to goal (both included) along
// deps edges, staying on nodes for which keep is true.
func (g *graph) shortestPath(start, goal int, keep func(int) bool) []int {
	prev := map[int]int{start: -1}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		if v == goal {
			var path []int
			for ; v >= 0; v = prev[v] {
				path = append(path, v)
			}
			for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
				path[i], path[j] = path[j], path[i]
			}
			return path
		}
		for _, w := range g.deps[v] {
			if _, seen := prev[w]; !seen && keep(w) {
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return nil
}

// strict builds the graph for ordering and fails on anything validation
// should have caught, or on a cycle.
func strict(p *Plan) (*graph, error) {
	if p == nil {
		return nil, errors.New("derive restart order: no plan")
	}
	g := buildGraph(p, false)
	if len(g.errs) > 0 {
		return nil, fmt.Errorf("derive restart order: %s", strings.Join(g.errs, "; "))
	}
	if cycles := g.cycles(); len(cycles) > 0 {
		msgs := make([]string, len(cycles))
		for i, c := range cycles {
			where := c.path
			if p.src != nil && p.src.lines[c.path] > 0 {
				where = fmt.Sprintf("%s:%d: %s", p.Source, p.src.lines[c.path], c.path)
			}
			msgs[i] = fmt.Sprintf("dependency cycle: %s (at %s)", strings.Join(c.names, " → "), where)
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return g, nil
}

// Tiers returns the start order: tier 1 first, the members of a tier start
// in parallel, names sorted within a tier.
func Tiers(p *Plan) ([]Tier, error) {
	g, err := strict(p)
	if err != nil {
		return nil, err
	}
	n := len(g.names)
	level := make([]int, len(g.deps))
	var depth func(v int) int
	depth = func(v int) int {
		if level[v] > 0 {
			return level[v]
		}
		d := 0
		for _, w := range g.deps[v] {
			d = max(d, depth(w))
		}
		if !g.barrier[v] {
			d++ // a barrier adds no tier of its own
		}
		level[v] = max(d, 1)
		return level[v]
	}
	byLevel := map[int][]string{}
	top := 0
	for v := 0; v < n; v++ {
		l := depth(v)
		byLevel[l] = append(byLevel[l], g.names[v])
		top = max(top, l)
	}
	var tiers []Tier
	for l := 1; l <= top; l++ {
		names := byLevel[l]
		if len(names) == 0 {
			continue
		}
		sort.Strings(names)
		tiers = append(tiers, Tier{Index: len(tiers) + 1, Components: names})
	}
	return tiers, nil
}

// StopOrder is the start order reversed, for a graceful shutdown: what
// started last stops first (app servers before support, messaging, node
// agents, the deployment manager and the database).
func StopOrder(p *Plan) ([]Tier, error) {
	tiers, err := Tiers(p)
	if err != nil {
		return nil, err
	}
	out := make([]Tier, len(tiers))
	for i, t := range tiers {
		out[len(tiers)-1-i] = Tier{Index: len(tiers) - i, Components: t.Components}
	}
	return out, nil
}

// Dependencies returns, for every component, the components it starts
// after: all of the nearest lower rank plus its after: entries, sorted.
func Dependencies(p *Plan) (map[string][]string, error) {
	g, err := strict(p)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(g.names))
	for v, name := range g.names {
		set := map[string]bool{}
		for _, w := range g.deps[v] {
			if g.barrier[w] {
				for _, m := range g.deps[w] {
					set[g.names[m]] = true
				}
				continue
			}
			set[g.names[w]] = true
		}
		deps := make([]string, 0, len(set))
		for d := range set {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		out[name] = deps
	}
	return out, nil
}

// Component returns the component called name.
func (p *Plan) Component(name string) (*Component, bool) {
	for i := range p.Components {
		if p.Components[i].Name == name {
			return &p.Components[i], true
		}
	}
	return nil, false
}

// Site returns the site with a role: primary, secondary or sandbox.
func (p *Plan) Site(role string) (*Site, bool) {
	var s *Site
	switch role {
	case SitePrimary:
		s = p.Sites.Primary
	case SiteSecondary:
		s = p.Sites.Secondary
	case SiteSandbox:
		s = p.Sites.Sandbox
	}
	return s, s != nil
}

// TierName names a tier by what starts in it: each member's role, or
// product-role for the roles that belong to a product, once each, joined by
// "+" ("database", "bpm-app", "monitor-messaging+monitor-support"). User
// steps name tiers this way, which survives adding a member.
func TierName(p *Plan, t Tier) string {
	var labels []string
	seen := map[string]bool{}
	for _, name := range t.Components {
		for i := range p.Components {
			c := &p.Components[i]
			if c.Name != name {
				continue
			}
			label := string(c.Role)
			if c.Role.NeedsProduct() {
				label = c.Product + "-" + label
			}
			if !seen[label] {
				seen[label] = true
				labels = append(labels, label)
			}
			break
		}
	}
	return strings.Join(labels, "+")
}
