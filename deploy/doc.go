// Package deploy holds what users deploy edgeprobe with, and its tests: the
// CloudFormation template (cloudformation/, ECS Fargate, one stack per
// region or a StackSet), the Kubernetes manifests (kubernetes/), and the
// checks of the repository's Dockerfile. docs/deploy.md explains them.
package deploy
