package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

func TestDetectLocation(t *testing.T) {
	ecs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v4/task" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"Cluster":"c","AvailabilityZone":"ap-southeast-2b"}`))
	}))
	defer ecs.Close()
	// EC2 instance metadata v2: a token first, then the region.
	var imdsPaths []string
	ec2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imdsPaths = append(imdsPaths, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			w.Write([]byte("token"))
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "token":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/latest/dynamic/instance-identity/document":
			w.Write([]byte(`{"region":"sa-east-1","availabilityZone":"sa-east-1a"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ec2.Close()
	imdsClient := func() *imds.Client { return imds.New(imds.Options{Endpoint: ec2.URL}) }
	host := func() (string, error) { return "probe-host-7", nil }
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	cases := []struct {
		name         string
		src          LocationSources
		want, source string
	}{
		{"explicit wins", LocationSources{Getenv: env(map[string]string{"EDGEPROBE_LOCATION": "lab-1", "AWS_REGION": "eu-west-1"}), Hostname: host, skipIMDS: true}, "lab-1", "env EDGEPROBE_LOCATION"},
		{"aws region", LocationSources{Getenv: env(map[string]string{"AWS_REGION": "eu-west-1"}), Hostname: host, skipIMDS: true}, "eu-west-1", "env AWS_REGION"},
		{"ecs task zone", LocationSources{Getenv: env(map[string]string{"ECS_CONTAINER_METADATA_URI_V4": ecs.URL + "/v4"}), Hostname: host, skipIMDS: true}, "ap-southeast-2", "ecs task metadata"},
		{"ec2 metadata", LocationSources{Getenv: env(nil), Hostname: host, IMDS: imdsClient}, "sa-east-1", "ec2 instance metadata"},
		{"hostname last", LocationSources{Getenv: env(nil), Hostname: host, skipIMDS: true}, "probe-host-7", "hostname"},
		{"ecs down falls through", LocationSources{Getenv: env(map[string]string{"ECS_CONTAINER_METADATA_URI_V4": ecs.URL + "/missing"}), Hostname: host, skipIMDS: true}, "probe-host-7", "hostname"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, source := DetectLocation(context.Background(), c.src)
			if got != c.want || source != c.source {
				t.Errorf("got %q from %q, want %q from %q (imds saw %v)", got, source, c.want, c.source, imdsPaths)
			}
		})
	}
}
