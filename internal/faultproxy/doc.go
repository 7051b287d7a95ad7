// Package faultproxy holds network proxies that tests put between a client
// and a server to inject the failures of a real network: TCP, which cuts
// connections or holds their bytes for a while (a partition that TCP does
// not notice), and S3, an HTTP proxy in front of an S3 server that can
// answer 503 SlowDown as AWS does when a prefix is throttled.
//
// Both are real servers on loopback ports, owned by the caller, who closes
// them.
package faultproxy
