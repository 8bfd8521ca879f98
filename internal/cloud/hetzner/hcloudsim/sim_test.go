package hcloudsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The stand-in's own rules, seen through plain HTTP: the token check, the
// budget and its headers, a fault that runs out, and the log.
func TestSim(t *testing.T) {
	s := New(Options{Limit: 3})
	t.Cleanup(s.Close)
	s.AddFloatingIP(7, "web", "203.0.113.10", 0)
	s.Inject(Fault{Method: "GET", Path: "/floating_ips/7", Status: 503, Code: "service_error", Times: 1})

	for i, want := range []struct {
		token     string
		status    int
		code      string
		remaining string
	}{
		{"wrong", 401, "unauthorized", ""},
		{"test-token", 503, "service_error", "2"}, // the fault, once; it costs a request
		{"test-token", 200, "", "1"},
		{"test-token", 200, "", "0"},
		{"test-token", 429, "rate_limit_exceeded", "0"}, // 3 per hour: spent
	} {
		req, _ := http.NewRequest("GET", s.Endpoint()+"/floating_ips/7", nil)
		req.Header.Set("Authorization", "Bearer "+want.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error      struct{ Code string }
			FloatingIP struct {
				IP     string
				Server *int64
			} `json:"floating_ip"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want.status || body.Error.Code != want.code ||
			resp.Header.Get("RateLimit-Remaining") != want.remaining {
			t.Errorf("request %d: %d %q, %q left; want %d %q, %q left", i, resp.StatusCode, body.Error.Code,
				resp.Header.Get("RateLimit-Remaining"), want.status, want.code, want.remaining)
		}
		if want.status == 200 && (body.FloatingIP.IP != "203.0.113.10" || body.FloatingIP.Server != nil) {
			t.Errorf("request %d: floating IP %+v, want 203.0.113.10 unassigned", i, body.FloatingIP)
		}
		if want.remaining != "" && (resp.Header.Get("RateLimit-Limit") != "3" || resp.Header.Get("RateLimit-Reset") == "") {
			t.Errorf("request %d: headers %v", i, resp.Header)
		}
	}
	log := s.Requests()
	if len(log) != 5 || s.Count("GET", "/floating_ips/7") != 5 || log[4].Code != "rate_limit_exceeded" {
		t.Errorf("log %+v", log)
	}
	if !strings.HasSuffix(s.Endpoint(), "/v1") || !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("endpoint %s, want http://127.0.0.1:<port>/v1", s.Endpoint())
	}
}

// TestOnAssigned: the hook runs when the action ends, before the floating
// IP reads as moved and the action as done, so what it changes (a lab's
// route) is in place by the time a client sees the move.
func TestOnAssigned(t *testing.T) {
	var s *Sim
	type call struct{ fip, server, seen int64 }
	calls := make(chan call, 2)
	s = New(Options{ActionTime: 20 * time.Millisecond, OnAssigned: func(fip, server int64) {
		calls <- call{fip, server, s.Assignment(fip)}
	}})
	t.Cleanup(s.Close)
	s.AddServer(1, "node-a")
	s.AddFloatingIP(7, "web", "203.0.113.10", 0)
	for _, step := range []struct {
		path string
		want call // what the hook saw
	}{
		{"/floating_ips/7/actions/assign", call{fip: 7, server: 1, seen: 0}},
		{"/floating_ips/7/actions/unassign", call{fip: 7, server: 0, seen: 1}},
	} {
		req, _ := http.NewRequest("POST", s.Endpoint()+step.path, strings.NewReader(`{"server":1}`))
		req.Header.Set("Authorization", "Bearer test-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %v %v", step.path, resp, err)
		}
		resp.Body.Close()
		if c := <-calls; c != step.want {
			t.Errorf("%s: hook saw %+v, want %+v", step.path, c, step.want)
		}
		// The move follows the hook; wait for it before the next action.
		for deadline := time.Now().Add(time.Second); s.Assignment(7) != step.want.server; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: IP on %d, want %d", step.path, s.Assignment(7), step.want.server)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestSetActionTime: an action started after SetActionTime runs for the
// new time: done at once at 0, still running (and the IP locked) at 1 h.
func TestSetActionTime(t *testing.T) {
	s := New(Options{ActionTime: time.Hour})
	t.Cleanup(s.Close)
	s.AddServer(1, "node-a")
	for i, step := range []struct {
		d      time.Duration
		status string
	}{
		{0, "success"},
		{time.Hour, "running"},
	} {
		id := int64(10 + i)
		s.AddFloatingIP(id, "web", "203.0.113.10", 0)
		s.SetActionTime(step.d)
		req, _ := http.NewRequest("POST", s.Endpoint()+"/floating_ips/"+strconv.FormatInt(id, 10)+"/actions/assign", strings.NewReader(`{"server":1}`))
		req.Header.Set("Authorization", "Bearer test-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Action struct{ Status string } }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || body.Action.Status != step.status {
			t.Errorf("action time %s: action %q (%v), want %q", step.d, body.Action.Status, err, step.status)
		}
	}
}
