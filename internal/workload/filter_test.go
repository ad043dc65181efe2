package workload

import (
	"testing"

	"github.com/porttrace/porttrace/tracer"
)

func TestFilterMatch(t *testing.T) {
	web := tracer.Workload{Pod: "shop", Namespace: "prod", Container: "web"}
	host := tracer.Workload{}
	for _, c := range []struct {
		f         Filter
		web, host bool
	}{
		{Filter{}, true, true},
		{Filter{Pods: []string{"shop"}}, true, false},
		{Filter{Pods: []string{"cart", "shop"}, Namespaces: []string{"prod"}}, true, false},
		{Filter{Pods: []string{"shop"}, Namespaces: []string{"dev"}}, false, false},
		{Filter{Containers: []string{"db"}}, false, false},
	} {
		if got := c.f.Match(&web); got != c.web {
			t.Errorf("%+v matches %+v: %v, want %v", c.f, web, got, c.web)
		}
		if got := c.f.Match(&host); got != c.host {
			t.Errorf("%+v matches a host process: %v, want %v", c.f, got, c.host)
		}
	}
	f := Filter{Pods: []string{"shop"}}
	if !f.Keeps(&tracer.Event{Kind: tracer.KindLost}) || f.Keeps(&tracer.Event{Kind: tracer.KindFree}) {
		t.Error("a pod filter must keep lost events and drop a host's free events")
	}
	if s := (&Filter{Pods: []string{"a", "b"}, Containers: []string{"c"}}).String(); s != "pod a,b, container c" {
		t.Errorf("String() = %q", s)
	}
}
