package audit

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// policies reads each referenced policy once: from the API, and for a
// managed policy the API does not return (no permission, or an emulator
// without the policy API) from the built-in table.
type policies struct {
	api       PolicyAPI
	caches    map[string]resolved[types.CachePolicyConfig]
	origins   map[string]resolved[types.OriginRequestPolicyConfig]
	responses map[string]resolved[types.ResponseHeadersPolicyConfig]
}

// resolved is one policy's configuration and where it came from.
type resolved[T any] struct {
	cfg      *T
	policy   string // its name
	managed  bool
	fromAPI  bool
	apiError error // why the API did not give it (the table did, or nothing)
	err      error // set when the policy is unknown
}

func newPolicies(api PolicyAPI) *policies {
	return &policies{
		api:       api,
		caches:    map[string]resolved[types.CachePolicyConfig]{},
		origins:   map[string]resolved[types.OriginRequestPolicyConfig]{},
		responses: map[string]resolved[types.ResponseHeadersPolicyConfig]{},
	}
}

var errNoAPI = errors.New("no CloudFront API client")

func resolve[T any](ctx context.Context, id string, memo map[string]resolved[T], table map[string]*T,
	name func(*T) string, get func(context.Context, string) (*T, error)) resolved[T] {
	if r, ok := memo[id]; ok {
		return r
	}
	var r resolved[T]
	_, r.managed = table[id]
	var err error = errNoAPI
	if get != nil {
		var cfg *T
		if cfg, err = get(ctx, id); err == nil && cfg != nil {
			r.cfg, r.fromAPI = cfg, true
		} else if err == nil {
			err = errors.New("the answer has no policy configuration")
		}
	}
	if r.cfg == nil {
		r.apiError = err
		if t, ok := table[id]; ok {
			r.cfg = t
		} else {
			r.err = err
		}
	}
	if r.cfg != nil {
		r.policy = name(r.cfg)
	}
	memo[id] = r
	return r
}

func (p *policies) cache(ctx context.Context, id string) resolved[types.CachePolicyConfig] {
	var get func(context.Context, string) (*types.CachePolicyConfig, error)
	if p.api != nil {
		get = func(ctx context.Context, id string) (*types.CachePolicyConfig, error) {
			out, err := p.api.GetCachePolicy(ctx, &cloudfront.GetCachePolicyInput{Id: aws.String(id)})
			if err != nil || out.CachePolicy == nil {
				return nil, err
			}
			return out.CachePolicy.CachePolicyConfig, nil
		}
	}
	return resolve(ctx, id, p.caches, managedCachePolicies,
		func(c *types.CachePolicyConfig) string { return aws.ToString(c.Name) }, get)
}

func (p *policies) origin(ctx context.Context, id string) resolved[types.OriginRequestPolicyConfig] {
	var get func(context.Context, string) (*types.OriginRequestPolicyConfig, error)
	if p.api != nil {
		get = func(ctx context.Context, id string) (*types.OriginRequestPolicyConfig, error) {
			out, err := p.api.GetOriginRequestPolicy(ctx, &cloudfront.GetOriginRequestPolicyInput{Id: aws.String(id)})
			if err != nil || out.OriginRequestPolicy == nil {
				return nil, err
			}
			return out.OriginRequestPolicy.OriginRequestPolicyConfig, nil
		}
	}
	return resolve(ctx, id, p.origins, managedOriginRequestPolicies,
		func(c *types.OriginRequestPolicyConfig) string { return aws.ToString(c.Name) }, get)
}

func (p *policies) headers(ctx context.Context, id string) resolved[types.ResponseHeadersPolicyConfig] {
	var get func(context.Context, string) (*types.ResponseHeadersPolicyConfig, error)
	if p.api != nil {
		get = func(ctx context.Context, id string) (*types.ResponseHeadersPolicyConfig, error) {
			out, err := p.api.GetResponseHeadersPolicy(ctx, &cloudfront.GetResponseHeadersPolicyInput{Id: aws.String(id)})
			if err != nil || out.ResponseHeadersPolicy == nil {
				return nil, err
			}
			return out.ResponseHeadersPolicy.ResponseHeadersPolicyConfig, nil
		}
	}
	return resolve(ctx, id, p.responses, managedResponseHeadersPolicies,
		func(c *types.ResponseHeadersPolicyConfig) string { return aws.ToString(c.Name) }, get)
}

func (r resolved[T]) name() string {
	if r.policy == "" {
		return "(unnamed)"
	}
	return r.policy
}

// describe says which policy an ID is and where its settings came from.
func (r resolved[T]) describe(id string) string {
	switch {
	case r.err != nil:
		return id + ": unreadable (" + short(r.err) + ")"
	case r.fromAPI:
		return id + ": " + r.name() + " (read from the API)"
	default:
		return id + ": " + r.name() + " (managed; settings from the built-in table, the API gave: " + short(r.apiError) + ")"
	}
}
