package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// LocationSources say where DetectLocation looks; the zero value uses the
// process environment and the real metadata endpoints.
type LocationSources struct {
	Getenv   func(string) string    // default os.Getenv
	Hostname func() (string, error) // default os.Hostname
	HTTP     *http.Client           // for ECS task metadata; default 1s timeout
	IMDS     func() *imds.Client    // EC2 instance metadata; default imds.New
	Timeout  time.Duration          // per metadata source; default 1s
	skipIMDS bool
}

// DetectLocation names where the agent runs, first match wins: the
// EDGEPROBE_LOCATION variable, AWS_REGION / AWS_DEFAULT_REGION, the ECS
// task's availability zone (its region), EC2 instance metadata's region,
// then the host name. It returns the name and where it came from.
func DetectLocation(ctx context.Context, src LocationSources) (name, source string) {
	getenv := src.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	timeout := src.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	for _, v := range []string{"EDGEPROBE_LOCATION", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		if loc := getenv(v); loc != "" {
			return loc, "env " + v
		}
	}
	if uri := getenv("ECS_CONTAINER_METADATA_URI_V4"); uri != "" {
		if region, err := ecsRegion(ctx, src.HTTP, uri, timeout); err == nil {
			return region, "ecs task metadata"
		}
	}
	// IMDS is only worth asking when the environment hints at EC2: off EC2
	// the link-local address does not answer and would cost the timeout.
	if !src.skipIMDS && (src.IMDS != nil || onEC2()) {
		newClient := src.IMDS
		if newClient == nil {
			newClient = func() *imds.Client { return imds.New(imds.Options{}) }
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if out, err := newClient().GetRegion(ctx, &imds.GetRegionInput{}); err == nil && out.Region != "" {
			return out.Region, "ec2 instance metadata"
		}
	}
	hostname := src.Hostname
	if hostname == nil {
		hostname = os.Hostname
	}
	if h, err := hostname(); err == nil && h != "" {
		return h, "hostname"
	}
	return "unknown", "none"
}

// onEC2 reads the DMI vendor files that EC2 (Xen and Nitro) fill in.
func onEC2() bool {
	for _, f := range []string{"/sys/devices/virtual/dmi/id/sys_vendor", "/sys/devices/virtual/dmi/id/bios_vendor", "/sys/hypervisor/uuid"} {
		b, err := os.ReadFile(f)
		if err == nil && (strings.Contains(strings.ToLower(string(b)), "amazon") || strings.HasPrefix(string(b), "ec2")) {
			return true
		}
	}
	return false
}

// ecsRegion reads the task metadata v4 endpoint's availability zone
// ("eu-west-1a") and trims it to the region.
func ecsRegion(ctx context.Context, client *http.Client, uri string, timeout time.Duration) (string, error) {
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(uri, "/")+"/task", nil)
	if err != nil {
		return "", fmt.Errorf("ecs metadata: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("ecs metadata: %w", err)
	}
	defer resp.Body.Close()
	var task struct {
		AvailabilityZone string `json:"AvailabilityZone"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&task); err != nil {
		return "", fmt.Errorf("ecs metadata: %w", err)
	}
	az := task.AvailabilityZone
	if len(az) < 2 {
		return "", fmt.Errorf("ecs metadata: no availability zone")
	}
	// "eu-west-1a" → "eu-west-1"; local zones ("us-west-2-lax-1a") keep their name.
	if last := az[len(az)-1]; last >= 'a' && last <= 'z' && az[len(az)-2] >= '0' && az[len(az)-2] <= '9' {
		return az[:len(az)-1], nil
	}
	return az, nil
}
