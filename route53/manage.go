package route53

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// API is the part of the Route 53 client this package calls
// (*route53.Client implements it). The IAM actions it needs are listed in
// docs/route53.md.
type API interface {
	CreateHealthCheck(context.Context, *r53.CreateHealthCheckInput, ...func(*r53.Options)) (*r53.CreateHealthCheckOutput, error)
	UpdateHealthCheck(context.Context, *r53.UpdateHealthCheckInput, ...func(*r53.Options)) (*r53.UpdateHealthCheckOutput, error)
	DeleteHealthCheck(context.Context, *r53.DeleteHealthCheckInput, ...func(*r53.Options)) (*r53.DeleteHealthCheckOutput, error)
	ListHealthChecks(context.Context, *r53.ListHealthChecksInput, ...func(*r53.Options)) (*r53.ListHealthChecksOutput, error)
	GetHealthCheckStatus(context.Context, *r53.GetHealthCheckStatusInput, ...func(*r53.Options)) (*r53.GetHealthCheckStatusOutput, error)
	ChangeTagsForResource(context.Context, *r53.ChangeTagsForResourceInput, ...func(*r53.Options)) (*r53.ChangeTagsForResourceOutput, error)
	ListTagsForResources(context.Context, *r53.ListTagsForResourcesInput, ...func(*r53.Options)) (*r53.ListTagsForResourcesOutput, error)
}

// Existing is a health check as Route 53 has it.
type Existing struct {
	ID              string `json:"id"`
	Target          string `json:"target"`
	Role            string `json:"role"`
	CallerReference string `json:"caller_reference"`
	Version         int64  `json:"version"`
	Settings
	Tags map[string]string `json:"tags"`
	// Status summarizes the checkers' last observations ("3/3 checkers
	// ok"); set by List with Status.
	Status string `json:"status,omitempty"`
}

// Key is "target/role".
func (e *Existing) Key() string { return e.Target + "/" + e.Role }

func (e *Existing) ours() bool { return e.Tags[TagManaged] == "true" }

// Action is what Create did (or refused to do) with one check.
type Action string

// Actions of Create.
const (
	Created   Action = "created"
	Unchanged Action = "unchanged"
	Updated   Action = "updated"
	Replaced  Action = "replaced"
	Refused   Action = "refused" // immutable settings differ and Replace is off
)

// Result is Create's report on one check.
type Result struct {
	Target  string   `json:"target"`
	Role    string   `json:"role"`
	ID      string   `json:"id,omitempty"`
	Action  Action   `json:"action"`
	Changes []string `json:"changes,omitempty"` // "RequestInterval 30 → 10"
	// OldID is the check a replacement deleted.
	OldID string `json:"old_id,omitempty"`
	// Notes: an adopted untagged check, duplicates, what a replacement loses.
	Notes []string `json:"notes,omitempty"`
}

// Key is "target/role".
func (r *Result) Key() string { return r.Target + "/" + r.Role }

// ErrNeedsReplace: a setting Route 53 cannot change after creation
// differs. Create returns it before any change when CreateOptions.Replace
// is off.
var ErrNeedsReplace = errors.New("cannot change after creation: run `probe healthchecks create --replace` to delete and re-create the checks")

// CreateOptions change how Create treats existing checks.
type CreateOptions struct {
	// Replace deletes and re-creates a check whose immutable settings
	// (Type, RequestInterval, MeasureLatency, IP address or not) differ.
	Replace bool
}

// Create makes the checks exist as planned, and is idempotent: it finds
// edgeprobe's checks by tag (target/role), keeps one that matches
// (Unchanged), updates mutable differences in place (Updated), and creates
// what is missing (Created) with the plan's CallerReference — adopting an
// untagged check that already has it, the trace of a run that stopped
// before tagging. When an immutable setting differs it changes nothing at
// all and returns the Refused results with ErrNeedsReplace, unless
// opts.Replace, which creates the new check and then deletes the old
// (Replaced). Invalid checks are refused before any call.
func Create(ctx context.Context, api API, checks []Check, opts CreateOptions) ([]Result, error) {
	var problems []string
	for i := range checks {
		problems = append(problems, checks[i].Validate()...)
		if checks[i].ResolveHost != "" && checks[i].IPAddress == "" {
			problems = append(problems, checks[i].Key()+": "+checks[i].ResolveHost+" not resolved (call Resolve)")
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	all, err := listAll(ctx, api)
	if err != nil {
		return nil, err
	}
	byKey := map[string][]*Existing{}
	byRef := map[string]*Existing{}
	for i := range all {
		e := &all[i]
		if e.ours() {
			byKey[e.Key()] = append(byKey[e.Key()], e)
		} else if strings.HasPrefix(e.CallerReference, ReferencePrefix) {
			byRef[e.CallerReference] = e
		}
	}

	type step struct {
		check    *Check
		existing *Existing
		adopt    bool
		res      Result
	}
	var steps []step
	var refused []Result
	for i := range checks {
		c := &checks[i]
		st := step{check: c, res: Result{Target: c.Target, Role: c.Role}}
		if found := byKey[c.Key()]; len(found) > 0 {
			st.existing = found[0]
			for _, d := range found[1:] {
				st.res.Notes = append(st.res.Notes, fmt.Sprintf("check %s is also tagged %s; `probe healthchecks delete` removes all of them", d.ID, c.Key()))
			}
		} else if e := adoptable(byRef, c.CallerReference); e != nil {
			st.existing, st.adopt = e, true
			st.res.Notes = append(st.res.Notes, fmt.Sprintf("adopted untagged check %s with this plan's caller reference", e.ID))
		}
		if st.existing == nil {
			st.res.Action = Created
			steps = append(steps, st)
			continue
		}
		st.res.ID = st.existing.ID
		immutable, mutable := diff(c, st.existing)
		switch {
		case len(immutable) > 0:
			st.res.Changes = append(immutable, mutable...)
			if !opts.Replace {
				st.res.Action = Refused
				refused = append(refused, st.res)
				continue
			}
			st.res.Action, st.res.OldID = Replaced, st.existing.ID
			st.res.Notes = append(st.res.Notes, "the new check has a new ID; Route 53's metric history stays under the old one")
		case len(mutable) > 0:
			st.res.Action, st.res.Changes = Updated, mutable
		case st.adopt || !tagsMatch(c.Tags, st.existing.Tags):
			st.res.Action, st.res.Changes = Updated, []string{"tags"}
		default:
			st.res.Action = Unchanged
		}
		steps = append(steps, st)
	}
	if len(refused) > 0 {
		return refused, ErrNeedsReplace
	}

	results := make([]Result, 0, len(steps))
	for _, st := range steps {
		res, c, e := st.res, st.check, st.existing
		var err error
		switch res.Action {
		case Created:
			res.ID, err = createOne(ctx, api, c)
		case Replaced:
			if res.ID, err = createOne(ctx, api, c); err == nil {
				_, err = api.DeleteHealthCheck(ctx, &r53.DeleteHealthCheckInput{HealthCheckId: aws.String(e.ID)})
				if err != nil {
					err = fmt.Errorf("delete replaced check %s: %w", e.ID, err)
				}
			}
		case Updated:
			if !slices.Equal(res.Changes, []string{"tags"}) {
				err = updateOne(ctx, api, c, e)
			}
			if err == nil {
				err = tag(ctx, api, e.ID, c.Tags)
			}
		}
		if err != nil {
			return results, fmt.Errorf("%s: %w", c.Key(), err)
		}
		results = append(results, res)
	}
	return results, nil
}

// adoptable finds an untagged check created with ref (or a retry of it).
func adoptable(byRef map[string]*Existing, ref string) *Existing {
	if e, ok := byRef[ref]; ok {
		return e
	}
	for r, e := range byRef {
		if strings.HasPrefix(r, ref+"-") {
			return e
		}
	}
	return nil
}

// diff says which settings of e differ from c, split by whether
// UpdateHealthCheck can change them.
func diff(c *Check, e *Existing) (immutable, mutable []string) {
	d, h := c.Settings, e.Settings
	change := func(name string, from, to any) string { return fmt.Sprintf("%s %v → %v", name, from, to) }
	if d.Type != h.Type {
		immutable = append(immutable, change("Type", h.Type, d.Type))
	}
	if d.RequestInterval != h.RequestInterval {
		immutable = append(immutable, change("RequestInterval", h.RequestInterval, d.RequestInterval))
	}
	if d.MeasureLatency != h.MeasureLatency {
		immutable = append(immutable, change("MeasureLatency", h.MeasureLatency, d.MeasureLatency))
	}
	if (d.IPAddress == "") != (h.IPAddress == "") {
		immutable = append(immutable, change("IPAddress", orNone(h.IPAddress), orNone(d.IPAddress)))
	} else if d.IPAddress != h.IPAddress && !slices.Contains(c.ResolvedIPs, h.IPAddress) {
		mutable = append(mutable, change("IPAddress", h.IPAddress, d.IPAddress))
	}
	if !strings.EqualFold(d.FQDN, h.FQDN) {
		mutable = append(mutable, change("FullyQualifiedDomainName", orNone(h.FQDN), orNone(d.FQDN)))
	}
	if d.Port != h.Port {
		mutable = append(mutable, change("Port", h.Port, d.Port))
	}
	if d.ResourcePath != h.ResourcePath {
		mutable = append(mutable, change("ResourcePath", h.ResourcePath, d.ResourcePath))
	}
	if !slices.Equal(d.Regions, h.Regions) {
		mutable = append(mutable, change("Regions", strings.Join(h.Regions, ","), strings.Join(d.Regions, ",")))
	}
	if d.FailureThreshold != h.FailureThreshold {
		mutable = append(mutable, change("FailureThreshold", h.FailureThreshold, d.FailureThreshold))
	}
	if d.EnableSNI != h.EnableSNI {
		mutable = append(mutable, change("EnableSNI", h.EnableSNI, d.EnableSNI))
	}
	return immutable, mutable
}

func orNone(s string) string { return cmp.Or(s, "(none)") }

func tagsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// createOne creates c and tags it. A caller reference Route 53 still
// remembers with other settings (or from a deleted check: it keeps them
// for days) gets HealthCheckAlreadyExists; one retry with a suffixed
// reference follows.
func createOne(ctx context.Context, api API, c *Check) (string, error) {
	ref := c.CallerReference
	for attempt := 0; ; attempt++ {
		out, err := api.CreateHealthCheck(ctx, &r53.CreateHealthCheckInput{
			CallerReference: aws.String(ref), HealthCheckConfig: c.Config(),
		})
		var exists *types.HealthCheckAlreadyExists
		if errors.As(err, &exists) && attempt == 0 {
			ref = c.CallerReference + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create health check: %w", err)
		}
		if out.HealthCheck == nil || aws.ToString(out.HealthCheck.Id) == "" {
			return "", errors.New("create health check: the answer has no ID")
		}
		id := aws.ToString(out.HealthCheck.Id)
		return id, tag(ctx, api, id, c.Tags)
	}
}

func updateOne(ctx context.Context, api API, c *Check, e *Existing) error {
	s := c.Settings
	in := &r53.UpdateHealthCheckInput{
		HealthCheckId:    aws.String(e.ID),
		Port:             aws.Int32(s.Port),
		ResourcePath:     aws.String(s.ResourcePath),
		FailureThreshold: aws.Int32(s.FailureThreshold),
		EnableSNI:        aws.Bool(s.EnableSNI),
	}
	if e.Version > 0 {
		in.HealthCheckVersion = aws.Int64(e.Version)
	}
	for _, r := range s.Regions {
		in.Regions = append(in.Regions, types.HealthCheckRegion(r))
	}
	if s.FQDN != "" {
		in.FullyQualifiedDomainName = aws.String(s.FQDN)
	} else if e.FQDN != "" {
		in.ResetElements = append(in.ResetElements, types.ResettableElementNameFullyQualifiedDomainName)
	}
	if s.IPAddress != "" && !slices.Contains(c.ResolvedIPs, e.IPAddress) {
		in.IPAddress = aws.String(s.IPAddress)
	}
	if _, err := api.UpdateHealthCheck(ctx, in); err != nil {
		return fmt.Errorf("update health check %s: %w", e.ID, err)
	}
	return nil
}

func tag(ctx context.Context, api API, id string, tags map[string]string) error {
	in := &r53.ChangeTagsForResourceInput{ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(id)}
	for _, k := range sortedKeys(tags) {
		in.AddTags = append(in.AddTags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if _, err := api.ChangeTagsForResource(ctx, in); err != nil {
		return fmt.Errorf("tag health check %s: %w", id, err)
	}
	return nil
}

// listAll reads every health check of the account with its tags.
func listAll(ctx context.Context, api API) ([]Existing, error) {
	var all []Existing
	p := r53.NewListHealthChecksPaginator(api, &r53.ListHealthChecksInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list health checks: %w", err)
		}
		for _, hc := range page.HealthChecks {
			all = append(all, Existing{
				ID: aws.ToString(hc.Id), CallerReference: aws.ToString(hc.CallerReference),
				Version: aws.ToInt64(hc.HealthCheckVersion), Settings: settingsOf(hc.HealthCheckConfig),
				Tags: map[string]string{},
			})
		}
	}
	// ListTagsForResources takes at most 10 IDs a call.
	for start := 0; start < len(all); start += 10 {
		batch := all[start:min(start+10, len(all))]
		ids := make([]string, len(batch))
		idx := map[string]*Existing{}
		for i := range batch {
			ids[i] = batch[i].ID
			idx[batch[i].ID] = &batch[i]
		}
		out, err := api.ListTagsForResources(ctx, &r53.ListTagsForResourcesInput{
			ResourceType: types.TagResourceTypeHealthcheck, ResourceIds: ids,
		})
		if err != nil {
			return nil, fmt.Errorf("list health check tags: %w", err)
		}
		for _, set := range out.ResourceTagSets {
			e := idx[aws.ToString(set.ResourceId)]
			if e == nil {
				continue
			}
			for _, t := range set.Tags {
				e.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
		}
	}
	for i := range all {
		all[i].Target, all[i].Role = all[i].Tags[TagTarget], all[i].Tags[TagRole]
	}
	return all, nil
}

// ListOptions filter List.
type ListOptions struct {
	Target string // only this target ("" = all)
	// Status adds each check's last observations (one
	// GetHealthCheckStatus call per check).
	Status bool
}

// List returns edgeprobe's health checks (by tag), sorted by target, role
// and ID; checks of anyone else are never returned.
func List(ctx context.Context, api API, opts ListOptions) ([]Existing, error) {
	all, err := listAll(ctx, api)
	if err != nil {
		return nil, err
	}
	var ours []Existing
	for _, e := range all {
		if e.ours() && (opts.Target == "" || e.Target == opts.Target) {
			ours = append(ours, e)
		}
	}
	slices.SortFunc(ours, func(a, b Existing) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Role, b.Role), cmp.Compare(a.ID, b.ID))
	})
	if opts.Status {
		for i := range ours {
			out, err := api.GetHealthCheckStatus(ctx, &r53.GetHealthCheckStatusInput{HealthCheckId: aws.String(ours[i].ID)})
			if err != nil {
				return nil, fmt.Errorf("health check %s status: %w", ours[i].ID, err)
			}
			ours[i].Status = summarizeStatus(out.HealthCheckObservations)
		}
	}
	return ours, nil
}

func summarizeStatus(obs []types.HealthCheckObservation) string {
	if len(obs) == 0 {
		return "no observations yet"
	}
	ok, firstFailure := 0, ""
	for _, o := range obs {
		s := ""
		if o.StatusReport != nil {
			s = aws.ToString(o.StatusReport.Status)
		}
		if strings.HasPrefix(s, "Success") {
			ok++
		} else if firstFailure == "" {
			firstFailure = string(o.Region) + ": " + s
		}
	}
	out := fmt.Sprintf("%d/%d checkers ok", ok, len(obs))
	if firstFailure != "" {
		out += " (" + firstFailure + ")"
	}
	return out
}

// DeleteOptions filter Delete.
type DeleteOptions struct {
	Target string // only this target ("" = all of edgeprobe's)
	DryRun bool   // list what would be deleted, delete nothing
}

// Delete removes edgeprobe's health checks (by tag), optionally of one
// target only, and returns them. Checks without edgeprobe's tags are
// never touched.
func Delete(ctx context.Context, api API, opts DeleteOptions) ([]Existing, error) {
	ours, err := List(ctx, api, ListOptions{Target: opts.Target})
	if err != nil || opts.DryRun {
		return ours, err
	}
	for i, e := range ours {
		if _, err := api.DeleteHealthCheck(ctx, &r53.DeleteHealthCheckInput{HealthCheckId: aws.String(e.ID)}); err != nil {
			return ours[:i], fmt.Errorf("delete health check %s (%s): %w", e.ID, e.Key(), err)
		}
	}
	return ours, nil
}

// Drift says how an existing check differs from the plan: "" when it
// matches, else the differences.
func Drift(c *Check, e *Existing) string {
	immutable, mutable := diff(c, e)
	var parts []string
	if len(immutable) > 0 {
		parts = append(parts, "needs --replace: "+strings.Join(immutable, ", "))
	}
	if len(mutable) > 0 {
		parts = append(parts, strings.Join(mutable, ", "))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
