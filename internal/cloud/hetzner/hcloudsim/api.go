package hcloudsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// created is the creation time of every object.
const created = "2026-01-01T00:00:00Z"

type floatingIP struct {
	id, server int64
	name, ip   string
	typ        string
	busy       bool // an action runs on it: further actions get 423 locked
}

type action struct {
	id, floatingIP, server int64
	command                string
	started, finished      time.Time
	done                   bool
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/floating_ips/{id}", s.getFloatingIP)
	mux.HandleFunc("GET /v1/floating_ips", s.listFloatingIPs)
	mux.HandleFunc("POST /v1/floating_ips/{id}/actions/assign", s.assign)
	mux.HandleFunc("POST /v1/floating_ips/{id}/actions/unassign", s.assign)
	mux.HandleFunc("GET /v1/actions/{id}", s.getAction)
	mux.HandleFunc("GET /v1/actions", s.listActions)
	mux.HandleFunc("GET /v1/servers/{id}", s.getServer)
	mux.HandleFunc("GET /v1/servers", s.listServers)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint in the stand-in")
	})
	return mux
}

func (s *Sim) getFloatingIP(w http.ResponseWriter, r *http.Request) {
	s.getOne(w, r, "floating_ip", func(id int64) (any, bool) {
		if f := s.fips[id]; f != nil {
			return f.json(), true
		}
		return nil, false
	})
}

// getOne answers the GET of one object: find looks it up, under s.mu, and
// kind is its key in the answer.
func (s *Sim) getOne(w http.ResponseWriter, r *http.Request, kind string, find func(id int64) (any, bool)) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	obj, found := find(id)
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "not_found", notFound(kind, id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{kind: obj})
}

func (s *Sim) listFloatingIPs(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	s.mu.Lock()
	var out []any
	for _, id := range sortedKeys(s.fips) {
		if f := s.fips[id]; name == "" || f.name == name {
			out = append(out, f.json())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, listBody(r, "floating_ips", out))
}

// assign serves assign and unassign: both are actions on the floating IP.
func (s *Sim) assign(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var req struct {
		Server int64 `json:"server"`
	}
	command := "unassign_floating_ip"
	if r.URL.Path == "/v1/floating_ips/"+r.PathValue("id")+"/actions/assign" {
		command = "assign_floating_ip"
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Server == 0 {
			writeError(w, http.StatusBadRequest, "invalid_input", "server is required")
			return
		}
	}
	s.mu.Lock()
	f := s.fips[id]
	_, serverExists := s.servers[req.Server]
	switch {
	case f == nil:
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", notFound("floating_ip", id))
		return
	case req.Server != 0 && !serverExists:
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", notFound("server", req.Server))
		return
	case f.busy:
		s.mu.Unlock()
		writeError(w, http.StatusLocked, "locked", "floating_ip is locked by a running action")
		return
	}
	s.nextAction++
	a := &action{id: s.nextAction, floatingIP: id, server: req.Server, command: command, started: time.Now()}
	s.actions[a.id] = a
	f.busy = true
	if s.opts.ActionTime > 0 {
		s.timers = append(s.timers, time.AfterFunc(s.opts.ActionTime, func() { s.finish(a) }))
		body := map[string]any{"action": a.json()}
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, body)
		return
	}
	s.mu.Unlock()
	s.finish(a)
	s.mu.Lock()
	body := map[string]any{"action": a.json()}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, body)
}

// finish ends an action: the hook first, then the move, so that whatever
// the hook changes is in place before anyone can see the action done.
func (s *Sim) finish(a *action) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if !closed && s.opts.OnAssigned != nil {
		s.opts.OnAssigned(a.floatingIP, a.server)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if f := s.fips[a.floatingIP]; f != nil {
		f.server, f.busy = a.server, false
	}
	a.done, a.finished = true, time.Now()
}

func (s *Sim) getAction(w http.ResponseWriter, r *http.Request) {
	s.getOne(w, r, "action", func(id int64) (any, bool) {
		if a := s.actions[id]; a != nil {
			return a.json(), true
		}
		return nil, false
	})
}

// listActions serves what hcloud's Action.WaitFor polls: actions by ID.
func (s *Sim) listActions(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["id"]
	if len(ids) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_input", "id is required")
		return
	}
	s.mu.Lock()
	var out []any
	for _, v := range ids {
		id, err := strconv.ParseInt(v, 10, 64)
		if a := s.actions[id]; err == nil && a != nil {
			out = append(out, a.json())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, listBody(r, "actions", out))
}

func (s *Sim) getServer(w http.ResponseWriter, r *http.Request) {
	s.getOne(w, r, "server", func(id int64) (any, bool) {
		if name, ok := s.servers[id]; ok {
			return s.serverJSON(id, name), true
		}
		return nil, false
	})
}

func (s *Sim) listServers(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	s.mu.Lock()
	var out []any
	for _, id := range sortedKeys(s.servers) {
		if n := s.servers[id]; name == "" || n == name {
			out = append(out, s.serverJSON(id, n))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, listBody(r, "servers", out))
}

// serverJSON is a server as the API shows it; s.mu is held.
func (s *Sim) serverJSON(id int64, name string) map[string]any {
	fips := []int64{}
	for _, fid := range sortedKeys(s.fips) {
		if s.fips[fid].server == id {
			fips = append(fips, fid)
		}
	}
	return map[string]any{
		"id": id, "name": name, "status": "running", "created": created,
		"public_net":  map[string]any{"floating_ips": fips, "firewalls": []any{}},
		"private_net": []any{}, "labels": map[string]string{}, "volumes": []int64{},
		"protection": map[string]bool{"delete": false, "rebuild": false},
		"locked":     false, "load_balancers": []int64{},
	}
}

func (f *floatingIP) json() map[string]any {
	var server any
	if f.server != 0 {
		server = f.server
	}
	return map[string]any{
		"id": f.id, "name": f.name, "description": nil, "ip": f.ip, "type": f.typ,
		"server": server, "dns_ptr": []any{}, "blocked": false, "created": created,
		"home_location": map[string]any{"id": 1, "name": "fsn1", "network_zone": "eu-central"},
		"protection":    map[string]bool{"delete": false}, "labels": map[string]string{},
	}
}

func (a *action) json() map[string]any {
	status, progress := "running", 0
	var finished any
	if a.done {
		status, progress, finished = "success", 100, a.finished
	}
	resources := []any{map[string]any{"id": a.floatingIP, "type": "floating_ip"}}
	if a.server != 0 {
		resources = append(resources, map[string]any{"id": a.server, "type": "server"})
	}
	return map[string]any{
		"id": a.id, "command": a.command, "status": status, "progress": progress,
		"started": a.started, "finished": finished, "resources": resources, "error": nil,
	}
}

// listBody is a list answer with Hetzner's pagination meta: one page.
// listBody is one page of a list, as the API pages it: ?page= and
// ?per_page= (25 by default, at most 50).
func listBody(r *http.Request, key string, items []any) map[string]any {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	page = max(page, 1)
	if per <= 0 {
		per = 25
	}
	per = min(per, 50)
	last := max((len(items)+per-1)/per, 1)
	from, to := min((page-1)*per, len(items)), min(page*per, len(items))
	out := append([]any{}, items[from:to]...)
	var prev, next any
	if page > 1 {
		prev = page - 1
	}
	if page < last {
		next = page + 1
	}
	return map[string]any{key: out, "meta": map[string]any{"pagination": map[string]any{
		"page": page, "per_page": per, "previous_page": prev, "next_page": next,
		"last_page": last, "total_entries": len(items),
	}}}
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", "invalid ID")
		return 0, false
	}
	return id, true
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeError answers with Hetzner's error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	if rec, ok := w.(*recorder); ok {
		rec.code = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": message, "details": map[string]any{},
	}})
}

func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
