package deploy

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/edgeprobe/edgeprobe/internal/testkit"
	"github.com/edgeprobe/edgeprobe/probe"
)

var templatePath = filepath.Join("cloudformation", "edgeprobe.yaml")

// TestCloudFormationLint runs cfn-lint (installed with moto's server
// extras) on the template: resource types, properties, intrinsic functions
// and values against the CloudFormation specification.
func TestCloudFormationLint(t *testing.T) {
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		t.Fatal("cfn-lint not found: it comes with moto[server] (see scripts/deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "cfn-lint", templatePath).CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", templatePath, err, out)
	}
}

// policyDoc is an IAM policy document as IAM returns it.
type policyDoc struct {
	Statement []struct {
		Effect    string
		Action    any
		Resource  any
		Condition map[string]map[string]string
	}
}

// TestCloudFormationStack creates the template as stacks on the AWS
// emulator's CloudFormation and reads back what they made. moto creates the
// log group, cluster, roles (inline policies included), the conditional
// policy, the task definition's containers and volumes and the service;
// it keeps no task-level settings (task role, Fargate, network mode, CPU)
// and no service network configuration, so those are read from the
// template as CloudFormation resolved them (GetTemplate is not enough:
// the checks below go through the stack's resources).
func TestCloudFormationStack(t *testing.T) {
	body, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	moto := testkit.StartMoto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"), config.WithBaseEndpoint(moto.URL()))
	if err != nil {
		t.Fatal(err)
	}
	cfn, iamc, ecsc := cloudformation.NewFromConfig(cfg), iam.NewFromConfig(cfg), ecs.NewFromConfig(cfg)

	inline := `location: ignored-by-the-flag
defaults: {interval: 30s, timeout: 10s}
targets:
  - name: shop
    url: https://www.example.com/health
    roles:
      cdn: {}
      origin: {connect_to: my-alb-123.us-east-1.elb.amazonaws.com}
exporters:
  prometheus: {listen: ":9470"}
  cloudwatch: {namespace: EdgeProbe}
  remote_write: {url: "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1234abcd/api/v1/remote_write", sigv4: {region: us-east-1}}
`
	const workspace = "arn:aws:aps:us-east-1:123456789012:workspace/ws-1234abcd"

	create := func(name string, params map[string]string) map[string]string {
		t.Helper()
		in := &cloudformation.CreateStackInput{
			StackName:    aws.String(name),
			TemplateBody: aws.String(string(body)),
			Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam},
		}
		for k, v := range params {
			in.Parameters = append(in.Parameters, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
		}
		if _, err := cfn.CreateStack(ctx, in); err != nil {
			t.Fatalf("CreateStack %s: %v", name, err)
		}
		// moto creates synchronously; a real stack would be polled (bounded).
		var status cfntypes.StackStatus
		for i := 0; i < 50; i++ {
			out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			if status = out.Stacks[0].StackStatus; !strings.HasSuffix(string(status), "_IN_PROGRESS") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if status != cfntypes.StackStatusCreateComplete {
			t.Fatalf("stack %s: %s", name, status)
		}
		res, err := cfn.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{} // logical id → physical id
		for _, r := range res.StackResourceSummaries {
			got[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
		}
		return got
	}
	inlinePolicies := func(role string) []string {
		t.Helper()
		out, err := iamc.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out.PolicyNames)
		return out.PolicyNames
	}
	rolePolicy := func(role, policy string) policyDoc {
		t.Helper()
		out, err := iamc.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(policy)})
		if err != nil {
			t.Fatalf("GetRolePolicy %s %s: %v", role, policy, err)
		}
		doc, err := url.QueryUnescape(aws.ToString(out.PolicyDocument)) // IAM returns it URL-encoded
		if err != nil {
			t.Fatal(err)
		}
		// moto quirk: a role's inline policy created by CloudFormation comes
		// back as the Python repr of the document ({'Version': ...}), not
		// JSON (AWS returns JSON). Ours hold no quotes in their strings, so
		// swapping the quote characters recovers the JSON honestly.
		if strings.HasPrefix(doc, "{'") {
			doc = strings.ReplaceAll(doc, "'", `"`)
		}
		var d policyDoc
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("%s %s: %v\n%s", role, policy, err, doc)
		}
		return d
	}
	containers := func(family string) map[string]ecstypes.ContainerDefinition {
		t.Helper()
		out, err := ecsc.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]ecstypes.ContainerDefinition{}
		for _, c := range out.TaskDefinition.ContainerDefinitions {
			m[aws.ToString(c.Name)] = c
		}
		if len(out.TaskDefinition.Volumes) != 1 || aws.ToString(out.TaskDefinition.Volumes[0].Name) != "config" {
			t.Errorf("volumes %+v, want the one config volume", out.TaskDefinition.Volumes)
		}
		return m
	}

	// 1. Inline config, remote write on, location from the region.
	res := create("edgeprobe-inline", map[string]string{
		"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/edgeprobe:v1", "Config": inline,
		"Subnets": "subnet-0a1b2c3d,subnet-4e5f6a7b", "SecurityGroup": "sg-0123abcd",
		"RemoteWriteWorkspaceArn": workspace,
	})
	var logical []string
	for k := range res {
		logical = append(logical, k)
	}
	sort.Strings(logical)
	if want := []string{"AgentCluster", "ExecutionRole", "LogGroup", "RemoteWritePolicy", "Service", "TaskDefinition", "TaskRole"}; !slices.Equal(logical, want) {
		t.Errorf("resources %v, want %v", logical, want)
	}
	taskRole := res["TaskRole"]
	if got := inlinePolicies(taskRole); !slices.Equal(got, []string{"PutMetricData", "RemoteWrite"}) {
		t.Errorf("task role's policies %v, want PutMetricData and RemoteWrite", got)
	}
	attached, err := iamc.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(taskRole)})
	if err != nil {
		t.Fatal(err)
	}
	if len(attached.AttachedPolicies) != 0 {
		t.Errorf("task role has managed policies %+v: it must have only its two inline ones", attached.AttachedPolicies)
	}
	pmd := rolePolicy(taskRole, "PutMetricData")
	if len(pmd.Statement) != 1 || pmd.Statement[0].Action != "cloudwatch:PutMetricData" || pmd.Statement[0].Resource != "*" ||
		pmd.Statement[0].Condition["StringEquals"]["cloudwatch:namespace"] != "EdgeProbe" {
		t.Errorf("PutMetricData policy %+v: want only cloudwatch:PutMetricData on *, namespace EdgeProbe", pmd)
	}
	rw := rolePolicy(taskRole, "RemoteWrite")
	if len(rw.Statement) != 1 || rw.Statement[0].Action != "aps:RemoteWrite" || rw.Statement[0].Resource != workspace {
		t.Errorf("RemoteWrite policy %+v: want only aps:RemoteWrite on %s", rw, workspace)
	}
	if got := inlinePolicies(res["ExecutionRole"]); len(got) != 0 {
		t.Errorf("execution role's inline policies %v, want none with an inline config", got)
	}

	cs := containers("edgeprobe")
	agent, init := cs["probe"], cs["config"]
	if want := []string{"run", "--config", "/etc/edgeprobe/edgeprobe.yml", "--location", "us-east-1"}; !slices.Equal(agent.Command, want) {
		t.Errorf("probe command %q, want %q", agent.Command, want)
	}
	if aws.ToString(agent.Image) != "123456789012.dkr.ecr.us-east-1.amazonaws.com/edgeprobe:v1" || !aws.ToBool(agent.Essential) {
		t.Errorf("probe image %q essential %v", aws.ToString(agent.Image), aws.ToBool(agent.Essential))
	}
	if hc := agent.HealthCheck; hc == nil || !slices.Equal(hc.Command[:2], []string{"CMD", "/probe"}) {
		t.Errorf("probe health check %+v, want the image's: CMD /probe check …/healthz", hc)
	}
	if len(agent.DependsOn) != 1 || aws.ToString(agent.DependsOn[0].ContainerName) != "config" || agent.DependsOn[0].Condition != ecstypes.ContainerConditionSuccess {
		t.Errorf("probe depends on %+v, want config SUCCESS", agent.DependsOn)
	}
	if aws.ToBool(init.Essential) {
		t.Error("the config container is essential: its exit would stop the task")
	}
	var written string
	for _, e := range init.Environment {
		if aws.ToString(e.Name) == "EDGEPROBE_CONFIG" {
			written = aws.ToString(e.Value)
		}
	}
	if written != inline {
		t.Errorf("config container writes %q, want the Config parameter", written)
	}
	if _, err := probe.Parse("EDGEPROBE_CONFIG", []byte(written)); err != nil {
		t.Errorf("the config the task would run: %v", err)
	}
	svc, err := ecsc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(res["AgentCluster"]), Services: []string{res["Service"]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Services) != 1 || svc.Services[0].DesiredCount != 1 || !strings.Contains(aws.ToString(svc.Services[0].TaskDefinition), "edgeprobe") {
		t.Errorf("service %+v, want one task of edgeprobe", svc.Services)
	}

	// 2. Config from SSM, an existing cluster, a location of its own, no
	// remote write.
	if _, err := ecsc.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	res = create("edgeprobe-ssm", map[string]string{
		"Image": "public.ecr.aws/example/edgeprobe:v1", "ConfigParameterName": "/edgeprobe/config",
		"Subnets": "subnet-0a1b2c3d", "SecurityGroup": "sg-0123abcd", "Cluster": "shared", "Location": "eu-central-1-office",
	})
	if _, ok := res["RemoteWritePolicy"]; ok {
		t.Error("RemoteWritePolicy created without a workspace")
	}
	if _, ok := res["AgentCluster"]; ok {
		t.Error("a cluster created though one was given")
	}
	if got := inlinePolicies(res["TaskRole"]); !slices.Equal(got, []string{"PutMetricData"}) {
		t.Errorf("task role's policies %v, want only PutMetricData", got)
	}
	const paramARN = "arn:aws:ssm:us-east-1:123456789012:parameter/edgeprobe/config"
	get := rolePolicy(res["ExecutionRole"], "ReadConfigParameter")
	if len(get.Statement) != 1 || get.Statement[0].Action != "ssm:GetParameters" || get.Statement[0].Resource != paramARN {
		t.Errorf("execution role's ReadConfigParameter %+v, want ssm:GetParameters on %s", get, paramARN)
	}
	cs = containers("edgeprobe") // the latest revision
	if got := cs["probe"].Command; got[len(got)-1] != "eu-central-1-office" {
		t.Errorf("probe command %q, want --location eu-central-1-office", got)
	}
	init = cs["config"]
	if len(init.Environment) != 0 || len(init.Secrets) != 1 || aws.ToString(init.Secrets[0].Name) != "EDGEPROBE_CONFIG" || aws.ToString(init.Secrets[0].ValueFrom) != paramARN {
		t.Errorf("config container env %+v secrets %+v, want EDGEPROBE_CONFIG from %s only", init.Environment, init.Secrets, paramARN)
	}
	svc, err = ecsc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("shared"), Services: []string{res["Service"]}})
	if err != nil || len(svc.Services) != 1 {
		t.Errorf("service in the given cluster: %+v, %v", svc, err)
	}

	// 3. Deleting a stack removes what it made.
	if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String("edgeprobe-inline")}); err != nil {
		t.Fatal(err)
	}
	if _, err := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(taskRole)}); err == nil {
		t.Errorf("role %s still there after DeleteStack", taskRole)
	}
}
