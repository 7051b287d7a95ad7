// Package deploy holds no Go code for the binary: it is the home of the
// deployment files (Dockerfile, Kubernetes manifests, the operator guide) and
// of the tests that check them, with the real Kubernetes and Compose schemas,
// against each other and against the config keys the silt binary accepts.
// No container engine is needed to run those tests.
package deploy
