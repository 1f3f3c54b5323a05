package dashboards

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
)

// PutDashboardAPI is what InstallCloudWatch needs of a CloudWatch client.
type PutDashboardAPI interface {
	PutDashboard(ctx context.Context, in *cloudwatch.PutDashboardInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutDashboardOutput, error)
}

// dashboardName is what CloudWatch accepts as a dashboard name.
var dashboardName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// ValidDashboardName says whether CloudWatch takes name as a dashboard name
// (letters, digits, - and _, at most 255).
func ValidDashboardName(name string) bool { return dashboardName.MatchString(name) }

// InstallCloudWatch puts the CloudWatch overview (CloudWatchBody) as the
// dashboard name, replacing one of that name. It returns the validation
// messages CloudWatch answered with (warnings: the dashboard was put).
func InstallCloudWatch(ctx context.Context, api PutDashboardAPI, name, namespace, region string) ([]string, error) {
	if !ValidDashboardName(name) {
		return nil, fmt.Errorf("dashboard name %q: use letters, digits, - and _ (at most 255)", name)
	}
	d, err := CloudWatchBody(namespace, region)
	if err != nil {
		return nil, err
	}
	body, err := d.JSON()
	if err != nil {
		return nil, err
	}
	out, err := api.PutDashboard(ctx, &cloudwatch.PutDashboardInput{
		DashboardName: aws.String(name),
		DashboardBody: aws.String(strings.TrimSpace(string(body))),
	})
	if err != nil {
		return nil, fmt.Errorf("PutDashboard %s: %w", name, err)
	}
	var msgs []string
	for _, m := range out.DashboardValidationMessages {
		msgs = append(msgs, strings.TrimSpace(aws.ToString(m.DataPath)+": "+aws.ToString(m.Message)))
	}
	return msgs, nil
}
