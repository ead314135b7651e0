package plan

// Line is the line a field path ("storage.store.path") was written on, or
// that of its nearest written parent; 0 when the plan was not read from a
// file (a workflow input).
func (p *Plan) Line(path string) int {
	if p == nil || p.src == nil {
		return 0
	}
	for q := path; q != ""; q = parentPath(q) {
		if l := p.src.lines[q]; l > 0 {
			return l
		}
	}
	return 0
}
